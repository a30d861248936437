"""What a product query asks besides its words: a price limit or range, a pack size.

The bot and `GET /catalog/search` read a query the same way: "икра до 1000",
"креветки 1 кг", "от 500 до 1000 рублей".
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

from catalog.models import Product
from catalog.search import ParsedQuery, parse_query, search_products
from catalog.text import crude_stem, has_latin_letters, latin_to_cyrillic, normalize_text, words
from catalog.vocabulary import title_vocabulary

# How many candidates a constrained query looks through before price and size narrow them.
CANDIDATES = 30
# What an unconstrained query returns unless asked for more: a reply shows five,
# and analogs of an out-of-stock first hit come from these (catalog.analogs).
DEFAULT_LIMIT = 10


@dataclass(frozen=True)
class PriceLimit:
    low: Decimal | None = None
    high: Decimal | None = None

    def admits(self, price: Decimal | None) -> bool:
        if price is None:
            return False
        return (self.low is None or price >= self.low) and (self.high is None or price <= self.high)


_NUMBER = r"(\d[\d\s\u00a0]*(?:[.,]\d+)?)\s*(тыс(?:яч[аи]?)?\.?|к)?"
_CURRENCY = r"(?:\s*(?:₽|руб(?:лей|ля|ль)?\.?|р\.?))?"
_RANGE_RE = re.compile(rf"\bот\s+{_NUMBER}{_CURRENCY}\s*до\s+{_NUMBER}{_CURRENCY}", re.IGNORECASE)
_HIGH_RE = re.compile(
    rf"(?:\bдо|\bдешевле|\bне\s+дороже|\bменьше|\bмаксимум|\bв\s+пределах|\bне\s+больше)\s+{_NUMBER}{_CURRENCY}",
    re.IGNORECASE,
)
_LOW_RE = re.compile(rf"(?:\bот|\bдороже|\bбольше)\s+{_NUMBER}{_CURRENCY}", re.IGNORECASE)
# A number followed by a weight or volume unit is a pack size, not a price.
_UNIT_AHEAD = re.compile(r"^\s*(?:г|гр|грамм\w*|кг|килограмм\w*|мл|л|литр\w*|шт)\b", re.IGNORECASE)


def _amount(number: str, thousands: str | None) -> Decimal:
    value = Decimal(re.sub(r"[\s\u00a0]", "", number).replace(",", "."))
    return value * 1000 if thousands else value


def price_limit(text: str) -> tuple[PriceLimit | None, str]:
    """A price limit or range in the message, and the message without it."""
    match = _RANGE_RE.search(text)
    if match:
        low, high = _amount(match[1], match[2]), _amount(match[3], match[4])
        return PriceLimit(low=min(low, high), high=max(low, high)), _cut(text, match)
    for regex, side in ((_HIGH_RE, "high"), (_LOW_RE, "low")):
        for match in regex.finditer(text):
            if _UNIT_AHEAD.match(text[match.end() :]) or _UNIT_AHEAD.match(text[match.end(1) :]):
                continue
            amount = _amount(match[1], match[2])
            return PriceLimit(**{side: amount}), _cut(text, match)
    return None, text


_PACK_RE = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(кг|килограмм\w*|кило|г|гр|грамм\w*|мл|л|литр\w*)(?![a-zа-я])", re.IGNORECASE
)
# "полкило", "пол-кило", "пол литра": half of the unit, as the catalog writes it.
_HALF_RE = re.compile(r"\bпол[\s-]?(кило(?:грамм\w*)?|кг|литр\w*|л)(?![a-zа-я])", re.IGNORECASE)


def pack_size(text: str) -> tuple[str | None, str]:
    """A pack size ("500 г", "1 кг", "полкило") as the catalog writes it, and the message without it."""
    half = _HALF_RE.search(text)
    if half:
        size = "500 мл" if half[1].lower().startswith("л") else "500 г"
        return size, _cut(text, half)
    match = _PACK_RE.search(text)
    if not match:
        return None, text
    number = match[1].replace(",", ".")
    unit = match[2].lower()
    if unit.startswith("кило"):
        unit = "кг"
    elif unit.startswith(("гр", "грамм")):
        unit = "г"
    elif unit.startswith("литр"):
        unit = "л"
    return f"{number} {unit}", _cut(text, match)


def pack_size_variants(size: str) -> set[str]:
    """Ways a catalog may write one size: "1 кг" is also "1000 г" and "1кг"."""
    number, unit = size.split()
    variants = {size, f"{number}{unit}"}
    value = Decimal(number)
    if unit == "кг":
        grams = value * 1000
        variants |= {f"{grams.normalize():f} г", f"{grams.normalize():f}г"}
    elif unit == "г" and value >= 1000 and value % 1000 == 0:
        kilos = value / 1000
        variants |= {f"{kilos.normalize():f} кг", f"{kilos.normalize():f}кг"}
    return {normalize_text(v) for v in variants}


def _cut(text: str, match: re.Match) -> str:
    return (text[: match.start()] + " " + text[match.end() :]).strip()


def has_size(product: Product, size: str) -> bool:
    variants = pack_size_variants(size)
    haystack = normalize_text(f"{product.title} {product.unit}")
    return any(v in haystack for v in variants)


@dataclass
class Found:
    """Products for a query read with its price limit and pack size."""

    products: list[Product]
    # The words searched: the query without its price limit and pack size.
    query: str = ""
    price: PriceLimit | None = None
    size: str | None = None
    # What the words alone found (the candidates for analogs), and with the
    # pack size but before the price limit (the nearest when nothing fits the budget).
    searched: list[Product] = field(default_factory=list)
    before_price: list[Product] = field(default_factory=list)


def find_products(text: str, *, limit: int = DEFAULT_LIMIT) -> Found:
    """The query's words searched; a pack size preferred when some product has it; a price limit applied."""
    price, query = price_limit(text)
    size, query = pack_size(query)
    if not (price or size) and has_latin_letters(text):
        # "ikra gorbushi do 1000": the limit written in Latin letters too; search reads the words itself.
        cyrillic = latin_to_cyrillic(text)
        price, rest = price_limit(cyrillic)
        size, rest = pack_size(rest)
        if price or size:
            query = rest
    if not words(query) and (price or size):
        query = text
    # Read once, with the synonyms the vocabulary holds (parse_query alone reads them from the database).
    parsed = parse_query(query, title_vocabulary()) if price else None
    if parsed is not None and not parsed.groups:
        # "что есть дешевле 300 рублей?": the budget is the whole request.
        found = _in_budget(price, limit=limit)
        return Found(found, query=query, price=price, size=size, searched=found, before_price=found)
    # Price and size narrow what the words found: look through more then.
    found = searched = (
        search_products(query, limit=max(limit, CANDIDATES), enough=limit)
        if price or size
        else search_products(query, limit=limit)
    )
    if size:
        found = [p for p in found if has_size(p, size)] or found
    before_price = found
    if price:
        found = _named_in_title_first(parsed, [p for p in found if price.admits(p.price)])
    return Found(found[:limit], query=query, price=price, size=size, searched=searched, before_price=before_price)


def _in_budget(price: PriceLimit, *, limit: int) -> list[Product]:
    products = Product.objects.filter(in_stock=True, price__isnull=False)
    if price.low is not None:
        products = products.filter(price__gte=price.low)
    if price.high is not None:
        products = products.filter(price__lte=price.high)
    return list(products.prefetch_related("categories").order_by("sort_order", "id")[:limit])


def _named_in_title_first(parsed: ParsedQuery, products: list[Product]) -> list[Product]:
    """Products whose title or category names what was asked for, without those only their description mentions.

    A budget leaves few of the products the words found, and the ones that
    stay may be there for a word of their description: «Мойва с/м» «с икрой»
    for «икра до 1000». When some title names the request, those others go.
    """
    stems = {crude_stem(w) for group in parsed.groups for alternative in group for w in alternative}
    if not stems:
        return products

    def names_it(product: Product) -> bool:
        # Its category names it too: «рыба до 500» is every fish, «Мойва с/м» of «Рыба» included.
        named = " ".join([product.search_title or product.title, *(c.title for c in product.categories.all())])
        title = f" {normalize_text(named)}"
        return any(f" {stem}" in title for stem in stems)

    named = [p for p in products if names_it(p)]
    return named or products
