"""What the assistant would say, and the catalog replies both first questions
(bots.retrieval) and follow-ups (bots.followups) are made of."""

from dataclasses import dataclass, field

from bots import dialog
from catalog.analogs import analogs_for
from catalog.models import Product
from catalog.presentation import product_block
from catalog.query import Found
from conversations.models import Message

Kind = Message.ReplyKind

MAX_PRODUCTS = 5
OPERATOR_HINT = "Если удобнее, напишите «оператор» — подключу человека."
MORE = "Подсказать что-то ещё?"


@dataclass
class Reply:
    """What the assistant would say; the caller records and sends it."""

    text: str
    kind: str
    products: list[Product] = field(default_factory=list)
    handoff: bool = False
    handoff_reason: str = ""
    # Follow-up suggestions a channel may show as buttons.
    suggestions: list[str] = field(default_factory=list)
    llm_model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    llm_error: str = ""
    # The dialog context to store with the reply (bots.dialog, as JSON); None keeps the stored one.
    context: dict | None = None
    # The basket the reply leaves (orders.basket, as JSON); None keeps the stored one.
    basket: dict | None = None


def list_reply(heading: str, products: list[Product], *, context: dict, ending: str = MORE) -> Reply:
    """A numbered list of products under a heading; `context` says what the list was for."""
    return Reply(
        f"{heading}\n{product_block(products)}" + (f"\n\n{ending}" if ending else ""),
        Kind.CATALOG,
        products=products,
        suggestions=["Доставка", "Позвать оператора"],
        context=context,
    )


def found_reply(result: Found, *, note: str = "") -> Reply | None:
    """The reply to what a query found: the products in stock, the nearest over
    the budget, or analogs of the one asked for; None when nothing was found."""
    found = result.products
    limits = {"query": result.query, "price": result.price, "size": result.size}
    if result.price and not found and result.before_price:
        nearest = sorted(result.before_price, key=lambda p: not p.in_stock)[:MAX_PRODUCTS]
        return Reply(
            f"В этом бюджете ничего не нашёл. Ближайшее по запросу:\n{product_block(nearest)}",
            Kind.CATALOG,
            products=nearest,
            context=dialog.shown(nearest, **limits),
        )
    if not found:
        return None
    top = found[0]
    if not top.in_stock:
        return out_of_stock_reply(top, result.query, candidates=result.searched, limits=limits)
    products = [p for p in found if p.in_stock][:MAX_PRODUCTS]
    return list_reply(f"Вот что есть в наличии{note}:", products, context=dialog.shown(products, **limits))


def out_of_stock_reply(
    product: Product, query: str, candidates: list[Product] | None = None, *, limits: dict | None = None
) -> Reply:
    analogs = analogs_for(product, query, candidates=candidates)
    text = f"К сожалению, {product.title} сейчас нет в наличии."
    if analogs:
        text += "\nМогу предложить похожее:\n" + product_block(analogs)
    else:
        text += " " + OPERATOR_HINT
    return Reply(
        text,
        Kind.CATALOG,
        products=[product, *analogs],
        suggestions=["Позвать оператора"],
        # The numbers in the text are the analogs'; the customer still talks about the product.
        context=dialog.shown(analogs, focus=product, **(limits or {"query": query})),
    )
