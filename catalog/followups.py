"""Catalog reads behind a customer's follow-up questions: the same product in
another pack, cheaper or dearer products of the same group, what to offer
when the bot did not understand."""

from decimal import Decimal

from django.db.models import OuterRef, Q, Subquery

from catalog.models import Category, Product
from catalog.query import pack_size
from catalog.search import search_products
from catalog.text import crude_stem, normalize_text, words

_GRAMS_PER_UNIT = {"г": 1, "мл": 1, "кг": 1000, "л": 1000}
# Enough search hits to find a product's group in; a follow-up looks through them, not the catalog.
GROUP_CANDIDATES = 30


def pack_grams(product: Product) -> Decimal | None:
    """The pack's weight (or volume) in grams, from the title or else the unit: «…, 500 г», «1 шт 450 г»."""
    for text in (product.title, product.unit):
        size, _rest = pack_size(text or "")
        if size:
            number, unit = size.split()
            return Decimal(number) * _GRAMS_PER_UNIT[unit]
    return None


def _title_without_size(product: Product) -> str:
    size, rest = pack_size(product.title)
    return rest if size else product.title


def base_words(product: Product) -> tuple[str, ...]:
    """The title's words without its pack size: what the packs of one product share."""
    return tuple(words(_title_without_size(product)))


def pack_siblings(product: Product, *, limit: int = 40) -> list[Product]:
    """The same product in other packs (its variants, or a title that differs only in the size), lightest first."""
    base = base_words(product)
    prefix = normalize_text(_title_without_size(product)).rstrip(" ,.;:-–—(")
    same = Q(search_title__startswith=prefix) if prefix else Q(pk__in=[])
    if product.parent_id:
        same |= Q(parent_id=product.parent_id) | Q(pk=product.parent_id)
    same |= Q(parent_id=product.pk)
    rows = Product.objects.filter(same).exclude(pk=product.pk).prefetch_related("categories")[:limit]
    siblings = [
        p
        for p in rows
        if (base_words(p) == base or p.parent_id in (product.pk, product.parent_id) or p.pk == product.parent_id)
        and pack_grams(p) is not None
    ]
    return sorted(siblings, key=lambda p: (pack_grams(p), not p.in_stock, p.pk))


def matches_all(product: Product, query_words) -> bool:
    """Every word, by its stem, in the product's title, pack or characteristics (not its description)."""
    haystack = normalize_text(
        " ".join([product.title, product.unit, *(str(v) for v in (product.characteristics or {}).values())])
    )
    return all(crude_stem(w) in haystack for w in query_words)


def priced_alternatives(
    product: Product,
    query: str,
    *,
    below: Decimal | None = None,
    above: Decimal | None = None,
    exclude=(),
    limit: int = 5,
) -> list[Product]:
    """In-stock products of the product's group priced below (or above) a bound, the closest price first.

    The group is what the query's words find within the product's categories:
    those sharing a word with the query when there are any, the ones sharing
    most (the same product: other makers, other packs) first.
    """
    if below is None and above is None:
        return []
    categories = {c.id for c in product.categories.all()}
    query_words = [w for w in words(query) if len(w) > 1]
    skip = {product.pk, *exclude}
    found = [
        p
        for p in search_products(query, limit=GROUP_CANDIDATES, in_stock_only=True)
        if p.pk not in skip
        and p.price is not None
        and (below is None or p.price < below)
        and (above is None or p.price > above)
        and (not categories or categories & {c.id for c in p.categories.all()})
    ]
    shared = {p.pk: sum(matches_all(p, [w]) for w in query_words) for p in found}
    if any(shared.values()):
        # Crab for «краб камчатский», not the lobster of the same category.
        found = [p for p in found if shared[p.pk]]
    closeness = (lambda p: -p.price) if below is not None else (lambda p: p.price)
    found.sort(key=lambda p: (-shared[p.pk], closeness(p), p.pk))
    return found[:limit]


def group_by_pack(product: Product, query: str, *, smaller: bool, exclude=(), limit: int = 3) -> list[Product]:
    """In-stock products of the product's group in a smaller (or larger) pack than its own, the nearest first."""
    grams = pack_grams(product)
    if grams is None:
        return []
    categories = {c.id for c in product.categories.all()}
    skip = {product.pk, *exclude}
    found = []
    for p in search_products(query, limit=GROUP_CANDIDATES, in_stock_only=True):
        weight = pack_grams(p)
        if p.pk in skip or weight is None or (weight >= grams if smaller else weight <= grams):
            continue
        if categories and not categories & {c.id for c in p.categories.all()}:
            continue
        found.append((abs(weight - grams), p.pk, p))
    return [p for *_, p in sorted(found)[:limit]]


def featured_in_stock(*, limit: int = 4) -> list[Product]:
    """One in-stock product from each of the first top-level categories, in the store's order.

    What to offer when nothing the customer wrote was understood: no sales
    figures are kept, so the store's own order stands for popularity.
    """
    # As in catalog.selectors.categories_in_stock: a scalar sub-select with
    # LIMIT 1 stops at a category's first in-stock link.
    first_in_stock = (
        Product.categories.through.objects.filter(category=OuterRef("pk"), product__in_stock=True)
        .order_by("pk")
        .values("product_id")[:1]
    )
    ids = list(
        Category.objects.filter(parent__isnull=True)
        .annotate(first_product=Subquery(first_in_stock))
        .filter(first_product__isnull=False)
        .order_by("sort_order", "title")
        .values_list("first_product", flat=True)[:limit]
    )
    by_id = Product.objects.prefetch_related("categories").in_bulk(ids)
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]
