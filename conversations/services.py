"""Writes to conversations and messages.

Recording is idempotent under concurrent repeats: the database's unique
constraints decide, not a read-then-write check, so two deliveries of one
event racing in two processes still store one message.
"""

import dataclasses
import functools
import logging
import re
import time
from datetime import timedelta

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from conversations.channels import DeliveryError, DeliveryOutcomeUnknown, outbound_requests, sender_for
from conversations.models import ChannelAccount, Conversation, Message, ReceivedEvent

logger = logging.getLogger(__name__)

# What a database that cannot be reached raises (a restart, a failover, a dropped connection).
DATABASE_DOWN = (OperationalError, InterfaceError)

# Keys whose values never belong in a stored payload.
_SECRET_KEY = re.compile("token|secret|password|auth|key|signature", re.IGNORECASE)


def strip_secrets(payload):
    """A copy of a webhook payload with credentials replaced, for storage."""
    if isinstance(payload, dict):
        return {k: "***" if _SECRET_KEY.search(str(k)) else strip_secrets(v) for k, v in payload.items()}
    if isinstance(payload, list):
        return [strip_secrets(v) for v in payload]
    return payload


def account_for(channel: str, key: str = ChannelAccount.DEFAULT_KEY) -> ChannelAccount:
    """The channel's account of that key, made on first use (a portal's first event, the env-configured bot)."""
    account = ChannelAccount.objects.filter(channel=channel, key=key).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return ChannelAccount.objects.create(channel=channel, key=key)
    except IntegrityError:
        return ChannelAccount.objects.get(channel=channel, key=key)


# Every webhook event needs its account's id before it is recorded; accounts
# are few and never renamed, so each process keeps the ids it has seen.
_account_ids: dict[tuple[str, str], int] = {}


def account_id_for(channel: str, key: str = ChannelAccount.DEFAULT_KEY) -> int:
    cached = _account_ids.get((channel, key))
    if cached is None:
        cached = _account_ids[channel, key] = account_for(channel, key).pk
    return cached


def forget_account(account_id: int) -> None:
    for name, pk in list(_account_ids.items()):
        if pk == account_id:
            _account_ids.pop(name, None)


def get_or_create_conversation(
    *,
    channel: str,
    external_id: str,
    account_id: int | None = None,
    customer_name: str = "",
    customer_external_id: str = "",
    channel_data: dict | None = None,
) -> Conversation:
    account_id = account_id or account_id_for(channel)
    defaults = {
        "channel": channel,
        "customer_name": customer_name,
        "customer_external_id": customer_external_id,
        "channel_data": channel_data or {},
        "context_started_at": timezone.now(),
    }
    conversation = Conversation.objects.filter(account_id=account_id, external_id=external_id).first()
    if conversation is None:
        try:
            with transaction.atomic():
                return Conversation.objects.create(account_id=account_id, external_id=external_id, **defaults)
        except IntegrityError:
            conversation = Conversation.objects.get(account_id=account_id, external_id=external_id)
    changed = []
    if customer_name and conversation.customer_name != customer_name:
        conversation.customer_name = customer_name
        changed.append("customer_name")
    if channel_data and {**conversation.channel_data, **channel_data} != conversation.channel_data:
        conversation.channel_data = {**conversation.channel_data, **channel_data}
        changed.append("channel_data")
    if changed:
        conversation.save(update_fields=changed)
    return conversation


def record_incoming(
    *,
    conversation: Conversation,
    text: str,
    external_id: str = "",
    author: str = Message.Author.CUSTOMER,
    raw_payload: dict | None = None,
    attachments: list | None = None,
    needs_reply: bool = True,
) -> tuple[Message, bool]:
    """Store a message from the channel; (message, False) when it was stored before."""
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                channel=conversation.channel,
                direction=Message.Direction.IN,
                author=author,
                text=text,
                external_id=external_id,
                raw_payload=strip_secrets(raw_payload or {}),
                attachments=strip_secrets(attachments or []),
                needs_reply=needs_reply,
            )
    except IntegrityError:
        if not external_id:
            raise
        stored = Message.objects.get(conversation=conversation, direction=Message.Direction.IN, external_id=external_id)
        return stored, False
    _touch(conversation, message)
    return message, True


