"""The worker's side of a customer message, shared by every channel: the
assistant's reply recorded, handed off when asked, and sent.

The assistant (bots.assistant) only says what it would answer; recording,
sending and handing off happen here, so every channel gets the same
guarantees: one reply per message, a hand-off made before its notice is sent,
nothing sent into a dialog an operator has taken.
"""

import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from bots import assistant
from conversations.channels import reply_policy
from conversations.models import Conversation, Message
from conversations.services import DialogTaken, deliver, give_back_claim, hand_off, record_outgoing
from integrations import voice

logger = logging.getLogger(__name__)

NOT_SENT_OPERATOR = "not sent: an operator took over the dialog"
RESUMED_HANDOFF_REASON = "the customer asked for a person (hand-off finished on a retry)"
BUTTON_HANDOFF_REASON = "the customer pressed «Позвать оператора»"
# Replies not sent from here: a draft (an operator approves it), a send of unknown outcome or a discarded draft.
HELD = (Message.Delivery.DRAFT, Message.Delivery.UNKNOWN, Message.Delivery.DISCARDED)
# Messages shown to staff with a hand-off notice.
NOTICE_HISTORY = 5


def respond(message: Message) -> Message | None:
    """The bot's reply to a customer message, or None when the bot stays silent.

    Safe to call again for the same message (a retried task, a sweep): the
    reply is made once; a reply whose delivery failed is sent again.
    """
    if message.direction != Message.Direction.IN or message.author != Message.Author.CUSTOMER:
        return None
    if not message.needs_reply:
        return None
    existing = _reply_to(message)
    if existing is not None and existing.delivery_state in HELD:
        return existing  # a draft waits for an operator; an unknown send waits for the channel's next read
    if existing is not None:
        if existing.reply_kind == Message.ReplyKind.HANDOFF and existing.delivery_state != Message.Delivery.SENT:
            # The hand-off was recorded but may not have been made (a worker
            # that died, a queue that was down): the dialog goes to a person
            # before the customer is told so. Done already, it does nothing.
            hand_off(conversation=message.conversation, reason=RESUMED_HANDOFF_REASON)
        return _send(existing)
    conversation = message.conversation
    started = time.monotonic()
    # A voice message is transcribed first; media the bot cannot read get a fixed reply.
    answer = voice.prepare(message) or assistant.reply(conversation, message)
    if answer is None:
        return None
    # The channel's rules on what may go out, and whether a person approves it first (a marketplace's).
    decision = reply_policy(message, answer.text)
    held = decision.hold_reason
    # Recorded only while the dialog is still the bot's (checked under the
    # conversation's row lock), and claimed for this worker's send in the same
    # commit: no other worker sends it, and no separate write claims it.
    claimed_at = timezone.now()
    try:
        with transaction.atomic():
            outgoing = record_outgoing(
                conversation=conversation,
                text=decision.text,
                in_reply_to=message,
                reply_kind=decision.kind or answer.kind,
                products=answer.products,
                llm_model=answer.llm_model,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                duration_ms=int((time.monotonic() - started) * 1000),
                llm_error=answer.llm_error,
                suggestions=answer.suggestions,
                # What a follow-up («а подешевле?») will refer to, kept with the reply that showed it.
                dialog_context=answer.context,
                claimed_at=None if held else claimed_at,
                while_bot=True,
                draft=bool(held),
            )
    except DialogTaken:
        # An operator took the dialog meanwhile: the bot stays silent.
        return None
    except IntegrityError:
        # Another worker answered this message first.
        return _reply_to(message)
    if held:
        # A draft for an operator: never sent from here; the dialog waits for a person.
        hand_off(conversation=conversation, reason=held)
        return outgoing
    if not answer.handoff:
        # The state was read with the recording, right before this send.
        deliver(outgoing, claimed_at=claimed_at)
        return outgoing
    try:
        # The state changes first, so the dialog is the operator's even if
        # the hand-off text cannot be delivered right now.
        hand_off(conversation=conversation, reason=answer.handoff_reason)
        outgoing.conversation.refresh_from_db(fields=["blocked_at"])
    except BaseException:
        # Nothing was sent: the reply is not held back for the claim's lease.
        give_back_claim(outgoing)
        raise
    deliver(outgoing, claimed_at=claimed_at)
    return outgoing


def _reply_to(message: Message) -> Message | None:
    # Not ordered: one reply at most (a unique index), found by that index.
    found = list(Message.objects.filter(in_reply_to=message, author=Message.Author.BOT).order_by()[:1])
    return found[0] if found else None


def hand_off_and_notify(notice: Message, *, reason: str = BUTTON_HANDOFF_REASON) -> Message:
    """A recorded hand-off notice: the dialog goes to a person, then the customer is told so."""
    hand_off(conversation=notice.conversation, reason=reason)
    return _send(notice)


def _send(outgoing: Message) -> Message:
    if outgoing.delivery_state == Message.Delivery.SENT:
        return outgoing
    outgoing.conversation.refresh_from_db(fields=["state", "blocked_at"])
    # Checked again right before sending: a bot reply never lands after an
    # operator took over (a hand-off reply itself is still sent).
    if outgoing.conversation.state != Conversation.State.BOT and outgoing.reply_kind != Message.ReplyKind.HANDOFF:
        outgoing.delivery_state = Message.Delivery.FAILED
        outgoing.delivery_error = NOT_SENT_OPERATOR
        outgoing.save(update_fields=["delivery_state", "delivery_error"])
        return outgoing
    deliver(outgoing)
    return outgoing


def staff_notice(conversation: Conversation, reason: str) -> dict:
    """What staff are told when a dialog needs a person, for a channel to format:
    {"title", "customer", "reason", "admin_url", "messages": [(author label, text), ...]}."""
    admin_url = settings.PUBLIC_URL.rstrip("/") + reverse(
        "admin:conversations_conversation_change", args=[conversation.pk]
    )
    recent = list(
        conversation.messages.exclude(text="", transcript="")
        .order_by("-created_at", "-id")[:NOTICE_HISTORY]
        .values_list("author", "text", "transcript")
    )
    labels = {Message.Author.CUSTOMER: "Клиент", Message.Author.BOT: "Бот", Message.Author.OPERATOR: "Оператор"}
    return {
        "title": "Клиенту нужен оператор",
        "customer": conversation.customer_name or conversation.customer_external_id or "—",
        "reason": reason or "—",
        "admin_url": admin_url,
        "messages": [
            (labels.get(author, "Система"), (transcript or text)[:300]) for author, text, transcript in reversed(recent)
        ],
    }
