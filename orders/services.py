"""Writes of customers and orders: who is ordering, the order itself, its state, and what the customer is told.

For the dialog (which will build on these): `customer_for(conversation)` is the
person behind a dialog, `set_phone` gives them a phone (and merges them with
whoever had it), `create_order` turns products and quantities into an order at
this moment's prices and stock or says what changed (OrderChanged), and the
state changes tell the customer in the channel the order came from.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import Product
from conversations.models import Conversation, Message
from conversations.services import record_outgoing
from orders.models import (
    Customer,
    CustomerIdentity,
    NumberSequence,
    Order,
    OrderChange,
    OrderLine,
    OrderStageText,
    OrderState,
    ReturnRequest,
)
from orders.phones import normalize_phone

logger = logging.getLogger(__name__)

ORDER_SEQUENCE = "order"
FIRST_NUMBER = 1001
MAX_QUANTITY = 999
MAX_LINES = 100
CENTS = Decimal("0.01")


class OrderError(ValueError):
    """An order that cannot be made as asked; str(exc) says why, in words for the customer."""


class OrderChanged(OrderError):
    """Prices changed or stock ran out since the customer saw the products; nothing was ordered.

    `price_changes` and `shortages` say which, for the dialog to tell the
    customer and ask again.
    """

    def __init__(self, price_changes: list["PriceChange"], shortages: list["Shortage"]):
        self.price_changes = price_changes
        self.shortages = shortages
        super().__init__("\n".join([*(str(c) for c in price_changes), *(str(s) for s in shortages)]))


@dataclass(frozen=True)
class PriceChange:
    product_id: int
    title: str
    old_price: Decimal | None
    new_price: Decimal

    def __str__(self) -> str:
        return _("The price of «%(title)s» has changed: it was %(old)s, now it is %(new)s.") % {
            "title": self.title,
            "old": money(self.old_price) if self.old_price is not None else "—",
            "new": money(self.new_price),
        }


@dataclass(frozen=True)
class Shortage:
    product_id: int | None
    title: str
    wanted: int
    available: int  # 0: none left (or no longer sold)

    def __str__(self) -> str:
        if not self.available:
            return _("«%(title)s» is out of stock.") % {"title": self.title}
        return _("Only %(available)s of «%(title)s» are left, the order has %(wanted)s.") % {
            "title": self.title,
            "available": self.available,
            "wanted": self.wanted,
        }


def money(value: Decimal) -> str:
    value = Decimal(value).quantize(CENTS)
    text = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
    return text.replace(",", " ") + " ₽"


# Customers ------------------------------------------------------------------


def customer_for(conversation: Conversation) -> Customer:
    """The customer behind a dialog: the one its channel user already is, or a new one."""
    user_id = conversation.customer_external_id or f"dialog:{conversation.external_id}"
    identity = (
        CustomerIdentity.objects.select_related("customer")
        .filter(account_id=conversation.account_id, external_user_id=user_id)
        .first()
    )
    if identity is not None:
        customer = identity.customer
        if not customer.name and conversation.customer_name:
            customer.name = conversation.customer_name[:255]
            customer.save(update_fields=["name", "updated_at"])
        return customer
    try:
        with transaction.atomic():
            customer = Customer.objects.create(name=conversation.customer_name[:255])
            CustomerIdentity.objects.create(
                customer=customer,
                account_id=conversation.account_id,
                channel=conversation.channel,
                external_user_id=user_id,
            )
            return customer
    except IntegrityError:
        # The same user's other message made them first.
        return (
            CustomerIdentity.objects.select_related("customer")
            .get(account_id=conversation.account_id, external_user_id=user_id)
            .customer
        )


def set_phone(customer: Customer, raw: str) -> Customer:
    """Give the customer this phone (normalized); InvalidPhone for what is not one.

    Whoever has the phone already is the same person: the two become one
    customer (the one who had the phone), which is returned. Use the returned
    customer from then on; a merged-away one no longer exists.
    """
    phone = normalize_phone(raw)
    with transaction.atomic():
        owner = Customer.objects.filter(phone=phone).exclude(pk=customer.pk).values_list("pk", flat=True).first()
        if owner is None:
            try:
                with transaction.atomic():
                    Customer.objects.filter(pk=customer.pk).update(phone=phone, updated_at=timezone.now())
            except IntegrityError:
                # Given to someone else a moment ago.
                owner = Customer.objects.values_list("pk", flat=True).get(phone=phone)
            else:
                customer.phone = phone
                return customer
        return _merge(source_id=customer.pk, into_id=owner)


def _merge(*, source_id: int, into_id: int) -> Customer:
    # Both rows locked, in one order, so two merges of the same pair cannot deadlock.
    rows = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[source_id, into_id]).order_by("pk")}
    into = rows[into_id]
    source = rows.get(source_id)
    if source is None:
        return into  # merged already
    changed = []
    if not into.name and source.name:
        into.name = source.name
        changed.append("name")
    if source.consent_to_contact and not into.consent_to_contact:
        into.consent_to_contact, into.consent_at = True, source.consent_at
        changed += ["consent_to_contact", "consent_at"]
    CustomerIdentity.objects.filter(customer_id=source_id).update(customer_id=into_id)
    Order.objects.filter(customer_id=source_id).update(customer_id=into_id)
    ReturnRequest.objects.filter(customer_id=source_id).update(customer_id=into_id)
    source.delete()
    if changed:
        into.save(update_fields=[*changed, "updated_at"])
    logger.info("customer %s merged into %s (the same phone)", source_id, into_id)
    return into


def set_consent(customer: Customer, *, given: bool) -> None:
    """The customer agreed (or no longer agrees) to be called or written to."""
    customer.consent_to_contact = given
    customer.consent_at = timezone.now() if given else None
    customer.save(update_fields=["consent_to_contact", "consent_at", "updated_at"])


# Orders ---------------------------------------------------------------------


def create_order(
    conversation: Conversation,
    lines,
    *,
    fulfilment: str = Order.Fulfilment.DELIVERY,
    address: str = "",
    desired_time: str = "",
    payment: str = Order.Payment.ONLINE,
    comment: str = "",
    phone: str | None = None,
    name: str | None = None,
    confirmed_by: Message | None = None,
    basket_key: str = "",
) -> Order:
    """An order of `lines` [(product, quantity), ...] from the customer of this dialog.

    Each product's price and stock are read again, under a lock, at this
    moment: a price other than the one on `product` (what the customer was
    shown) or too little stock raises OrderChanged listing them, and nothing is
    ordered. Also OrderError for an order below ORDER_MIN_TOTAL, a delivery
    without an address, no phone, or a bad quantity; InvalidPhone for `phone`.
    With B24_CRM_ORDERS the order is then queued for Bitrix24.

    `confirmed_by`: the customer's message that confirmed it; `basket_key`: the
    dialog basket it is made from. One message, or one basket, makes one order:
    a retried task, a second worker or a confirmation sent twice gets the order
    already made.
    """
    existing = _made_already(conversation, confirmed_by, basket_key)
    if existing is not None:
        return existing
    _check_details(fulfilment=fulfilment, payment=payment, address=address)
    wanted = _wanted(lines)
    # Who orders is kept even if the order is refused: the phone need not be asked for again.
    customer = customer_for(conversation)
    if phone:
        customer = set_phone(customer, phone)
    if name and not customer.name:
        customer.name = name.strip()[:255]
        customer.save(update_fields=["name", "updated_at"])
    if not customer.phone:
        raise OrderError(_("A phone number is needed to place an order."))
    try:
        with transaction.atomic():
            fresh = {p.pk: p for p in Product.objects.select_for_update().filter(pk__in=[p.pk for p, _q in wanted])}
            order_lines = _priced_lines(wanted, fresh)
            items_total = sum((line.line_total for line in order_lines), Decimal("0"))
            minimum = minimum_total(fulfilment)
            if items_total < minimum:
                raise OrderError(
                    _("The minimum order is %(minimum)s; this one comes to %(total)s.")
                    % {"minimum": money(minimum), "total": money(items_total)}
                )
            shipping = delivery_cost(fulfilment, items_total)
            crm_on = settings.B24_CRM_ORDERS
            # Locked with the products: a second worker waits here, then finds the order.
            existing = _made_already(conversation, confirmed_by, basket_key)
            if existing is not None:
                return existing
            order = Order.objects.create(
                number=_next_number(),
                confirmed_by=confirmed_by,
                basket_key=basket_key[:32],
                customer=customer,
                conversation=conversation,
                channel=conversation.channel,
                fulfilment=fulfilment,
                address=address.strip() if fulfilment == Order.Fulfilment.DELIVERY else "",
                desired_time=desired_time.strip()[:255],
                payment=payment,
                comment=comment.strip(),
                items_total=items_total,
                delivery_cost=shipping,
                total=items_total + shipping,
                push_state=Order.PushState.PENDING if crm_on else Order.PushState.OFF,
            )
            for line in order_lines:
                line.order = order
            OrderLine.objects.bulk_create(order_lines)
            _take_stock(order_lines)
            if crm_on:
                transaction.on_commit(lambda: enqueue_push(order))
    except IntegrityError:
        # Another worker's order for the same confirmation committed between our check and insert.
        existing = _made_already(conversation, confirmed_by, basket_key)
        if existing is None:
            raise
        return existing
    logger.info("order %s created in conversation %s (%s lines)", order.number, conversation.pk, len(order_lines))
    return order


def _take_stock(lines: list[OrderLine]) -> None:
    """What was ordered leaves the stock we know (rows locked above), so the last pack is sold once;
    the next catalog import sets the stock the store's system counts."""
    for line in lines:
        if line.product.quantity is not None:
            Product.objects.filter(pk=line.product.pk).update(quantity=F("quantity") - line.quantity)