def record_outgoing(
    *,
    conversation: Conversation,
    text: str,
    author: str = Message.Author.BOT,
    in_reply_to: Message | None = None,
    operator=None,
    reply_kind: str = "",
    products=(),
    llm_model: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    duration_ms: int | None = None,
    llm_error: str = "",
    suggestions=(),
    dialog_context: dict | None = None,
    claimed_at=None,
    while_bot: bool = False,
    client_token: str = "",
    draft: bool = False,
) -> Message:
    """An outgoing message recorded as pending; `dialog_context`, when given,
    replaces the conversation's (bots.dialog) in the same write as its time.

    `claimed_at`: the message is recorded already claimed for sending at that
    time (see deliver), by the worker that will send it; committed with the
    message, the claim costs no write of its own. `while_bot`: recorded only
    while the dialog is the bot's, checked by the conversation's update under
    its row lock; DialogTaken otherwise, for the caller's transaction to roll
    back. Either way the conversation's state and blocked_at are then the
    database's, as of that update.
    """
    message = Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        direction=Message.Direction.OUT,
        author=author,
        operator=operator,
        text=text,
        in_reply_to=in_reply_to,
        delivery_state=Message.Delivery.DRAFT if draft else Message.Delivery.PENDING,
        reply_kind=reply_kind,
        llm_model=llm_model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        duration_ms=duration_ms,
        llm_error=llm_error,
        suggestions=list(suggestions),
        delivery_claimed_at=claimed_at,
        delivery_attempts=1 if claimed_at else 0,
        client_token=client_token,
    )
    _add_products(message, products)
    changes = {"last_message_at": message.created_at}
    if dialog_context is not None:
        changes["dialog_context"] = dialog_context
    if while_bot:
        _update_while_bot(conversation, changes)
    else:
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
    for name, value in changes.items():
        setattr(conversation, name, value)
    return message


class DialogTaken(Exception):
    """The dialog is no longer the bot's (an operator took it, it was closed): no bot reply is recorded."""


def _update_while_bot(conversation: Conversation, changes: dict) -> None:
    # The usual case in one statement: the bot's dialog, not blocked. Else the
    # state and blocked_at are read under the row lock to tell which it is.
    dialog = Conversation.objects.filter(pk=conversation.pk, state=Conversation.State.BOT)
    if dialog.filter(blocked_at__isnull=True).update(**changes):
        conversation.state, conversation.blocked_at = Conversation.State.BOT, None
        return
    current = Conversation.objects.select_for_update().filter(pk=conversation.pk).values("state", "blocked_at").first()
    if current is None or current["state"] != Conversation.State.BOT:
        raise DialogTaken
    dialog.update(**changes)
    conversation.state, conversation.blocked_at = current["state"], current["blocked_at"]


def _add_products(message: Message, products) -> None:
    # A new message cites nothing yet: the rows are inserted without reading
    # the existing ones first (as products.set would), and the message keeps
    # the list as if prefetched, in the relation's order, so the sender does
    # not read it back.
    unique = list({p.pk: p for p in products}.values())
    if unique:
        through = Message.products.through
        through.objects.bulk_create([through(message_id=message.pk, product_id=p.pk) for p in unique])
    cited = message.products.all()
    cited._result_cache = sorted(unique, key=lambda p: (p.sort_order, p.pk))
    cited._prefetch_done = True
    message._prefetched_objects_cache = {message.products.prefetch_cache_name: cited}


def _touch(conversation: Conversation, message: Message) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=message.created_at)
    conversation.last_message_at = message.created_at


