"""Reads of orders and customers, for the API, admin and the deal events."""

from datetime import timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from conversations.models import Conversation
from orders.models import (
    Customer,
    CustomerIdentity,
    Order,
    OrderLine,
    OrderState,
    ReturnPhoto,
    ReturnRequest,
    ReturnState,
)

# Order numbers are a PositiveIntegerField: anything larger is no order (and would overflow the query).
MAX_NUMBER = 2_147_483_647


def orders_list(*, state: str = "") -> QuerySet[Order]:
    """Newest first, with what a list shows (customer, lines) fetched along."""
    orders = Order.objects.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id"))
    )
    if state:
        orders = orders.filter(state=state)
    return orders.order_by("-created_at", "-id")


def order_by_number(number: int) -> Order | None:
    if not 0 < number <= MAX_NUMBER:
        return None
    return orders_list().filter(number=number).first()


def order_for_deal(*, domain: str, deal_id: str) -> Order | None:
    """The order whose Bitrix24 deal this is; a deal id repeats across portals, so the domain too when known."""
    orders = Order.objects.filter(crm_deal_id=deal_id)
    if domain:
        orders = orders.filter(crm_domain=domain)
    return orders.order_by("pk").first()


def customers_with_order_counts() -> QuerySet[Customer]:
    return Customer.objects.annotate(order_count=Count("orders"))


# One customer's orders and returns, for the dialog (bots.after_sale) ----------------

# Goods that reached the customer, or are on their way: what can be returned.
RETURNABLE_STATES = (OrderState.SHIPPED, OrderState.DELIVERED, OrderState.WON)
# A return request waits this long for its photos after it asked; a picture sent later is not taken for it.
PHOTO_WAIT = timedelta(days=2)
OPEN_RETURN_STATES = (ReturnState.AWAITING_PHOTOS, ReturnState.NEW)


DIALOG_PREFIX = "dialog:"  # an identity made for a dialog whose channel names no user (orders.services.customer_for)


def customer_conversations(customer: Customer) -> QuerySet[Conversation]:
    """The dialogs of the customer in every channel: those of each of their identities, newest first."""
    return Conversation.objects.filter(customer_conversations_q(customer)).order_by("-last_message_at", "-id")


def customer_conversations_q(customer: Customer) -> Q:
    """What picks the customer's dialogs out of conversations: each of their identities' dialogs."""
    matches = Q(pk__in=[])
    for account_id, user_id in customer.identities.values_list("account_id", "external_user_id"):
        if user_id.startswith(DIALOG_PREFIX):
            matches |= Q(account_id=account_id, external_id=user_id.removeprefix(DIALOG_PREFIX))
        else:
            matches |= Q(account_id=account_id, customer_external_id=user_id)
    return matches


def customer_of(conversation: Conversation) -> Customer | None:
    """The customer behind a dialog, when they are one already (orders.services.customer_for makes one)."""
    user_id = conversation.customer_external_id or f"{DIALOG_PREFIX}{conversation.external_id}"
    identity = (
        CustomerIdentity.objects.select_related("customer")
        .filter(account_id=conversation.account_id, external_user_id=user_id)
        .first()
    )
    return identity.customer if identity else None


def customer_orders(customer: Customer) -> QuerySet[Order]:
    """The customer's orders, newest first, with their lines."""
    return (
        Order.objects.filter(customer=customer)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("id")))
        .order_by("-created_at", "-id")
    )


def customer_order(customer: Customer, number: int) -> Order | None:
    """The customer's own order with this number. Someone else's is None, like one that does not exist:
    the dialog must not tell the two apart."""
    if not 0 < number <= MAX_NUMBER:
        return None
    return customer_orders(customer).filter(number=number).first()


def returnable_order(customer: Customer) -> Order | None:
    """The customer's latest order that was delivered or is on its way."""
    return customer_orders(customer).filter(state__in=RETURNABLE_STATES).first()


def open_return(order: Order) -> ReturnRequest | None:
    """The order's return request still with the customer or staff (awaiting photos, or new)."""
    return ReturnRequest.objects.filter(order=order, state__in=OPEN_RETURN_STATES).order_by("-pk").first()


def dialog_returns(message) -> tuple[ReturnRequest | None, ReturnRequest | None]:
    """For a customer message, in one query: the return request it opened or completed already (its task
    is a retry, to be answered the same way), and the dialog's request that asked for photos lately and has
    none yet."""
    since = timezone.now() - PHOTO_WAIT
    waiting = Q(conversation_id=message.conversation_id, state=ReturnState.AWAITING_PHOTOS, updated_at__gte=since)
    rows = list(
        ReturnRequest.objects.select_related("order")
        .filter(Q(opened_by=message) | Q(submitted_by=message) | waiting)
        .order_by("-pk")[:5]
    )
    done = next((r for r in rows if message.pk in (r.opened_by_id, r.submitted_by_id)), None)
    awaiting = next(
        (
            r
            for r in rows
            if r.state == ReturnState.AWAITING_PHOTOS
            and r.conversation_id == message.conversation_id
            and r.updated_at >= since
        ),
        None,
    )
    return done, awaiting


def awaits_return_photos(message) -> bool:
    """Whether the pictures of this message are for a return request: its dialog's request asked for
    photos, or this very message sent them in already (a retry)."""
    done, awaiting = dialog_returns(message)
    return awaiting is not None or (done is not None and done.submitted_by_id == message.pk)


def recent_pictures(message, *, within: timedelta) -> list:
    """The customer's messages with pictures sent in the dialog shortly before this one (newest last), not
    yet kept for any return: photos sent first, the complaint written after."""
    from conversations.models import Message

    earlier = (
        Message.objects.filter(
            conversation_id=message.conversation_id,
            direction=Message.Direction.IN,
            author=Message.Author.CUSTOMER,
            pk__lt=message.pk,
            created_at__gte=message.created_at - within,
        )
        .exclude(attachments=[])
        .exclude(pk__in=ReturnPhoto.objects.filter(message__isnull=False).values("message_id"))
        .order_by("-pk")[:5]
    )
    return list(reversed(earlier))


def latest_return(customer: Customer) -> ReturnRequest | None:
    """The customer's newest return request (by its order: the customer they are after a merge)."""
    return (
        ReturnRequest.objects.select_related("order")
        .filter(order__customer=customer)
        .order_by("-created_at", "-pk")
        .first()
    )
