"""Polling a marketplace account's stream: what its connector reads, recorded once, answered once.

`poll(account, stream)` holds the stream's lease (PollCursor.leased_until), so
two polls of one stream never overlap, whichever worker or schedule starts
them. It reads the connector's pages from the stored cursor; each page is
recorded in one transaction together with the cursor after it, so the
cursor advances only with what it covers, and a poll cut short replays its
last page, whose items the recording's unique keys (account, dialog,
marketplace message id) drop as repeats.

A seller's message that comes back through a poll is matched to the answer
we sent (by the marketplace's id, else by text: Wildberries and Market give
no id for a send) and not stored again; one we cannot match was written in
the seller's cabinet and is recorded as an operator's, which takes the
dialog from the bot. A send of unknown outcome is settled by such a match;
one no poll confirms within UNCONFIRMED_AFTER is marked failed and the
dialog goes to a person, who sees it was maybe not delivered.

Customer messages are answered by the worker (integrations.tasks.answer),
queued once the page is committed.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from bots import dialog
from catalog.models import Product
from conversations.incoming import IncomingMessage
from conversations.models import Conversation, Message
from conversations.services import accept_incoming_many, hand_off
from integrations import tasks
from integrations.marketplaces.accounts import learn_from
from integrations.marketplaces.base import CHAT, CUSTOMER, SELLER, SYSTEM, MarketplaceApiError, Page, PolledItem
from integrations.marketplaces.connectors import connector_for
from integrations.marketplaces.models import MarketplaceAccount, Mode, PollCursor

logger = logging.getLogger(__name__)

# A poll holds its stream this long, renewed with each page.
LEASE = timedelta(minutes=5)
# Back-off after a failed poll: doubling from the first, up to the longest.
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_LONGEST = timedelta(minutes=30)
# A send of unknown outcome that no poll has confirmed by then is taken as not delivered.
UNCONFIRMED_AFTER = timedelta(minutes=15)
UNCONFIRMED = "not confirmed by the marketplace after the send timed out: check the chat and send again if missing"
# Keys of PolledItem.context that name the product, as our catalog's SKU may be.
PRODUCT_KEYS = ("offer_id", "sku", "nm_id")

_SPACES = re.compile(r"\s+")


@dataclass
class PollResult:
    pages: int = 0
    items: int = 0
    recorded: int = 0
    repeats: int = 0
    own_sends: int = 0
    skipped: str = ""  # why nothing was polled: "stopped", "off", "busy", "backing off"
    error: str = ""
    queued: list[int] = field(default_factory=list, repr=False)


def dialog_id(stream: str, thread_id: str) -> str:
    """The conversation's id: a chat's own; a question's and a review's with the stream, as ids may repeat across."""
    return thread_id if stream == CHAT else f"{stream.rstrip('s')}:{thread_id}"


def poll(account: MarketplaceAccount, stream: str, *, connector=None, force: bool = False) -> PollResult:
    """Read the stream to the end of what the marketplace has now."""
    if account.stopped_at is not None:
        return PollResult(skipped="stopped")
    if account.mode_for(stream) == Mode.OFF:
        return PollResult(skipped="off")
    cursor, _ = PollCursor.objects.get_or_create(account=account, stream=stream)
    now = timezone.now()
    if not force and cursor.not_before and cursor.not_before > now and cursor.poll_requested_at is None:
        return PollResult(skipped="backing off")
    if not _lease(cursor, now):
        return PollResult(skipped="busy")
    result = PollResult()
    connector = connector or connector_for(account)
    try:
        for page in connector.pages(stream, dict(cursor.cursor or {})):
            _record_page(account, stream, cursor, page, result)
            result.pages += 1
    except MarketplaceApiError as exc:
        result.error = str(exc)
        learn_from(account, exc, sending=False)
        _failed(cursor, exc)
        logger.warning("%s poll of %s (%s) failed: %s", account.marketplace, account.pk, stream, exc.code)
    else:
        PollCursor.objects.filter(pk=cursor.pk).update(failures=0, not_before=None, last_error="")
        _give_up_unconfirmed(account, stream)
    finally:
        PollCursor.objects.filter(pk=cursor.pk).update(leased_until=None, last_polled_at=timezone.now())
    return result


def _lease(cursor: PollCursor, now) -> bool:
    taken = (
        PollCursor.objects.filter(pk=cursor.pk)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(leased_until=now + LEASE, poll_requested_at=None)
    )
    return bool(taken)


def _failed(cursor: PollCursor, exc: MarketplaceApiError) -> None:
    cursor.refresh_from_db(fields=["failures"])
    failures = cursor.failures + 1
    wait = BACKOFF_FIRST * 2 ** (failures - 1)
    if exc.retry_after:
        wait = max(wait, timedelta(seconds=exc.retry_after))
    PollCursor.objects.filter(pk=cursor.pk).update(
        failures=failures,
        not_before=timezone.now() + min(wait, BACKOFF_LONGEST),
        last_error=str(exc)[:2000],
    )


def _record_page(account: MarketplaceAccount, stream: str, cursor: PollCursor, page: Page, result: PollResult) -> None:
    queued: list[int] = []
    contexts: dict[str, dict] = defaultdict(dict)
    with transaction.atomic():
        incomings = []
        for item in page.items:
            result.items += 1
            key = dialog_id(stream, item.thread_id)
            contexts[key].update({k: v for k, v in item.context.items() if v not in (None, "")})
            if item.author == SELLER and _settle_own_send(account, key, item):
                result.own_sends += 1
                continue
            incomings.append(_incoming(account, stream, key, item))
        for message, created in accept_incoming_many(incomings):
            if not created:
                result.repeats += 1
                continue
            result.recorded += 1
            if (
                message.author == Message.Author.CUSTOMER
                and message.needs_reply
                and message.conversation.state == Conversation.State.BOT
            ):
                queued.append(message.pk)
        _keep_contexts(account, stream, contexts)
        PollCursor.objects.filter(pk=cursor.pk).update(
            cursor=page.cursor,
            items_seen=F("items_seen") + len(page.items),
            leased_until=timezone.now() + LEASE,
        )
        # The worker looks the messages up: queued only once they are committed.
        transaction.on_commit(lambda: _queue_answers(queued))
    result.queued += queued


# Answers are queued a few messages to a task: a task per message costs a
# queue round trip each, which a busy page of a poll would mostly spend on;
# several tasks per page still let several workers answer at once.
ANSWERS_PER_TASK = 10


def _queue_answers(message_ids: list[int]) -> None:
    for start in range(0, len(message_ids), ANSWERS_PER_TASK):
        batch = message_ids[start : start + ANSWERS_PER_TASK]
        if len(batch) == 1:
            tasks.enqueue("integrations.tasks.answer", batch[0], task_name=f"answer-{batch[0]}")
        else:
            # Lost with the queue: the sweep answers what is left without a reply.
            tasks.enqueue("integrations.tasks.answer_each", batch, task_name=f"answer-{batch[0]}-{batch[-1]}")


_AUTHORS = {CUSTOMER: Message.Author.CUSTOMER, SELLER: Message.Author.OPERATOR, SYSTEM: Message.Author.SYSTEM}


def _incoming(account: MarketplaceAccount, stream: str, key: str, item: PolledItem) -> IncomingMessage:
    author = _AUTHORS.get(item.author, Message.Author.SYSTEM)
    # Years of reviews found by an account's first poll are for staff to see, not for the bot to answer now.
    written = item.created_at
    oldest_answered = timezone.now() - timedelta(days=settings.MARKETPLACE_BACKLOG_DAYS)
    backlog = written is not None and timezone.is_aware(written) and written < oldest_answered
    return IncomingMessage(
        channel=account.marketplace,
        dialog_id=key,
        message_id=_storable(str(item.message_id)),
        text=_storable(item.text),
        account_id=account.channel_account_id,
        customer_name=_storable(item.customer_name),
        customer_id=_storable(item.customer_id),
        author=author,
        channel_data=_storable({"stream": stream, "thread_id": str(item.thread_id), "context": item.context}),
        raw_payload=_storable(item.raw),
        attachments=_storable(item.attachments),
        needs_reply=item.needs_reply and author == Message.Author.CUSTOMER and not backlog,
    )


def _storable(value):
    """The value without NUL characters, which no PostgreSQL text or jsonb column takes: one such
    message would otherwise fail its page on every poll, and the stream would stand still."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _same_text(a: str, b: str) -> bool:
    return _SPACES.sub(" ", a).strip() == _SPACES.sub(" ", b).strip()