def deliver(message: Message, *, claimed_at=None) -> bool:
    """Send an outgoing message through its channel and record how it went.

    Returns True when delivered; a failure is recorded on the message (attempts,
    last error) and re-raised for the caller's retry policy.

    `claimed_at`: the message was recorded already claimed at that time by
    this worker (record_outgoing), its claim committed with it; the claim
    is not made again, and, sent by nobody before, it is not looked up as sent.
    """
    # Claim the send: a retried task and the sweep may hold the same pending
    # reply, and one of them sends it while the others leave it alone. The
    # claim is a lease: a send in flight elsewhere is not started again until
    # its lease has run out (its worker died between sending and saving).
    fresh = claimed_at is not None
    now = claimed_at if fresh else timezone.now()
    lease = timedelta(seconds=settings.REPLY_SEND_LEASE_S)
    if not fresh:
        try:
            claimed = (
                Message.objects.filter(pk=message.pk)
                .exclude(delivery_state__in=NOT_TO_SEND)
                .filter(Q(delivery_claimed_at__isnull=True) | Q(delivery_claimed_at__lt=now - lease))
                .update(delivery_attempts=F("delivery_attempts") + 1, delivery_claimed_at=now)
            )
        except DATABASE_DOWN:
            # The connection died with the statement: it may have been committed
            # all the same (seen in a crash of PostgreSQL). A claim of ours,
            # known by its time, is given back: nothing was sent.
            _give_back_claim(message, now)
            raise
        if not claimed:
            message.refresh_from_db()
            return message.delivery_state == Message.Delivery.SENT
    requests_before = outbound_requests()
    try:
        if not fresh:
            message.refresh_from_db(fields=["delivery_attempts"])
            message.delivery_claimed_at = now
        if message.conversation.blocked_at is not None:
            raise DeliveryError("the customer blocked the bot", permanent=True)
        # Sent before by a worker that could not save so (the database went
        # away between the send and the save): recorded now, not sent again.
        external_id = None if fresh else _delivered_before(message)
        if external_id is None:
            external_id = sender_for(message.conversation.channel).send(message)
    except DeliveryOutcomeUnknown as exc:
        # Maybe sent: no retry may send it again; the channel's next read settles it.
        message.delivery_state = Message.Delivery.UNKNOWN
        message.delivery_error = str(exc)[:2000]
        message.delivery_claimed_at = None
        patiently(
            lambda: message.save(update_fields=["delivery_state", "delivery_error", "delivery_claimed_at"]),
            f"message {message.pk}: its send has an unknown outcome; saving so once the database answers",
        )
        return False
    except DeliveryError as exc:
        # Not sent: the claim is given back for the next try.
        message.delivery_state = Message.Delivery.FAILED
        message.delivery_error = str(exc)[:2000]
        message.delivery_claimed_at = None
        message.save(update_fields=["delivery_state", "delivery_error", "delivery_claimed_at"])
        raise
    except Exception:
        # Raised before any request left (a database or cache outage, in
        # deliver or inside the sender): nothing went out, so the next try
        # need not wait out the lease. Once a request left, what the channel
        # has is unknown: the lease stands.
        if outbound_requests() == requests_before:
            _give_back_claim(message, now)
        raise
    message.delivery_state = Message.Delivery.SENT
    message.delivery_claimed_at = None
    message.delivery_error = ""
    message.delivered_at = timezone.now()
    if external_id and not message.external_id:
        # Kept for reference only: no constraint covers an outgoing id (they
        # repeat across portals and chats), so this save cannot fail on one
        # after the customer already has the message.
        message.external_id = str(external_id)[:255]
    # Noted in the cache first, a round trip faster than the database's commit:
    # a worker killed after the note is not followed by a second send.
    _remember_delivered(message)
    _save_sent(message)
    return True


# Never claimed for a send: sent already, maybe sent (a poll settles it), or a
# draft waiting for an operator (approve_draft makes it pending first).
NOT_TO_SEND = (
    Message.Delivery.SENT,
    Message.Delivery.UNKNOWN,
    Message.Delivery.DRAFT,
    Message.Delivery.DISCARDED,
)

