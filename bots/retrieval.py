"""Answers built from the catalog and the FAQ alone: the mode without an LLM,
and the fallback when the LLM fails."""

from bots import intents
from bots.replies import Kind, Reply
from catalog.analogs import analogs_for
from catalog.models import Product
from catalog.presentation import product_block
from catalog.query import find_products
from catalog.selectors import categories_in_stock, match_faq

MAX_PRODUCTS = 5
OPERATOR_HINT = "Если удобнее, напишите «оператор» — подключу человека."
SUGGESTIONS = ["Доставка", "Оплата", "Позвать оператора"]


def retrieval_reply(text: str, *, store_name: str = "") -> Reply:
    if intents.is_thanks(text):
        return Reply("Пожалуйста! Если появятся вопросы — пишите, я на связи.", Kind.GREETING)
    if intents.is_greeting(text):
        hello = f"Здравствуйте! Это {store_name}." if store_name else "Здравствуйте!"
        return Reply(
            f"{hello} Подскажу по ассортименту, ценам, наличию, доставке и оплате. Что вы ищете?",
            Kind.GREETING,
            suggestions=SUGGESTIONS,
        )
    text = intents.strip_greeting(text)
    faq = match_faq(text)
    if faq:
        return Reply(faq[0].answer, Kind.FAQ, suggestions=SUGGESTIONS)
    if intents.is_vague(text):
        return clarifying_question()
    return catalog_reply(text)


def catalog_reply(text: str) -> Reply:
    result = find_products(text)
    found, searched = result.products, result.searched
    if result.price and not found and result.before_price:
        nearest = _in_stock_first(result.before_price)
        return Reply(
            f"В этом бюджете ничего не нашёл. Ближайшее по запросу:\n{product_block(nearest)}",
            Kind.CATALOG,
            products=nearest,
        )
    if not found:
        return clarifying_question(nothing_found=True)

    top = found[0]
    if not top.in_stock:
        return out_of_stock_reply(top, result.query, candidates=searched)
    products = [p for p in found if p.in_stock][:MAX_PRODUCTS]
    return Reply(
        "Вот что есть в наличии:\n" + product_block(products) + "\n\nПодсказать что-то ещё?",
        Kind.CATALOG,
        products=products,
        suggestions=["Доставка", "Позвать оператора"],
    )


def out_of_stock_reply(product: Product, query: str, candidates: list[Product] | None = None) -> Reply:
    analogs = analogs_for(product, query, candidates=candidates)
    text = f"К сожалению, {product.title} сейчас нет в наличии."
    if analogs:
        text += "\nМогу предложить похожее из той же категории:\n" + product_block(analogs)
    else:
        text += " " + OPERATOR_HINT
    return Reply(text, Kind.CATALOG, products=[product, *analogs], suggestions=["Позвать оператора"])


def clarifying_question(*, nothing_found: bool = False) -> Reply:
    categories = categories_in_stock(limit=10)
    opening = "Не нашёл такого в каталоге." if nothing_found else "С удовольствием помогу с выбором!"
    text = opening + " Уточните, пожалуйста, что вы ищете"
    text += ": " + ", ".join(categories) + "?" if categories else "?"
    text += " Можно указать бюджет или фасовку, например «икра до 2000 рублей» или «креветки 1 кг». " + OPERATOR_HINT
    return Reply(text, Kind.CLARIFY, suggestions=[*categories[:3], "Позвать оператора"])


def _in_stock_first(products: list[Product]) -> list[Product]:
    return sorted(products, key=lambda p: not p.in_stock)[:MAX_PRODUCTS]
