"""What staff do to a marketplace account, from the admin and from `manage.py marketplace_account` alike."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from conversations.models import ChannelAccount
from integrations.http import redact
from integrations.marketplaces.base import KeyCheck, MarketplaceApiError, MarketplaceHttp
from integrations.marketplaces.connectors import connector_for
from integrations.marketplaces.deadlines import seed_deadlines
from integrations.marketplaces.models import Marketplace, MarketplaceAccount
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