# The customer has the message by the time it is saved as sent (and a claim
# given back keeps nobody waiting), so a database that fails then is waited
# for this long (a restart, a failover), on a new connection each time.
SENT_SAVE_PATIENCE_S = 60.0
# What was sent is also noted in the cache, which a later claim reads: a send
# saved nowhere is still not made twice while either store works.
DELIVERED_NOTE_TTL_S = 24 * 3600


def _save_sent(message: Message) -> None:
    fields = ["delivery_state", "delivery_error", "delivered_at", "external_id", "delivery_claimed_at"]
    patiently(
        lambda: message.save(update_fields=fields),
        f"message {message.pk} was sent; the database is unavailable, saving so again shortly",
    )


def patiently(write, warning: str, *, patience_s: float = SENT_SAVE_PATIENCE_S) -> None:
    """Run `write`, again on a new connection while the database is unavailable, for up to `patience_s`."""
    deadline, delay = time.monotonic() + patience_s, 0.5
    while True:
        try:
            write()
            return
        except DATABASE_DOWN:
            if connection.in_atomic_block or time.monotonic() > deadline:
                raise
            logger.warning(warning)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _delivered_key(message: Message) -> str:
    # The creation time too: a key outlives a database that was reset (a bench, a restore).
    return f"delivered:{message.pk}:{message.created_at.timestamp() if message.created_at else ''}"


def _remember_delivered(message: Message) -> bool:
    try:
        cache.set(_delivered_key(message), message.external_id or "", DELIVERED_NOTE_TTL_S)
    except Exception as exc:  # the cache is a second record only; the database's is the one that counts
        logger.warning("message %s sent; the cache could not note it (%s)", message.pk, type(exc).__name__)
        return False
    return True


def _delivered_before(message: Message) -> str | None:
    try:
        return cache.get(_delivered_key(message))
    except Exception as exc:
        logger.warning("message %s: the cache could not say whether it was sent (%s)", message.pk, type(exc).__name__)
        return None


def give_back_claim(message: Message) -> None:
    """A claim of this worker given back before anything was sent (see record_outgoing's `claimed_at`)."""
    if message.delivery_claimed_at is not None:
        _give_back_claim(message, message.delivery_claimed_at)


def _give_back_claim(message: Message, claimed_at) -> None:
    # Nothing was sent, so the claim is given back even if the database must
    # be waited for: held, it would keep the reply back for the whole lease.
    def release():
        Message.objects.filter(pk=message.pk, delivery_claimed_at=claimed_at).update(delivery_claimed_at=None)

    try:
        patiently(release, f"message {message.pk} was not sent; giving its claim back once the database answers")
    except DATABASE_DOWN:
        pass  # the claim runs out with its lease


def take_event(*, account_id: int, event_id: str) -> bool:
    """Remember a channel event that is not a message (a message's event id is
    recorded with it, see accept_incoming); False when it was taken in before."""
    return _take_event(account_id, event_id)


def _take_event(account_id: int, event_id: str) -> bool:
    try:
        with transaction.atomic():
            ReceivedEvent.objects.create(account_id=account_id, event_id=event_id)
    except IntegrityError:
        return False
    return True


# Telegram redelivers an update for at most a day; a week covers any outage.
RECEIVED_EVENTS_KEPT = timedelta(days=7)


def prune_received_events() -> int:
    """Forget event ids older than any redelivery: the table would grow with every update."""
    deleted, _ = ReceivedEvent.objects.filter(received_at__lt=timezone.now() - RECEIVED_EVENTS_KEPT).delete()
    return deleted


def mark_blocked(*, conversation: Conversation, blocked: bool) -> None:
    """The customer blocked the bot (or unblocked it): nothing is sent while blocked."""
    Conversation.objects.filter(pk=conversation.pk).update(blocked_at=timezone.now() if blocked else None)
    conversation.refresh_from_db(fields=["blocked_at"])


