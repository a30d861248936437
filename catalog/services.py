"""Writes to the catalog. Importers parse; these functions store."""

from collections.abc import Iterable, Sequence
from itertools import islice

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.importers.records import CategoryRecord, ImportReport, ProductRecord
from catalog.models import Category, FAQEntry, Product
from catalog.text import normalize_text

BATCH_SIZE = 500

# Fields an import may change; compared to decide "updated" vs "unchanged".
_IMPORTED_FIELDS = (
    "title",
    "sku",
    "short_description",
    "description",
    "price",
    "old_price",
    "currency",
    "quantity",
    "is_available",
    "unit",
    "url",
    "image_url",
    "characteristics",
    "brand",
    "sort_order",
)


def search_fields(
    *,
    title: str,
    sku: str = "",
    brand: str = "",
    unit: str = "",
    short_description: str = "",
    description: str = "",
    characteristics: dict | None = None,
    category_titles: Iterable[str] = (),
) -> tuple[str, str]:
    """The normalised title and body that search indexes for a product."""
    body = [
        sku,
        brand,
        unit,
        " ".join(category_titles),
        " ".join(str(v) for v in (characteristics or {}).values()),
        short_description,
        description,
    ]
    return normalize_text(title), normalize_text(" ".join(part for part in body if part))


def refresh_search_fields(product: Product) -> None:
    """Recompute a product's search text after an edit (admin, API)."""
    product.search_title, product.search_text = search_fields(
        title=product.title,
        sku=product.sku,
        brand=product.brand,
        unit=product.unit,
        short_description=product.short_description,
        description=product.description,
        characteristics=product.characteristics,
        category_titles=product.categories.values_list("title", flat=True),
    )
    Product.objects.filter(pk=product.pk).update(search_title=product.search_title, search_text=product.search_text)


def _chunks(items: Sequence, size: int):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def upsert_categories(source: str, records: Iterable[CategoryRecord]) -> dict[str, Category]:
    """Categories by external id, created or renamed as the source says."""
    records = {r.external_id: r for r in records}
    existing = {c.external_id: c for c in Category.objects.filter(source=source, external_id__in=records)}
    to_create, to_update = [], []
    for external_id, record in records.items():
        category = existing.get(external_id)
        if category is None:
            to_create.append(
                Category(source=source, external_id=external_id, title=record.title, sort_order=record.sort_order)
            )
        elif (category.title, category.sort_order) != (record.title, record.sort_order):
            category.title, category.sort_order = record.title, record.sort_order
            to_update.append(category)
    Category.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    Category.objects.bulk_update(to_update, ["title", "sort_order"], batch_size=BATCH_SIZE)
    by_id = {c.external_id: c for c in Category.objects.filter(source=source, external_id__in=records)}
    for record in records.values():
        if record.parent_external_id and record.parent_external_id in by_id:
            category = by_id[record.external_id]
            parent = by_id[record.parent_external_id]
            if category.parent_id != parent.id:
                category.parent = parent
                category.save(update_fields=["parent"])
    return by_id


def _categories_by_title(titles: Iterable[str], source: str) -> dict[str, Category]:
    """Categories named by title only (CSV): an existing one of that name, else a new one."""
    wanted = {t.strip() for t in titles if t and t.strip()}
    found: dict[str, Category] = {}
    for category in Category.objects.filter(title__in=wanted).order_by("id"):
        found.setdefault(category.title, category)
    missing = [Category(title=t, source=source) for t in sorted(wanted - found.keys())]
    for category in Category.objects.bulk_create(missing):
        found[category.title] = category
    return found


@transaction.atomic
def import_products(
    *,
    source: str,
    products: Sequence[ProductRecord],
    categories: Sequence[CategoryRecord] = (),
    mark_missing_unavailable: bool = False,
    report: ImportReport | None = None,
) -> ImportReport:
    """Upsert products of one source by external id, in one transaction.

    Queries grow with the number of batches, not of products. With
    `mark_missing_unavailable`, products of the source that the import did
    not include are switched off (never deleted: chats link to them).
    """
    now = timezone.now()
    report = report or ImportReport(source=source)
    report.started_at = report.started_at or now
    category_map = upsert_categories(source, categories)
    titled = _categories_by_title((t for p in products for t in p.category_titles), source)

    # Parents in batches of their own first, so a variant's parent is stored
    # (and has an id) before the variant's batch runs.
    parents = [p for p in products if not p.parent_external_id]
    variants = [p for p in products if p.parent_external_id]
    seen_ids: list[int] = []
    for group in (parents, variants):
        for batch in _chunks(group, BATCH_SIZE):
            seen_ids += _import_batch(source, batch, category_map, titled, now, report)

    if mark_missing_unavailable:
        report.marked_unavailable = (
            Product.objects.filter(source=source, is_available=True)
            .exclude(id__in=seen_ids)
            .update(is_available=False, updated_at=now)
        )
    report.finished_at = timezone.now()
    return report


