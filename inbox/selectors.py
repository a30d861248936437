"""What the operator inbox reads: the dialogs staff look after, and a dialog's messages."""

from datetime import UTC, datetime

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from conversations.models import Conversation, Message
from orders.models import Customer, Order
from orders.phones import InvalidPhone, normalize_phone
from orders.selectors import customer_conversations_q

LIST_SIZE = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WAITING = Q(state=Conversation.State.OPERATOR, assigned_operator__isnull=True)


class Show:
    ALL = "all"
    WAITING = "waiting"
    MINE = "mine"
    UNASSIGNED = "unassigned"
    OVERDUE = "overdue"  # worked out after the query, from the SLA deadlines (inbox.sla)
    CHOICES = (ALL, WAITING, MINE, UNASSIGNED, OVERDUE)


def inbox_dialogs(*, user, show: str = Show.ALL, channel: str = "", query: str = "") -> QuerySet[Conversation]:
    """Dialogs for the list: those waiting for an operator first (the longest waiting first), then the rest
    by their last message; each with its last message and how many customer messages came since the last answer."""
    last_message = Message.objects.filter(conversation=OuterRef("pk")).order_by("-created_at", "-id")
    last_answer_at = (
        Message.objects.filter(conversation=OuterRef("pk"), direction=Message.Direction.OUT)
        .order_by("-created_at", "-id")
        .values("created_at")[:1]
    )
    dialogs = Conversation.objects.select_related("account", "assigned_operator").annotate(
        last_text=Subquery(last_message.values("text")[:1]),
        last_author=Subquery(last_message.values("author")[:1]),
        last_answer_at=Subquery(last_answer_at),
        is_waiting=Case(When(WAITING, then=Value(True)), default=Value(False), output_field=BooleanField()),
        waiting_since=Case(When(WAITING, then=F("handed_off_at")), default=None),
    )
    # A count per row, not a join grouped over every message of every dialog: only the page's rows pay for it.
    since_answer = Message.objects.filter(
        conversation=OuterRef("pk"),
        direction=Message.Direction.IN,
        created_at__gt=Coalesce(OuterRef("last_answer_at"), Value(EPOCH, output_field=DateTimeField())),
    )
    counted = since_answer.order_by().values("conversation").annotate(n=Count("id")).values("n")[:1]
    dialogs = dialogs.annotate(unread=Coalesce(Subquery(counted, output_field=IntegerField()), 0))
    if show == Show.WAITING:
        dialogs = dialogs.filter(WAITING)
    elif show == Show.MINE:
        # A machine (the API token) has no dialogs of its own.
        dialogs = dialogs.filter(assigned_operator=user) if user is not None else dialogs.none()
    elif show == Show.UNASSIGNED:
        dialogs = dialogs.filter(assigned_operator__isnull=True).exclude(state=Conversation.State.CLOSED)
    if channel:
        dialogs = dialogs.filter(channel=channel)
    text = query.strip()
    if text:
        dialogs = dialogs.filter(_matching(text))
    return dialogs.order_by(
        F("is_waiting").desc(),
        F("waiting_since").asc(nulls_last=True),
        F("last_message_at").desc(nulls_last=True),
        "-id",
    )


def _matching(text: str) -> Q:
    """A dialog found by its customer's name or id, their phone however written, an order's number, or a message."""
    found = (
        Q(customer_name__icontains=text)
        | Q(customer_external_id__icontains=text)
        | Q(pk__in=Message.objects.filter(text__icontains=text).values("conversation_id"))
    )
    digits = text.lstrip("№#").strip()
    if digits.isdigit() and len(digits) <= 9:
        found |= Q(pk__in=Order.objects.filter(number=int(digits)).values("conversation_id"))
    try:
        phone = normalize_phone(text)
    except InvalidPhone:
        return found
    for customer in Customer.objects.filter(phone=phone):
        found |= customer_conversations_q(customer)
    return found


def dialog_messages(conversation: Conversation, *, after: int = 0) -> QuerySet[Message]:
    """The dialog's messages in order, with what made each bot reply; only those after `after` for a poll."""
    messages = (
        conversation.messages.select_related("operator").prefetch_related("products").order_by("created_at", "id")
    )
    if after:
        messages = messages.filter(pk__gt=after)
    return messages
