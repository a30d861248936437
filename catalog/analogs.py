"""What to offer instead of a product that is out of stock."""

from catalog.models import Product
from catalog.search import search_products


def analogs_for(
    product: Product, query: str, limit: int = 3, *, candidates: list[Product] | None = None
) -> list[Product]:
    """In-stock products of the same category, the ones closest to the request first.

    `candidates`, the search results the product came from, saves searching again.
    """
    category_ids = {c.id for c in product.categories.all()}  # prefetched by search_products
    if not category_ids:
        return []
    if candidates is None:
        candidates = search_products(query, limit=20, in_stock_only=True)
    close = [
        p for p in candidates if p.in_stock and p.id != product.id and category_ids & {c.id for c in p.categories.all()}
    ]
    if len(close) < limit:
        more = (
            Product.objects.filter(categories__in=category_ids, in_stock=True)
            .exclude(id__in=[product.id, *(p.id for p in close)])
            .distinct()
            .order_by("sort_order", "id")[: limit - len(close)]
        )
        close += list(more)
    return close[:limit]
