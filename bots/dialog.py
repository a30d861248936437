"""What the dialog is about: the products the bot last showed and the query behind them.

Kept on the conversation (Conversation.dialog_context), written with each bot
reply in the same transaction, so that the next message can refer to it:
«а подешевле?», «второй вариант», «а в наличии?» (bots.followups answers
those without an LLM; the LLM's prompt names the products by id). It lapses
with the conversation's context: older than HISTORY_TTL_S, from before
context_started_at (a new session) or before a hand-off.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils import timezone

from catalog.models import Product
from catalog.presentation import money
from catalog.query import PriceLimit
from conversations.models import Conversation, Message

Kind = Message.ReplyKind


@dataclass
class DialogContext:
    # The products of the last numbered list, in its order: «второй» is shown[1].
    shown: list[int] = field(default_factory=list)
    # The one product the customer is talking about (picked from the list, or
    # asked for by name and out of stock); None: the list as a whole.
    focus: int | None = None
    # The product words searched, without the price and pack size.
    query: str = ""
    price_low: Decimal | None = None
    price_high: Decimal | None = None
    size: str | None = None
    # Clarifying replies in a row: the next one is not the same question again.
    clarified: int = 0
    at: datetime | None = None

    @property
    def price(self) -> PriceLimit | None:
        if self.price_low is None and self.price_high is None:
            return None
        return PriceLimit(low=self.price_low, high=self.price_high)

    @property
    def has_products(self) -> bool:
        return bool(self.shown or self.focus)

    def as_json(self) -> dict:
        data = {
            "shown": self.shown,
            "focus": self.focus,
            "query": self.query,
            "price_low": _text(self.price_low),
            "price_high": _text(self.price_high),
            "size": self.size,
            "clarified": self.clarified,
            "at": (self.at or timezone.now()).isoformat(),
        }
        return {k: v for k, v in data.items() if v not in (None, "", [], 0)}

    @classmethod
    def from_json(cls, data) -> "DialogContext | None":
        if not isinstance(data, dict) or not data.get("at"):
            return None
        try:
            return cls(
                shown=[int(i) for i in data.get("shown") or []],
                focus=int(data["focus"]) if data.get("focus") else None,
                query=str(data.get("query") or ""),
                price_low=_decimal(data.get("price_low")),
                price_high=_decimal(data.get("price_high")),
                size=data.get("size") or None,
                clarified=int(data.get("clarified") or 0),
                at=datetime.fromisoformat(data["at"]),
            )
        except (TypeError, ValueError):
            return None  # written by another version: a dialog without context is the safe reading


def shown(products: list[Product], *, query: str = "", price: PriceLimit | None = None, size=None, focus=None) -> dict:
    """The context after a reply that showed these products (numbered, in this order)."""
    return DialogContext(
        shown=[p.pk for p in products],
        focus=focus.pk if isinstance(focus, Product) else focus,
        query=query,
        price_low=price.low if price else None,
        price_high=price.high if price else None,
        size=size,
    ).as_json()


def load(conversation: Conversation) -> DialogContext | None:
    """The conversation's context, or None when there is none or it has lapsed."""
    context = DialogContext.from_json(conversation.dialog_context)
    if context is None or context.at is None:
        return None
    since = timezone.now() - timedelta(seconds=settings.HISTORY_TTL_S)
    for start in (conversation.context_started_at, conversation.handed_off_at):
        if start and start > since:
            since = start
    return context if context.at >= since else None


def after(previous: DialogContext | None, answer) -> dict | None:
    """The context to store with this reply; None leaves the stored one as it is.

    A reply that showed products brings its own; a hand-off ends the context;
    a clarifying question counts itself; anything else (a FAQ answer, thanks)
    keeps what was shown, so «а второй?» after «сколько доставка?» still works.
    """
    if answer.handoff:
        return {}
    if answer.context is not None:
        return answer.context
    if answer.kind == Kind.CLARIFY:
        base = replace(previous, at=previous.at) if previous else DialogContext()
        base.clarified += 1
        return base.as_json()
    if previous and previous.clarified:
        return replace(previous, clarified=0).as_json()
    return None


def products_of(context: DialogContext | None) -> tuple[list[Product], Product | None]:
    """(the products of the last list in its order, the product in focus), as they are now in the catalog."""
    if context is None or not context.has_products:
        return [], None
    ids = [*context.shown, *([context.focus] if context.focus else [])]
    by_id = Product.objects.prefetch_related("categories").in_bulk(ids)
    return [by_id[i] for i in context.shown if i in by_id], by_id.get(context.focus)


# In the prompt the products are named, not described: the model cites them by
# marker and the reply renders them from the database.
PROMPT_PRODUCTS = 5
PROMPT_TITLE_CHARS = 60


def prompt_lines(context: DialogContext | None, products: list[Product], focus: Product | None) -> str:
    """The context for the LLM's system prompt, in a few short lines; "" without one."""
    if context is None or not (products or focus):
        return ""

    def brief(product: Product) -> str:
        title = product.title if len(product.title) <= PROMPT_TITLE_CHARS else product.title[:PROMPT_TITLE_CHARS] + "…"
        stock = "" if product.in_stock else " (нет в наличии)"
        return f"[[product:{product.pk}]] {title} — {money(product.price, product.currency)}{stock}"

    lines = []
    if products:
        listed = "; ".join(f"{n}. {brief(p)}" for n, p in enumerate(products[:PROMPT_PRODUCTS], 1))
        lines.append(f"Последние показанные товары: {listed}.")
    if focus is not None:
        lines.append(f"Покупатель выбрал: {brief(focus)}.")
    wanted = [f"«{context.query}»"] if context.query else []
    if context.price_low is not None:
        wanted.append(f"от {money(context.price_low)}")
    if context.price_high is not None:
        wanted.append(f"до {money(context.price_high)}")
    if context.size:
        wanted.append(f"фасовка {context.size}")
    if wanted:
        lines.append("Запрос: " + ", ".join(wanted) + ".")
    lines.append("«Второй», «подешевле», «а в наличии?» — о них: ссылайся меткой без нового поиска.")
    return "\n".join(lines)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
