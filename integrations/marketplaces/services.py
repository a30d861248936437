"""What staff do to a marketplace account, from the admin and from `manage.py marketplace_account` alike."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from bots.marketplace_rules import clean_for_marketplace
from conversations.models import ChannelAccount, Conversation, Message
from integrations.http import redact
from integrations.marketplaces.accounts import account_of
from integrations.marketplaces.base import (
    QUESTIONS,
    REVIEWS,
    KeyCheck,
    MarketplaceApiError,
    MarketplaceHttp,
    SendOutcomeUnknown,
)
from integrations.marketplaces.connectors import connector_for
from integrations.marketplaces.deadlines import seed_deadlines
from integrations.marketplaces.models import Marketplace, MarketplaceAccount
from integrations.marketplaces.sender import thread_of
from integrations.marketplaces.tasks import ensure_poll_schedules

KEY_MAX_CHARS = 64
# The id a marketplace's API cannot be called without, besides the key.
REQUIRED_IDS = {Marketplace.OZON: "client_id", Marketplace.YANDEX_MARKET: "business_id"}
# Store names are mostly Russian and a slug keeps only Latin letters: spelled out so the key still reads.
CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch  y  e yu ya".split(" "),
        strict=True,
    )
)


def create_account(account: MarketplaceAccount, *, name: str, key: str = "") -> MarketplaceAccount:
    """Save an unsaved account with the channel account it belongs to.

    The channel account's channel is the marketplace; its key is `key`, or a
    slug of `name` not taken yet. Raises ValidationError for a taken key or a
    bad value.
    """
    channel_account = ChannelAccount(
        channel=account.marketplace, key=key or free_key(account.marketplace, name), name=name
    )
    channel_account.full_clean()
    account.full_clean(exclude=["channel_account"])
    required = REQUIRED_IDS.get(account.marketplace)
    if required and not getattr(account, required):
        raise ValidationError({required: f"{account.marketplace} needs {required}"})
    with transaction.atomic():
        channel_account.save()
        account.channel_account = channel_account
        account.save()
        seed_deadlines(account)
    ensure_poll_schedules()
    return account


def check_key(account: MarketplaceAccount) -> KeyCheck:
    """Ask the marketplace whether the account's keys work, and record the answer on the account.

    A working key clears a stop (staff fixed the key); a key the marketplace
    refused (401/403) stops the account with the connector's Russian detail,
    as a poll would. A failure that says nothing of the key (a timeout, 429)
    leaves the state as it is.
    """
    http = _RefusalWatchingHttp(account.marketplace)
    try:
        result = connector_for(account, http).check_key()
    except MarketplaceApiError as exc:
        result = KeyCheck(False, f"Проверить ключ не удалось ({exc.code}): попробуйте позже")
    # A marketplace may echo what it was sent: the detail is shown and stored, the keys never.
    detail = redact(result.detail, account.api_key, account.feedbacks_api_key)
    now = timezone.now()
    with transaction.atomic():
        # The poller writes capabilities and stops too: merge into the row as it is now.
        stored = MarketplaceAccount.objects.select_for_update().get(pk=account.pk)
        stored.key_checked_at = now
        stored.key_check_result = detail
        stored.capabilities = {**stored.capabilities, **result.capabilities}
        if result.ok:
            stored.stopped_at, stored.stop_reason = None, ""
        elif http.refused:
            stored.stopped_at, stored.stop_reason = now, detail
        stored.save(
            update_fields=[
                "key_checked_at",
                "key_check_result",
                "capabilities",
                "stopped_at",
                "stop_reason",
                "updated_at",
            ]
        )
    for name in ("key_checked_at", "key_check_result", "capabilities", "stopped_at", "stop_reason", "updated_at"):
        setattr(account, name, getattr(stored, name))
    return KeyCheck(result.ok, detail, dict(result.capabilities))


def resume(account: MarketplaceAccount) -> None:
    """Poll a stopped account again (staff fixed its key)."""
    now = timezone.now()
    MarketplaceAccount.objects.filter(pk=account.pk).update(stopped_at=None, stop_reason="", updated_at=now)
    account.stopped_at, account.stop_reason, account.updated_at = None, "", now


def free_key(marketplace: str, name: str) -> str:
    spelled = "".join(CYRILLIC.get(char, char) for char in name.lower())
    base = slugify(spelled)[:KEY_MAX_CHARS].strip("-") or marketplace.replace("_", "-")
    taken = set(ChannelAccount.objects.filter(channel=marketplace, key__startswith=base).values_list("key", flat=True))
    key, number = base, 1
    while key in taken:
        number += 1
        suffix = f"-{number}"
        key = base[: KEY_MAX_CHARS - len(suffix)] + suffix
    return key


class _RefusalWatchingHttp(MarketplaceHttp):
    """Notes whether the marketplace refused the key: KeyCheck says only ok or not, a stop needs to know why."""

    refused = False

    def send(self, method, url, **kwargs):
        response = super().send(method, url, **kwargs)
        if response.status_code in (401, 403):
            self.refused = True
        return response


# Wildberries lets a question's or a review's answer be changed once, within 60 days of it.
ANSWER_EDIT_WINDOW = timedelta(days=60)


class AnswerNotEditable(Exception):
    """The answer cannot be changed (not a sent WB answer, edited already, too old); the message says why."""


def editable_answer(conversation: Conversation) -> Message | None:
    """The sent answer of a Wildberries question or review that may still be changed once, or None."""
    data = conversation.channel_data or {}
    if conversation.channel != Marketplace.WILDBERRIES or data.get("stream") not in (QUESTIONS, REVIEWS):
        return None
    if data.get("answer_edited_at"):
        return None
    answer = (
        conversation.messages.filter(direction=Message.Direction.OUT, delivery_state=Message.Delivery.SENT)
        .order_by("-created_at", "-id")
        .first()
    )
    if answer is None or (answer.delivered_at or answer.created_at) < timezone.now() - ANSWER_EDIT_WINDOW:
        return None
    return answer


def edit_answer(*, conversation: Conversation, operator, text: str) -> Message:
    """Change the answer already given to a Wildberries question or review: once, as WB allows.

    The conversation is marked edited before the call, under its row lock, so
    two operators (or a double click) edit once; a refused call takes the mark back.
    """
    account = account_of(conversation)
    text = clean_for_marketplace(text.strip(), account.marketplace).text
    if not text:
        raise AnswerNotEditable("the new answer is empty")
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        answer = editable_answer(locked)
        if answer is None:
            raise AnswerNotEditable("no answer that Wildberries would let us change")
        before = dict(locked.channel_data or {})
        locked.channel_data = {**before, "answer_edited_at": timezone.now().isoformat(), "answer_before": answer.text}
        locked.save(update_fields=["channel_data"])
    try:
        connector_for(account).edit_answer(thread_of(locked), text)
    except (MarketplaceApiError, SendOutcomeUnknown) as exc:
        if isinstance(exc, MarketplaceApiError):
            # Refused: nothing changed on WB, so the one edit is still ours to make.
            Conversation.objects.filter(pk=conversation.pk).update(channel_data=before)
        raise AnswerNotEditable(str(exc) or "no answer from Wildberries") from None
    Message.objects.filter(pk=answer.pk).update(text=text, operator=operator)
    answer.refresh_from_db()
    return answer