def hand_off(*, conversation: Conversation, reason: str) -> None:
    """The dialog goes to a person: the bot stops answering, the channel is told."""
    updated = (
        Conversation.objects.filter(pk=conversation.pk)
        .exclude(state=Conversation.State.OPERATOR)
        .update(state=Conversation.State.OPERATOR, handed_off_at=timezone.now(), handoff_reason=reason[:500])
    )
    conversation.refresh_from_db(fields=["state", "handed_off_at", "handoff_reason"])
    if updated:
        try:
            sender_for(conversation.channel).hand_off(conversation, reason)
        except DeliveryError as exc:
            logger.warning("hand-off of conversation %s not passed to the channel: %s", conversation.pk, exc)


def take_over(*, conversation: Conversation, operator) -> None:
    conversation.state = Conversation.State.OPERATOR
    conversation.assigned_operator = operator
    conversation.handed_off_at = conversation.handed_off_at or timezone.now()
    conversation.save(update_fields=["state", "assigned_operator", "handed_off_at"])


def return_to_bot(*, conversation: Conversation) -> None:
    conversation.state = Conversation.State.BOT
    conversation.assigned_operator = None
    conversation.save(update_fields=["state", "assigned_operator"])


def close(*, conversation: Conversation) -> None:
    conversation.state = Conversation.State.CLOSED
    conversation.save(update_fields=["state"])


def start_new_context(*, conversation: Conversation) -> None:
    """A new session in the channel: earlier turns no longer count as history."""
    conversation.context_started_at = timezone.now()
    if conversation.state == Conversation.State.CLOSED:
        conversation.state = Conversation.State.BOT
    conversation.save(update_fields=["context_started_at", "state"])


def send_operator_reply(*, conversation: Conversation, operator, text: str, client_token: str = "") -> Message:
    """An operator's answer typed in admin, the inbox or the API: recorded, then passed to the channel.

    `client_token` names the reply box (or the API request) it came from: the
    same token again (a double click, a retried request) returns the reply
    already recorded and sends nothing more.
    """
    client_token = client_token[:64]
    if client_token:
        existing = _operator_reply_with(conversation, client_token)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            message = record_outgoing(
                conversation=conversation,
                text=text,
                author=Message.Author.OPERATOR,
                operator=operator,
                client_token=client_token,
            )
    except IntegrityError:
        # The same submit, recorded by a parallel request a moment ago: that one sends it.
        existing = _operator_reply_with(conversation, client_token)
        if existing is None:
            raise
        return existing
    if conversation.assigned_operator_id is None or conversation.state != Conversation.State.OPERATOR:
        take_over(conversation=conversation, operator=operator)
    try:
        deliver(message)
    except DeliveryError as exc:
        logger.warning("operator reply %s not delivered: %s", message.pk, exc)
    return message


def approve_draft(*, message: Message, operator, text: str = "") -> Message:
    """A draft the operator approved (edited or not) goes to the customer, once.

    Two operators approving at once: the first wins, the second gets the
    message as the first left it. The dialog stays the operator's.
    """
    text = text.strip() or message.text
    approved = Message.objects.filter(pk=message.pk, delivery_state=Message.Delivery.DRAFT).update(
        delivery_state=Message.Delivery.PENDING, text=text, operator=operator
    )
    message.refresh_from_db()
    if not approved:
        return message
    conversation = message.conversation
    if conversation.assigned_operator_id is None or conversation.state != Conversation.State.OPERATOR:
        take_over(conversation=conversation, operator=operator)
    try:
        deliver(message)
    except DeliveryError as exc:
        logger.warning("approved draft %s not delivered: %s", message.pk, exc)
    return message


def discard_draft(*, message: Message) -> bool:
    """The operator threw the draft away; False when it was not a draft (any more)."""
    return bool(
        Message.objects.filter(pk=message.pk, delivery_state=Message.Delivery.DRAFT).update(
            delivery_state=Message.Delivery.DISCARDED
        )
    )


