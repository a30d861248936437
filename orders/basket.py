"""The order a customer is putting together in a dialog: a basket and the
details asked for it, and the checkout's steps.

The basket is kept in the conversation's dialog context under "basket"
(bots.ordering reads and writes it), saved in the same transaction as the bot
reply that changed it: a message answered twice (a retried task, a second
worker) changes it once, since only the recorded reply's basket is kept.

The steps are this module's, not a prompt's: what is missing decides what
is asked next (`next_step`), whatever the customer said in between. Prices
are those last told to the customer (`Line.price`); `refresh` reads the
catalog again before the summary and before the order is made, so a price
that changed or stock that ran out is said and confirmed again.
"""

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from catalog.models import Product
from orders.models import Customer, Order
from orders.services import CENTS, MAX_LINES, MAX_QUANTITY, PriceChange, Shortage, delivery_cost

CONTEXT_KEY = "basket"


class Step(StrEnum):
    ITEMS = ""  # putting the basket together
    PHONE = "phone"
    FULFILMENT = "fulfilment"
    ADDRESS = "address"
    TIME = "time"
    PAYMENT = "payment"
    COMMENT = "comment"
    CONFIRM = "confirm"


@dataclass
class Line:
    product: int
    quantity: int
    # The price the customer was last told; None: not told yet.
    price: Decimal | None = None


@dataclass
class Basket:
    lines: list[Line] = field(default_factory=list)
    step: Step = Step.ITEMS
    fulfilment: str = ""
    address: str = ""
    desired_time: str = ""
    payment: str = ""
    comment: str = ""
    comment_asked: bool = False
    # Products offered to choose from for an ambiguous item, and how many were asked for.
    choice: list[int] = field(default_factory=list)
    choice_quantity: int = 1
    # Given with the first product: the order made from this basket is the one
    # order of it (orders.Order.basket_key), however often it is confirmed.
    key: str = ""
    at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def in_checkout(self) -> bool:
        return self.step != Step.ITEMS

    def line_for(self, product_id: int) -> Line | None:
        return next((line for line in self.lines if line.product == product_id), None)

    def add(self, product: Product, quantity: int, *, more: bool = True) -> Line:
        """Put `quantity` of the product in (on top of what is there, or instead of it when not `more`)."""
        line = self.line_for(product.pk)
        if line is None:
            if len(self.lines) >= MAX_LINES:
                raise ValueError("the basket is full")
            line = Line(product.pk, 0)
            self.lines.append(line)
            self.key = self.key or uuid.uuid4().hex
        line.quantity = max(1, min(MAX_QUANTITY, (line.quantity if more else 0) + quantity))
        line.price = product.price
        self.choice = []
        return line

    def remove(self, product_ids) -> None:
        ids = set(product_ids)
        self.lines = [line for line in self.lines if line.product not in ids]
        if not self.lines:
            self.step = Step.ITEMS

    def as_json(self) -> dict:
        return {
            "lines": [
                {"product": line.product, "quantity": line.quantity, "price": _text(line.price)} for line in self.lines
            ],
            "step": str(self.step),
            "fulfilment": self.fulfilment,
            "address": self.address,
            "desired_time": self.desired_time,
            "payment": self.payment,
            "comment": self.comment,
            "comment_asked": self.comment_asked,
            "choice": self.choice,
            "choice_quantity": self.choice_quantity,
            "key": self.key,
            "at": (self.at or timezone.now()).isoformat(),
        }

    @classmethod
    def from_json(cls, data) -> "Basket":
        """The stored basket; an empty one for nothing, a basket of another version or one that lapsed."""
        if not isinstance(data, dict):
            return cls()
        try:
            at = datetime.fromisoformat(data["at"])
            if at < timezone.now() - timedelta(seconds=settings.ORDER_BASKET_TTL_S):
                return cls()
            return cls(
                lines=[
                    Line(int(item["product"]), int(item["quantity"]), _decimal(item.get("price")))
                    for item in data.get("lines") or []
                ],
                step=Step(data.get("step") or ""),
                fulfilment=str(data.get("fulfilment") or ""),
                address=str(data.get("address") or ""),
                desired_time=str(data.get("desired_time") or ""),
                payment=str(data.get("payment") or ""),
                comment=str(data.get("comment") or ""),
                comment_asked=bool(data.get("comment_asked")),
                choice=[int(i) for i in data.get("choice") or []],
                choice_quantity=int(data.get("choice_quantity") or 1),
                key=str(data.get("key") or "")[:32],
                at=at,
            )
        except (KeyError, TypeError, ValueError):
            return cls()

    def copy(self) -> "Basket":
        return replace(self, lines=[replace(line) for line in self.lines], choice=list(self.choice))