def _import_batch(source, batch, category_map, titled, now, report) -> list[int]:
    external_ids = [r.external_id for r in batch]
    parent_ids = {r.parent_external_id for r in batch if r.parent_external_id}
    existing = {
        p.external_id: p for p in Product.objects.filter(source=source, external_id__in=external_ids + list(parent_ids))
    }
    to_create: list[Product] = []
    to_update: list[Product] = []
    unchanged: list[int] = []
    wanted_categories: dict[str, set[int]] = {}
    for record in batch:
        report.seen += 1
        category_ids = {category_map[c].id for c in record.category_external_ids if c in category_map}
        category_ids |= {titled[t.strip()].id for t in record.category_titles if t.strip() in titled}
        category_titles = sorted(
            {category_map[c].title for c in record.category_external_ids if c in category_map}
            | {t.strip() for t in record.category_titles if t.strip()}
        )
        wanted_categories[record.external_id] = category_ids
        values = {name: getattr(record, name) for name in _IMPORTED_FIELDS}
        values["search_title"], values["search_text"] = search_fields(
            title=record.title,
            sku=record.sku,
            brand=record.brand,
            unit=record.unit,
            short_description=record.short_description,
            description=record.description,
            characteristics=record.characteristics,
            category_titles=category_titles,
        )
        parent = existing.get(record.parent_external_id) if record.parent_external_id else None
        values["parent_id"] = parent.id if parent else None
        product = existing.get(record.external_id)
        if product is None:
            product = Product(
                source=source,
                external_id=record.external_id,
                last_seen_at=now,
                price_changed_at=now if record.price is not None else None,
                **values,
            )
            to_create.append(product)
            existing[record.external_id] = product
            continue
        changed = [name for name, value in values.items() if getattr(product, name) != value]
        if not changed:
            unchanged.append(product.id)
            continue
        if "price" in changed or "old_price" in changed:
            product.price_changed_at = now
        for name in changed:
            setattr(product, name, values[name])
        product.last_seen_at = now
        to_update.append(product)

    Product.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    if to_update:
        fields = [*_IMPORTED_FIELDS, "parent_id", "search_title", "search_text", "last_seen_at", "price_changed_at"]
        Product.objects.bulk_update(to_update, fields, batch_size=BATCH_SIZE)
    if unchanged:
        Product.objects.filter(id__in=unchanged).update(last_seen_at=now)
    report.created += len(to_create)
    report.updated += len(to_update)
    report.unchanged += len(unchanged)

    batch_products = {r.external_id: existing[r.external_id] for r in batch}
    _set_categories(batch_products, wanted_categories)
    return [p.id for p in batch_products.values()]


def _set_categories(products: dict[str, Product], wanted: dict[str, set[int]]) -> None:
    """Make each product's categories exactly the wanted ones, in bulk."""
    through = Product.categories.through
    ids = [p.id for p in products.values()]
    current: dict[int, set[int]] = {i: set() for i in ids}
    for product_id, category_id in through.objects.filter(product_id__in=ids).values_list("product_id", "category_id"):
        current[product_id].add(category_id)
    to_add, to_remove = [], []
    for external_id, product in products.items():
        target = wanted.get(external_id, set())
        have = current[product.id]
        to_add += [through(product_id=product.id, category_id=c) for c in target - have]
        to_remove += [(product.id, c) for c in have - target]
    if to_add:
        through.objects.bulk_create(to_add, batch_size=BATCH_SIZE, ignore_conflicts=True)
    if to_remove:
        stale = Q()
        for product_id, category_id in to_remove:
            stale |= Q(product_id=product_id, category_id=category_id)
        through.objects.filter(stale).delete()


@transaction.atomic
def load_faq(entries: Iterable[dict]) -> tuple[int, int]:
    """FAQ entries upserted by question text. Returns (created, updated)."""
    created = updated = 0
    for order, entry in enumerate(entries):
        keywords = entry.get("keywords") or []
        if isinstance(keywords, str):
            keywords = [keywords]
        _, was_created = FAQEntry.objects.update_or_create(
            question=entry["question"].strip(),
            defaults={
                "answer": entry["answer"].strip(),
                "keywords": ", ".join(k.strip() for k in keywords if k.strip()),
                "sort_order": order,
            },
        )
        created += was_created
        updated += not was_created
    return created, updated