def _made_already(conversation: Conversation, confirmed_by: Message | None, basket_key: str) -> Order | None:
    if confirmed_by is not None:
        order = Order.objects.filter(confirmed_by=confirmed_by).first()
        if order is not None:
            return order
    if basket_key:
        return Order.objects.filter(conversation=conversation, basket_key=basket_key[:32]).first()
    return None


def enqueue_push(order: Order) -> None:
    from integrations import tasks

    tasks.enqueue("orders.tasks.push_order", order.pk, task_name=f"order-push-{order.pk}-{order.push_attempts}")


def _check_details(*, fulfilment: str, payment: str, address: str) -> None:
    if fulfilment not in Order.Fulfilment.values:
        raise OrderError(_("Choose delivery or pickup."))
    if payment not in Order.Payment.values:
        raise OrderError(_("Choose how to pay: online, by card or in cash on receipt."))
    if fulfilment == Order.Fulfilment.DELIVERY and not address.strip():
        raise OrderError(_("A delivery address is needed."))


def _wanted(lines) -> list[tuple[Product, int]]:
    merged: dict[int, tuple[Product, int]] = {}
    for product, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise OrderError(_("A quantity is a whole number from 1 to %(max)s.") % {"max": MAX_QUANTITY})
        if product.pk is None:
            raise OrderError(_("A product of the order is not in the catalog."))
        seen, before = merged.get(product.pk, (product, 0))
        merged[product.pk] = (seen, before + quantity)
    if not merged:
        raise OrderError(_("The order has no products."))
    if len(merged) > MAX_LINES:
        raise OrderError(_("An order has at most %(max)s products.") % {"max": MAX_LINES})
    if any(quantity > MAX_QUANTITY for _p, quantity in merged.values()):
        raise OrderError(_("A quantity is a whole number from 1 to %(max)s.") % {"max": MAX_QUANTITY})
    return list(merged.values())