def _operator_reply_with(conversation: Conversation, client_token: str) -> Message | None:
    return Message.objects.filter(
        conversation=conversation, author=Message.Author.OPERATOR, client_token=client_token
    ).first()


def accept_incoming(incoming) -> tuple[Message, bool]:
    """Record a parsed channel message; (message, False) for a repeated delivery.

    An operator writing inside the channel takes the dialog over: the bot
    stays silent until it is returned to the bot. Every webhook waits on this,
    so on PostgreSQL it is one statement (see _accept_upsert).
    """
    if connection.vendor == "postgresql":
        return _accept_upsert(incoming)
    return _accept_step_by_step(incoming)


@transaction.atomic  # one commit per event: the conversation, the message, its time and its event id
def _accept_step_by_step(incoming) -> tuple[Message, bool]:
    account_id = incoming.account_id or account_id_for(incoming.channel)
    if incoming.event_id and not _take_event(account_id, incoming.event_id):
        conversation = Conversation.objects.filter(account_id=account_id, external_id=incoming.dialog_id).first()
        stored = (
            Message.objects.filter(
                conversation=conversation, direction=Message.Direction.IN, external_id=incoming.message_id
            ).first()
            if conversation is not None
            else None
        )
        if stored is not None:
            return stored, False
    conversation = get_or_create_conversation(
        channel=incoming.channel,
        external_id=incoming.dialog_id,
        account_id=incoming.account_id,
        customer_name=incoming.customer_name if incoming.author == Message.Author.CUSTOMER else "",
        customer_external_id=incoming.customer_id if incoming.author == Message.Author.CUSTOMER else "",
        channel_data=incoming.channel_data,
    )
    message, created = record_incoming(
        conversation=conversation,
        text=incoming.text,
        external_id=incoming.message_id,
        author=incoming.author,
        raw_payload=incoming.raw_payload,
        attachments=incoming.attachments,
        needs_reply=incoming.needs_reply,
    )
    if created and incoming.author == Message.Author.OPERATOR and conversation.state == Conversation.State.BOT:
        Conversation.objects.filter(pk=conversation.pk).update(
            state=Conversation.State.OPERATOR, handed_off_at=timezone.now()
        )
        conversation.state = Conversation.State.OPERATOR
    return message, created


# The same as _accept_step_by_step, in one round trip and without savepoints:
# the conversation is inserted or updated (name, channel data merged, time of
# the last message, an operator's takeover) and the message inserted unless the
# channel delivered it before. A repeat is seen by `seen` (read only when the
# conversation exists, and then once) and, when two copies race, by the unique
# index: DO NOTHING. A channel event id (Telegram's update_id) is recorded in
# the same statement, so it is remembered exactly when its message is.
_UPSERT_SQL = """
WITH event AS (
    INSERT INTO {event} (account_id, event_id, received_at)
    SELECT %(c_account_id)s, %(event_id)s::varchar, %(c_created_at)s WHERE %(event_id)s::varchar <> ''
    ON CONFLICT (account_id, event_id) DO NOTHING
    RETURNING 1
), seen AS (
    SELECT EXISTS (SELECT 1 FROM {message} WHERE {repeat})
           OR (%(event_id)s::varchar <> '' AND NOT EXISTS (SELECT 1 FROM event)) AS repeat
), conversation AS (
    INSERT INTO {conversation} AS c ({conversation_columns}) VALUES ({conversation_values})
    ON CONFLICT (account_id, external_id) DO UPDATE SET
        customer_name = CASE WHEN EXCLUDED.customer_name <> '' THEN EXCLUDED.customer_name
                             ELSE c.customer_name END,
        channel_data = c.channel_data || EXCLUDED.channel_data,
        last_message_at = CASE WHEN (SELECT repeat FROM seen)
                               THEN c.last_message_at ELSE EXCLUDED.last_message_at END,
        state = CASE WHEN %(takes_over)s AND c.state = %(bot)s AND NOT (SELECT repeat FROM seen)
                     THEN %(operator)s ELSE c.state END,
        handed_off_at = CASE WHEN %(takes_over)s AND c.state = %(bot)s AND NOT (SELECT repeat FROM seen)
                             THEN EXCLUDED.last_message_at ELSE c.handed_off_at END
    RETURNING {conversation_returning}
), message AS (
    INSERT INTO {message} ({message_columns}) SELECT {message_values} FROM conversation
    WHERE NOT (SELECT repeat FROM seen)
    ON CONFLICT (conversation_id, external_id) WHERE direction = 'in' AND NOT external_id = '' DO NOTHING
    RETURNING {message_returning}
)
SELECT conversation.*, message.* FROM conversation LEFT JOIN message ON TRUE
"""