def load(dialog_context) -> Basket:
    return Basket.from_json((dialog_context or {}).get(CONTEXT_KEY))


def next_step(basket: Basket, customer: Customer) -> Step:
    """What to ask for next: the first detail the order still lacks, else the confirmation."""
    if not customer.phone:
        return Step.PHONE
    if basket.fulfilment not in Order.Fulfilment.values:
        return Step.FULFILMENT
    if basket.fulfilment == Order.Fulfilment.DELIVERY and not basket.address.strip():
        return Step.ADDRESS
    if not basket.desired_time.strip():
        return Step.TIME
    if basket.payment not in Order.Payment.values:
        return Step.PAYMENT
    if not basket.comment_asked:
        return Step.COMMENT
    return Step.CONFIRM


@dataclass
class PricedLine:
    line: Line
    product: Product

    @property
    def total(self) -> Decimal:
        return (self.line.price * self.line.quantity).quantize(CENTS)


@dataclass
class Priced:
    lines: list[PricedLine]
    items_total: Decimal
    delivery_cost: Decimal

    @property
    def total(self) -> Decimal:
        return self.items_total + self.delivery_cost


def priced(basket: Basket, products: dict[int, Product] | None = None) -> Priced:
    """The basket at the prices the customer was told, with delivery as the store's settings say."""
    products = products if products is not None else products_of(basket)
    lines = [
        PricedLine(line, products[line.product])
        for line in basket.lines
        if line.product in products and line.price is not None
    ]
    items_total = sum((p.total for p in lines), Decimal("0"))
    fulfilment = basket.fulfilment or Order.Fulfilment.DELIVERY
    return Priced(lines, items_total, delivery_cost(fulfilment, items_total) if lines else Decimal("0"))


@dataclass
class Refreshed:
    price_changes: list[PriceChange]
    shortages: list[Shortage]

    @property
    def changed(self) -> bool:
        return bool(self.price_changes or self.shortages)


def refresh(basket: Basket) -> Refreshed:
    """Prices and stock read from the catalog now: the basket takes them, and what changed is returned.

    A product gone or out of stock leaves the basket; a quantity above the
    stock is cut to it.
    """
    products = products_of(basket)
    changes, shortages, kept = [], [], []
    for line in basket.lines:
        product = products.get(line.product)
        if product is None or not product.in_stock or product.price is None:
            shortages.append(Shortage(line.product, product.title if product else "", line.quantity, 0))
            continue
        if product.quantity is not None and product.quantity < line.quantity:
            shortages.append(Shortage(product.pk, product.title, line.quantity, product.quantity))
            line.quantity = product.quantity
        if line.price is not None and line.price != product.price:
            changes.append(PriceChange(product.pk, product.title, line.price, product.price))
        line.price = product.price
        kept.append(line)
    basket.lines = kept
    if not kept:
        basket.step = Step.ITEMS
    return Refreshed(changes, shortages)


def products_of(basket: Basket) -> dict[int, Product]:
    ids = [line.product for line in basket.lines]
    return Product.objects.in_bulk(ids) if ids else {}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
