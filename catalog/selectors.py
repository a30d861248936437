"""Reads of the catalog other than search."""

from django.db.models import Count, Max, Q

from catalog.models import Category, FAQEntry, Product


def catalog_stats() -> dict:
    totals = Product.objects.aggregate(
        products=Count("id"),
        in_stock=Count("id", filter=Q(in_stock=True)),
    )
    sources = {
        row["source"]: {"products": row["products"], "last_import": row["last_import"]}
        for row in Product.objects.values("source")
        .annotate(products=Count("id"), last_import=Max("last_seen_at"))
        .order_by("source")
    }
    return {
        "products": totals["products"],
        "in_stock": totals["in_stock"],
        "out_of_stock": totals["products"] - totals["in_stock"],
        "categories": Category.objects.count(),
        "faq": FAQEntry.objects.filter(is_active=True).count(),
        "sources": sources,
    }


def catalog_is_empty() -> bool:
    return not Product.objects.exists()
