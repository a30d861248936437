"""The inbound path every channel shares, after its webhook has verified and
parsed an event into an IncomingMessage: record once, queue the work, return.

Nothing here calls a channel or the LLM: the webhook answers at once and the
worker (integrations.tasks) does the rest. The texts the customer sees come
from the assistant's settings, never from a channel package.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from bots.models import AssistantSettings
from conversations.incoming import IncomingMessage
from conversations.models import Conversation, Message
from conversations.services import accept_incoming, record_outgoing
from integrations import tasks

# A channel may deliver a join twice; a second welcome within this time is the same join.
WELCOME_REPEAT_S = 60


def take_in(incoming: IncomingMessage) -> tuple[Message, bool]:
    """Record a customer's (or an in-channel operator's) message and queue its answer.

    (message, False) for a repeat, which queues nothing: a message is answered once.
    """
    message, created = accept_incoming(incoming)
    conversation = message.conversation
    if not created or message.author != Message.Author.CUSTOMER or not message.needs_reply:
        return message, created
    if conversation.state == Conversation.State.BOT:
        tasks.enqueue_answer(message)
    elif conversation.state == Conversation.State.OPERATOR and _waiting_unanswered(conversation):
        tell_a_person_will_answer(conversation, message)
    return message, created


def _waiting_unanswered(conversation: Conversation) -> bool:
    """Handed to a person who has not written yet, and the customer not yet told so since the hand-off.

    A dialog an operator took over in admin is theirs already: the bot says nothing there.
    """
    since = conversation.handed_off_at
    if since is None or conversation.assigned_operator_id is not None:
        return False
    later = Message.objects.filter(conversation=conversation, created_at__gt=since)
    return not later.filter(
        Q(author=Message.Author.OPERATOR) | Q(author=Message.Author.BOT, reply_kind=Message.ReplyKind.HANDOFF)
    ).exists()


def tell_a_person_will_answer(conversation: Conversation, message: Message) -> Message:
    """Once per hand-off: the customer who writes again is told a person will answer (and when, off duty)."""
    notice = record_outgoing(
        conversation=conversation,
        text=AssistantSettings.load().waiting_reply(),
        in_reply_to=message,
        reply_kind=Message.ReplyKind.HANDOFF,
    )
    tasks.enqueue_delivery(notice)
    return notice


def request_operator(incoming: IncomingMessage) -> tuple[Message, bool]:
    """The customer asked for a person (a button, a command): recorded, the
    hand-off notice recorded, the hand-off and the notice queued for the worker."""
    message, created = accept_incoming(incoming)
    conversation = message.conversation
    if not created or conversation.state != Conversation.State.BOT:
        return message, created
    notice = record_outgoing(
        conversation=conversation,
        text=AssistantSettings.load().handoff_reply(),
        in_reply_to=message,
        reply_kind=Message.ReplyKind.HANDOFF,
    )
    tasks.enqueue("integrations.tasks.hand_off_and_notify", notice.pk, task_name=f"handoff-{notice.pk}")
    return message, created


def greet(incoming: IncomingMessage, *, suggestions=()) -> tuple[Message, bool]:
    """A command that starts or explains the dialog (/start, /help): recorded,
    answered with the welcome once (its reply is unique per message)."""
    message, created = accept_incoming(incoming)
    if created and message.conversation.state == Conversation.State.BOT:
        welcome(message.conversation, in_reply_to=message, suggestions=suggestions)
    return message, created


def welcome(conversation: Conversation, *, in_reply_to: Message | None = None, suggestions=()) -> Message:
    """The welcome recorded and queued. A channel's join event has no message
    to answer: its caller checks welcomed_recently() first, as a join may be delivered twice."""
    greeting = record_outgoing(
        conversation=conversation,
        text=AssistantSettings.load().welcome,
        in_reply_to=in_reply_to,
        reply_kind=Message.ReplyKind.GREETING,
        suggestions=suggestions,
    )
    tasks.enqueue_delivery(greeting)
    return greeting


def welcomed_recently(conversation: Conversation) -> bool:
    return Message.objects.filter(
        conversation=conversation,
        author=Message.Author.BOT,
        reply_kind=Message.ReplyKind.GREETING,
        in_reply_to__isnull=True,
        created_at__gte=timezone.now() - timedelta(seconds=WELCOME_REPEAT_S),
    ).exists()