def _priced_lines(wanted, fresh: dict[int, Product]) -> list[OrderLine]:
    changes, shortages, lines = [], [], []
    for seen, quantity in wanted:
        product = fresh.get(seen.pk)
        if product is None or not product.in_stock or product.price is None:
            shortages.append(Shortage(seen.pk, seen.title, quantity, 0))
            continue
        if product.quantity is not None and product.quantity < quantity:
            shortages.append(Shortage(product.pk, product.title, quantity, product.quantity))
        if seen.price != product.price:
            changes.append(PriceChange(product.pk, product.title, seen.price, product.price))
        lines.append(
            OrderLine(
                product=product,
                title=product.title[:500],
                sku=product.sku,
                pack=product.unit,
                quantity=quantity,
                unit_price=product.price,
                line_total=(product.price * quantity).quantize(CENTS),
            )
        )
    if changes or shortages:
        raise OrderChanged(changes, shortages)
    return lines


def minimum_total(fulfilment: str) -> Decimal:
    """The least the goods of an order may come to, for delivery or for pickup."""
    if fulfilment == Order.Fulfilment.PICKUP:
        return Decimal(settings.ORDER_PICKUP_MIN_TOTAL)
    return Decimal(settings.ORDER_MIN_TOTAL)


def delivery_cost(fulfilment: str, items_total: Decimal) -> Decimal:
    if fulfilment != Order.Fulfilment.DELIVERY:
        return Decimal("0")
    free_from = settings.ORDER_FREE_DELIVERY_FROM
    if free_from > 0 and items_total >= free_from:
        return Decimal("0")
    return Decimal(settings.ORDER_DELIVERY_COST)


