"""Tools the model may call, and what running them returns.

Results carry product ids; the model cites products by id and the reply
renders their names, prices, stock and links from the database.
"""

from decimal import Decimal, InvalidOperation

from catalog.models import Product
from catalog.search import search_products
from catalog.selectors import match_faq

HANDOFF_TOOL = "handoff_to_operator"
SEARCH_TOOL = "search_catalog"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": SEARCH_TOOL,
            "description": "Найти товары магазина по словам покупателя. Возвращает id, название, цену, наличие.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Что ищет покупатель, например «икра кеты»."},
                    "in_stock_only": {"type": "boolean", "description": "Только товары в наличии."},
                    "max_price": {"type": "number", "description": "Наибольшая цена в рублях."},
                },
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_product",
            "description": "Подробности о товаре по id: описание, характеристики, варианты фасовки.",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "integer", "description": "id товара из search_catalog."}},
                "required": ["id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "lookup_faq",
            "description": "Ответ магазина на вопрос о доставке, оплате, хранении, возврате, часах работы.",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": HANDOFF_TOOL,
            "description": "Передать диалог живому оператору магазина.",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Почему нужен человек."}},
                "required": ["reason"],
            },
        },
    },
]


def _summary(product: Product) -> dict:
    return {
        "id": product.id,
        "title": product.title,
        "price": str(product.price) if product.price is not None else None,
        "old_price": str(product.old_price) if product.old_price is not None else None,
        "in_stock": product.in_stock,
        "quantity": product.quantity,
        "categories": [c.title for c in product.categories.all()],
    }


def _brief(product: Product) -> dict:
    """A search result: enough to choose and cite; get_product gives the rest."""
    brief = {"id": product.id, "title": product.title, "price": _number(product.price), "in_stock": product.in_stock}
    if product.old_price is not None:
        brief["old_price"] = _number(product.old_price)
    return brief


def _number(value: Decimal | None) -> str | None:
    """ "2039" rather than "2039.00"."""
    return None if value is None else f"{value.normalize():f}"


def run_tool(name: str, arguments: dict) -> tuple[dict, list[Product]]:
    """(result for the model, products it returned). Bad arguments give an error result, not an exception."""
    if name == SEARCH_TOOL:
        query = str(arguments.get("query") or "").strip()
        max_price = None
        if arguments.get("max_price") not in (None, ""):
            try:
                max_price = Decimal(str(arguments["max_price"]))
            except InvalidOperation:
                return {"error": "max_price must be a number"}, []
        products = search_products(
            query, limit=8, in_stock_only=bool(arguments.get("in_stock_only")), max_price=max_price
        )
        return {"products": [_brief(p) for p in products]}, products
    if name == "get_product":
        try:
            product = Product.objects.prefetch_related("categories", "variants").get(pk=int(arguments.get("id")))
        except (TypeError, ValueError, Product.DoesNotExist):
            return {"error": "no product with that id"}, []
        details = {
            **_summary(product),
            "description": (product.short_description or product.description)[:600],
            "characteristics": product.characteristics,
            "unit": product.unit,
            "variants": [_summary(v) for v in product.variants.all()],
        }
        return details, [product, *product.variants.all()]
    if name == "lookup_faq":
        entries = match_faq(str(arguments.get("question") or ""), limit=2)
        return {"answers": [{"question": e.question, "answer": e.answer} for e in entries]}, []
    return {"error": f"unknown tool {name}"}, []