def _settle_own_send(account: MarketplaceAccount, key: str, item: PolledItem) -> bool:
    """The seller message is one we sent: its row gets the id (and is sent, if the send's outcome was unknown)."""
    conversation_id = (
        Conversation.objects.filter(account_id=account.channel_account_id, external_id=key)
        .values_list("pk", flat=True)
        .first()
    )
    if conversation_id is None:
        return False
    ours = Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.OUT)
    if ours.filter(external_id=str(item.message_id)).exists():
        return True
    candidates = ours.filter(
        external_id="", delivery_state__in=[Message.Delivery.SENT, Message.Delivery.UNKNOWN, Message.Delivery.PENDING]
    ).order_by("created_at", "id")
    for candidate in candidates.only("pk", "text", "delivery_state"):
        if not _same_text(candidate.text, item.text):
            continue
        changes = {"external_id": str(item.message_id)[:255]}
        if candidate.delivery_state != Message.Delivery.SENT:
            changes.update(delivery_state=Message.Delivery.SENT, delivery_error="", delivered_at=timezone.now())
        Message.objects.filter(pk=candidate.pk).update(**changes)
        return True
    return False


def _keep_contexts(account: MarketplaceAccount, stream: str, contexts: dict[str, dict]) -> None:
    """What the marketplace said about each dialog, merged into it (a WB chat's reply sign, the product, the order)."""
    if not contexts:
        return
    rows = list(
        Conversation.objects.filter(account_id=account.channel_account_id, external_id__in=list(contexts)).only(
            "pk", "external_id", "channel_data", "dialog_context"
        )
    )
    # Looked up only for dialogs not about a product yet: most pages are of dialogs that are.
    unfocused = [contexts[c.external_id] for c in rows if not (c.dialog_context or {}).get("focus")]
    products = _products_named(unfocused)
    for conversation in rows:
        new = contexts[conversation.external_id]
        data = dict(conversation.channel_data or {})
        merged = {**(data.get("context") or {}), **new}
        changes = {}
        if merged != data.get("context") or data.get("stream") != stream:
            changes["channel_data"] = {**data, "stream": stream, "context": merged}
        product = next((products[str(merged[k])] for k in PRODUCT_KEYS if str(merged.get(k, "")) in products), None)
        if product is not None and not (conversation.dialog_context or {}).get("focus"):
            # The buyer asks from the product's page: «а какой срок годности?» is about it.
            changes["dialog_context"] = dialog.DialogContext(shown=[product], focus=product).as_json()
        if changes:
            Conversation.objects.filter(pk=conversation.pk).update(**changes)


def _products_named(contexts) -> dict[str, int]:
    keys = {str(c[k]) for c in contexts for k in PRODUCT_KEYS if c.get(k) not in (None, "")}
    if not keys:
        return {}
    return dict(Product.objects.filter(sku__in=keys).values_list("sku", "pk"))


def _give_up_unconfirmed(account: MarketplaceAccount, stream: str) -> None:
    """Sends of unknown outcome in the stream that no poll has confirmed in time: failed, for a person to check.

    Chats show our messages back (a match settles them first); an answer to a
    question or a review never comes back as a message, so there the time
    alone decides.
    """
    stale = Message.objects.filter(
        conversation__account_id=account.channel_account_id,
        conversation__channel_data__stream=stream,
        direction=Message.Direction.OUT,
        delivery_state=Message.Delivery.UNKNOWN,
        created_at__lt=timezone.now() - UNCONFIRMED_AFTER,
    ).select_related("conversation")
    for message in stale:
        if Message.objects.filter(pk=message.pk, delivery_state=Message.Delivery.UNKNOWN).update(
            delivery_state=Message.Delivery.FAILED, delivery_error=UNCONFIRMED
        ):
            hand_off(conversation=message.conversation, reason="an answer's delivery was not confirmed")