def _accept_upsert(incoming) -> tuple[Message, bool]:
    return _from_upsert_row(incoming, _run_upsert(_upsert_params(incoming)))


def _upsert_params(incoming) -> dict:
    now = timezone.now()
    customer = incoming.author == Message.Author.CUSTOMER
    takes_over = incoming.author == Message.Author.OPERATOR
    conversation = {
        "channel": incoming.channel,
        "account_id": incoming.account_id or account_id_for(incoming.channel),
        "external_id": incoming.dialog_id,
        "customer_name": incoming.customer_name if customer else "",
        "customer_external_id": incoming.customer_id if customer else "",
        "state": Conversation.State.OPERATOR if takes_over else Conversation.State.BOT,
        "channel_data": incoming.channel_data or {},
        "context_started_at": now,
        "handed_off_at": now if takes_over else None,
        "created_at": now,
        "last_message_at": now,
    }
    message = {
        "channel": incoming.channel,
        "direction": Message.Direction.IN,
        "author": incoming.author,
        "text": incoming.text,
        "external_id": incoming.message_id,
        "raw_payload": strip_secrets(incoming.raw_payload or {}),
        "attachments": strip_secrets(incoming.attachments or []),
        "needs_reply": incoming.needs_reply,
        "created_at": now,
    }
    params = {
        **_default_params(),
        "takes_over": takes_over,
        "bot": Conversation.State.BOT,
        "operator": Conversation.State.OPERATOR,
        "event_id": incoming.event_id,
    }
    for prefix, model, values in (("c", Conversation, conversation), ("m", Message, message)):
        fields = _fields_by_attname(model)
        for attname, value in values.items():
            field = fields[attname]
            params[f"{prefix}_{field.column}"] = field.get_db_prep_save(value, connection)
    return params


@functools.cache
def _fields_by_attname(model) -> dict:
    return {f.attname: f for f in _saved_fields(model)}


@functools.cache
def _default_params() -> dict:
    """Every saved column as a new conversation and message have it, prepared once: each event
    sets only the dozen columns it decides, and preparing all sixty for every message was most
    of the CPU a poll of a marketplace spent on recording it."""
    params = {}
    for prefix, obj in (("c", Conversation()), ("m", Message())):
        for f in _saved_fields(type(obj)):
            if f.name == "conversation":
                continue
            if f.has_default() and callable(f.default) and f.default not in (dict, list):
                # A default made anew each time (a clock, a token) cannot be prepared once.
                raise ImproperlyConfigured(f"{type(obj).__name__}.{f.name}: set it in _upsert_params")
            params[f"{prefix}_{f.column}"] = f.get_db_prep_save(getattr(obj, f.attname), connection)
    return params


