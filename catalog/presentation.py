"""How products read in a chat reply: name, price, stock, link. Plain text;
a channel adds its own markup (Bitrix24 BB-code, Telegram HTML) when it sends."""

from decimal import Decimal

from catalog.models import Product


def money(amount: Decimal | None, currency: str = "RUB") -> str:
    if amount is None:
        return "цена по запросу"
    whole = amount == amount.to_integral_value()
    text = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    text = text.replace(",", "\u00a0").replace(".", ",")
    return f"{text}\u00a0₽" if currency == "RUB" else f"{text}\u00a0{currency}"


def stock(product: Product) -> str:
    if not product.in_stock:
        return "нет в наличии"
    if product.quantity is None:
        return "в наличии"
    return f"в наличии: {product.quantity} шт."


def product_line(product: Product) -> str:
    """One product as a line of a reply: «Икра кеты, 100 г — 1 690 ₽ (было 1 990 ₽), в наличии: 5 шт.»"""
    price = money(product.price, product.currency)
    if product.old_price and product.price is not None and product.old_price > product.price:
        price += f" (было {money(product.old_price, product.currency)})"
    return f"{product.title} — {price}, {stock(product)}"


def product_block(products: list[Product], *, numbered: bool = True) -> str:
    lines = []
    for n, product in enumerate(products, 1):
        prefix = f"{n}. " if numbered else "• "
        lines.append(prefix + product_line(product))
        if product.url:
            lines.append(f"   {product.url}")
    return "\n".join(lines)