def _next_number() -> int:
    """The next order number: a counter row under a lock, so two orders never share one and none is skipped."""
    NumberSequence.objects.get_or_create(name=ORDER_SEQUENCE, defaults={"last_value": FIRST_NUMBER - 1})
    sequence = NumberSequence.objects.select_for_update().get(name=ORDER_SEQUENCE)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return sequence.last_value


# State and what the customer is told --------------------------------------------


def set_state(*, order: Order, state: str, actor=None) -> OrderChange | None:
    """Staff change an order's state (in admin); the customer is told that state's text. None when unchanged."""
    if state not in OrderState.values:
        raise OrderError(f"unknown order state {state!r}")
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.state == state:
            return None
        locked.state = state
        locked.save(update_fields=["state", "updated_at"])
        row = text_for_state(state)
        message = tell(locked, render(row.text, order=locked) if row else "")
        change = OrderChange.objects.create(order=locked, source=OrderChange.Source.STAFF, state=state, message=message)
    order.state = state
    logger.info("order %s set to %s by %s", order.number, state, actor or "staff")
    return change


def tell(order: Order, text: str) -> Message | None:
    """Record `text` for the order's customer in its dialog and queue it for the channel (once committed)."""
    conversation = order.conversation
    if not text or conversation is None:
        return None
    from integrations import tasks

    message = record_outgoing(conversation=conversation, text=text, author=Message.Author.BOT)
    transaction.on_commit(lambda: tasks.enqueue_delivery(message))
    return message


def text_for_stage(stage_id: str, semantic: str = "") -> OrderStageText | None:
    """The row for a Bitrix24 stage: its own, its pipeline-less part ("C1:WON" -> "WON"), or by its semantics."""
    if not stage_id:
        return None
    bare = stage_id.partition(":")[2]
    rows = {row.stage_id: row for row in OrderStageText.objects.filter(stage_id__in=[stage_id, bare or stage_id])}
    row = rows.get(stage_id) or rows.get(bare)
    if row is not None:
        return row
    # A stage staff added ("C1:UC_3F2A") that is final: won or lost, as Bitrix24 says.
    state = {"S": OrderState.WON, "F": OrderState.CANCELLED}.get(semantic)
    return text_for_state(state) if state else None


def text_for_state(state: str) -> OrderStageText | None:
    rows = OrderStageText.objects.filter(state=state)
    return rows.filter(stage_id="").first() or rows.order_by("pk").first()


def render(template: str, *, order: Order, reason: str = "") -> str:
    """The text for the customer: {number} and {reason} filled in, a line with {reason} dropped when there is none."""
    lines = []
    for line in (template or "").splitlines():
        if "{reason}" in line and not reason:
            continue
        lines.append(line.replace("{reason}", reason).replace("{number}", str(order.number)))
    return "\n".join(lines).strip()


def enqueue_deal_sync(order: Order, *, event_ts: str = "") -> None:
    """A deal event's work for the worker: read the deal, apply its stage (orders.tasks.sync_deal)."""
    from integrations import tasks

    tasks.enqueue("orders.tasks.sync_deal", order.pk, task_name=f"deal-sync-{order.pk}-{event_ts or 'now'}")