def _from_upsert_row(incoming, row: tuple) -> tuple[Message, bool]:
    n = len(Conversation._meta.concrete_fields)
    conversation = _from_row(Conversation, row[:n])
    if row[n] is None:
        # A repeated delivery: the message stored the first time.
        stored = Message.objects.filter(
            conversation=conversation, direction=Message.Direction.IN, external_id=incoming.message_id
        ).first()
        if stored is None:
            # The event id was taken in without this message (another kind of
            # event under that id): the message is recorded on its own key.
            return _accept_upsert(dataclasses.replace(incoming, event_id=""))
        stored.conversation = conversation
        return stored, False
    message = _from_row(Message, row[n:])
    message.conversation = conversation
    return message, True


def accept_incoming_many(incomings: list) -> list[tuple[Message, bool]]:
    """accept_incoming for a batch (a marketplace poll's page), in order, inside the caller's transaction.

    On PostgreSQL the upserts go out in one pipeline: the round trip per
    message, most of the time of recording one, is paid once per batch.
    """
    if connection.vendor != "postgresql" or len(incomings) < 2 or any(i.event_id for i in incomings):
        return [accept_incoming(incoming) for incoming in incomings]
    params = [_upsert_params(incoming) for incoming in incomings]
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = connection.connection
        cursors = []
        with raw.pipeline():
            for one in params:
                cursor = psycopg.Cursor(raw)
                cursor.execute(_upsert_sql(), one, prepare=True)
                cursors.append(cursor)
        rows = []
        for cursor in cursors:
            rows.append(cursor.fetchone())
            cursor.close()
    return [_from_upsert_row(incoming, row) for incoming, row in zip(incomings, rows, strict=True)]


def _run_upsert(params: dict) -> tuple:
    # Django's cursor binds parameters on the client, so PostgreSQL would parse
    # and plan this statement for every event; the driver's own cursor prepares
    # it once per connection. It also skips the health check (a SELECT 1 before
    # the first query of each request): a persistent connection the server has
    # dropped fails here instead, and the statement, idempotent, runs again on
    # a new one. Within a transaction the caller's work is gone with the
    # connection, so there it is not retried.
    try:
        return _execute_upsert(params)
    except DATABASE_DOWN:
        if connection.in_atomic_block:
            raise
        logger.warning("database connection lost: recording the message again on a new one")
        connection.close()
        return _execute_upsert(params)


def _execute_upsert(params: dict) -> tuple:
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_upsert_sql(), params, prepare=True)
        return cursor.fetchone()


def _squeezed(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


@functools.cache
def _upsert_sql() -> str:
    quote = connection.ops.quote_name
    conversation_fields = _saved_fields(Conversation)
    message_fields = _saved_fields(Message)
    message_values = ["conversation.id" if f.name == "conversation" else f"%(m_{f.column})s" for f in message_fields]
    # One line, its runs of spaces squeezed: psycopg caches its conversion of a
    # statement only up to 4,096 bytes (MAX_CACHED_STATEMENT_LENGTH), and this
    # one, indented, is longer: every message would pay for parsing it again.
    return _squeezed(_UPSERT_SQL).format(
        conversation=quote(Conversation._meta.db_table),
        message=quote(Message._meta.db_table),
        event=quote(ReceivedEvent._meta.db_table),
        conversation_columns=", ".join(quote(f.column) for f in conversation_fields),
        conversation_values=", ".join(f"%(c_{f.column})s" for f in conversation_fields),
        conversation_returning=", ".join(f"c.{quote(f.column)}" for f in Conversation._meta.concrete_fields),
        message_columns=", ".join(quote(f.column) for f in message_fields),
        message_values=", ".join(message_values),
        message_returning=", ".join(quote(f.column) for f in Message._meta.concrete_fields),
        # An empty external id is never a repeat (the unique index leaves it out).
        repeat=(
            "direction = 'in' AND external_id = %(m_external_id)s AND external_id <> '' AND conversation_id = "
            f"(SELECT id FROM {quote(Conversation._meta.db_table)} "
            "WHERE account_id = %(c_account_id)s AND external_id = %(c_external_id)s)"
        ),
    )


@functools.cache
def _saved_fields(model) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _from_row(model, values):
    fields = model._meta.concrete_fields
    converted = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
