"""Writes to the catalog. Importers parse; these functions store."""

from collections.abc import Iterable, Sequence
from itertools import islice

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from catalog.importers.csv_file import CsvRow, parse_csv, sku_key
from catalog.importers.records import CategoryRecord, ImportReport, ProductRecord
from catalog.models import Category, FAQEntry, Product, SearchMiss, Source
from catalog.search import NOISE_WORDS
from catalog.text import normalize_text, words

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
    set_search_fields(product, product.categories.values_list("title", flat=True))
    Product.objects.filter(pk=product.pk).update(search_title=product.search_title, search_text=product.search_text)


def in_batches(items: Sequence, size: int):
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
        for batch in in_batches(group, BATCH_SIZE):
            seen_ids += _import_batch(source, batch, category_map, titled, now, report)

    if report.created > 1000 and connection.vendor == "postgresql":
        # Fresh statistics, or the planner looks up the next run's external
        # ids through the wrong index until autovacuum gets round to it.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_product")
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
        values["search_title"], values["search_text"] = search_fields_of(record, category_titles)
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
        write_fields(to_update, fields)
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
    current: dict[int, dict[int, int]] = {i: {} for i in ids}
    for link_id, product_id, category_id in through.objects.filter(product_id__in=ids).values_list(
        "id", "product_id", "category_id"
    ):
        current[product_id][category_id] = link_id
    to_add, stale = [], []
    for external_id, product in products.items():
        target = wanted.get(external_id, set())
        have = current[product.id]
        to_add += [through(product_id=product.id, category_id=c) for c in target - have.keys()]
        stale += [link_id for category_id, link_id in have.items() if category_id not in target]
    if to_add:
        through.objects.bulk_create(to_add, batch_size=BATCH_SIZE, ignore_conflicts=True)
    if stale:
        through.objects.filter(id__in=stale).delete()


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


# --- CSV files ---------------------------------------------------------------

# Product fields a CSV file can set, besides the SKU that identifies the product.
_CSV_FIELDS = ("title", "price", "quantity", "description", "url", "image_url")
# The CSV column each length-limited field comes from, as the owner knows it.
_CSV_COLUMNS = {"sku": "sku", "external_id": "sku", "title": "title", "url": "url", "image_url": "image"}
_MAX_QUANTITY = 2**31 - 1  # an IntegerField on PostgreSQL


@transaction.atomic
def import_csv(data: bytes) -> ImportReport:
    """Store the products of a CSV file, matched by SKU, in one transaction.

    A row whose SKU matches an existing product of any source (ignoring case)
    updates that product; a new SKU creates a product with source "csv" and
    the SKU as external id. Bad rows are reported and the rest is stored; a
    file that cannot be read at all raises CsvFormatError and stores nothing.

    An empty cell, like a column the file does not have, means "not given":
    an update keeps the stored value, so a partial price list never wipes
    stock or descriptions, and a new product gets the default (no price,
    stock not tracked, no category). Values are cleared in admin, not by CSV.
    A category cell makes that category the product's only one. Every
    product the file names counts as seen (last_seen_at), changed or not.
    """
    parsed = parse_csv(data)
    now = timezone.now()
    report = ImportReport(source=Source.CSV, started_at=now, seen=len(parsed.rows) + len(parsed.skipped))
    report.skipped += parsed.skipped
    rows = []
    for row in parsed.rows:
        problem = _csv_storage_problem(row.record)
        if problem:
            report.skip(row.line, problem)
        else:
            rows.append(row)

    matches = _products_by_sku_key({sku_key(row.record.sku) for row in rows})
    claimed: dict[int, int] = {}
    targets: list[tuple[CsvRow, int | None]] = []
    for row in rows:
        ids = matches.get(sku_key(row.record.sku), [])
        if len(ids) > 1:
            report.skip(
                row.line,
                gettext("SKU %(sku)s belongs to %(count)s products; make it unique in the catalog first")
                % {"sku": row.record.sku, "count": len(ids)},
            )
        elif ids and ids[0] in claimed:
            report.skip(
                row.line,
                gettext("SKU %(sku)s points to the same product as line %(line)s")
                % {"sku": row.record.sku, "line": claimed[ids[0]]},
            )
        else:
            if ids:
                claimed[ids[0]] = row.line
            targets.append((row, ids[0] if ids else None))

    titled = _categories_by_title((t for row, _ in targets for t in row.record.category_titles), Source.CSV)
    for batch in in_batches(targets, BATCH_SIZE):
        _import_csv_batch(batch, titled, now, report)
    report.skipped.sort(key=lambda skipped: int(skipped.ref))
    report.finished_at = timezone.now()
    return report


def _csv_storage_problem(record: ProductRecord) -> str | None:
    """Why a parsed row does not fit the database columns, if it does not.

    Checked before writing: on PostgreSQL one value too long for its column
    would abort the transaction and lose the good rows with it.
    """
    for name in _CSV_COLUMNS:
        limit = Product._meta.get_field(name).max_length
        if len(getattr(record, name)) > limit:
            return gettext("%(column)s is longer than %(limit)s characters") % {
                "column": _CSV_COLUMNS[name],
                "limit": limit,
            }
    category_limit = Category._meta.get_field("title").max_length
    if any(len(title) > category_limit for title in record.category_titles):
        return gettext("%(column)s is longer than %(limit)s characters") % {
            "column": "category",
            "limit": category_limit,
        }
    price_field = Product._meta.get_field("price")
    if record.price is not None and record.price >= 10 ** (price_field.max_digits - price_field.decimal_places):
        return gettext("price %(price)s is too large") % {"price": record.price}
    if record.quantity is not None and record.quantity > _MAX_QUANTITY:
        return gettext("quantity %(quantity)s is too large") % {"quantity": record.quantity}
    return None


def _products_by_sku_key(keys: set[str]) -> dict[str, list[int]]:
    """Ids of the existing products for each SKU key.

    A product of any source with that SKU; failing that, a CSV product whose
    external id is that SKU (its SKU edited in admin since), which must not
    be created again. Keys are compared in Python because SQLite's upper()
    folds ASCII letters only, and Cyrillic SKUs exist.
    """
    found: dict[str, list[int]] = {}
    for product_id, sku in Product.objects.exclude(sku="").values_list("id", "sku").iterator():
        key = sku_key(sku)
        if key in keys:
            found.setdefault(key, []).append(product_id)
    by_external_id = Product.objects.filter(source=Source.CSV).values_list("id", "external_id")
    for product_id, external_id in by_external_id.iterator():
        key = sku_key(external_id)
        if key in keys and key not in found:
            found[key] = [product_id]
    return found


def _import_csv_batch(batch: list[tuple[CsvRow, int | None]], titled: dict[str, Category], now, report) -> None:
    through = Product.categories.through
    existing = Product.objects.in_bulk([product_id for _, product_id in batch if product_id])
    current: dict[int, dict[int, str]] = {product_id: {} for product_id in existing}
    category_rows = through.objects.filter(product_id__in=existing).values_list(
        "product_id", "category_id", "category__title"
    )
    for product_id, category_id, title in category_rows:
        current[product_id][category_id] = title

    to_create: list[Product] = []
    # Grouped by the fields they change, so that each group is one UPDATE
    # statement of only those fields.
    to_update: dict[frozenset[str], list[Product]] = {}
    unchanged: list[int] = []
    # Products whose categories the file sets, by line.
    categorised: dict[str, Product] = {}
    wanted_categories: dict[str, set[int]] = {}
    for row, product_id in batch:
        category = titled[row.record.category_titles[0]] if row.record.category_titles else None
        if product_id is None:
            product = _new_csv_product(row.record, category, now)
            to_create.append(product)
        else:
            product = existing[product_id]
            changed = _apply_csv_row(product, row, category, current[product_id], now)
            if not changed:
                unchanged.append(product_id)
                continue
            to_update.setdefault(changed, []).append(product)
        if category is not None:
            categorised[str(row.line)] = product
            wanted_categories[str(row.line)] = {category.id}

    Product.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    for fields, products in to_update.items():
        write_fields(products, sorted(fields))
    if unchanged:
        Product.objects.filter(id__in=unchanged).update(last_seen_at=now)
    _set_categories(categorised, wanted_categories)
    report.created += len(to_create)
    report.updated += sum(len(products) for products in to_update.values())
    report.unchanged += len(unchanged)


def _new_csv_product(record: ProductRecord, category: Category | None, now) -> Product:
    product = Product(
        source=Source.CSV,
        external_id=record.external_id,
        sku=record.sku,
        last_seen_at=now,
        price_changed_at=now if record.price is not None else None,
        **{name: getattr(record, name) for name in _CSV_FIELDS},
    )
    set_search_fields(product, [category.title] if category else [])
    return product


def _apply_csv_row(
    product: Product, row: CsvRow, category: Category | None, categories: dict[int, str], now
) -> frozenset[str]:
    """Put a row's values on an existing product; the model fields to write (none when unchanged)."""
    record = row.record
    changed = {
        name
        for name in _CSV_FIELDS
        if (name == "title" or name in row.filled) and getattr(product, name) != getattr(record, name)
    }
    for name in changed:
        setattr(product, name, getattr(record, name))
    if "price" in changed:
        product.price_changed_at = now
        changed.add("price_changed_at")
    # Category titles are part of the search text, like the title and description.
    category_changed = category is not None and categories.keys() != {category.id}
    if category_changed or changed & {"title", "description"}:
        set_search_fields(product, [category.title] if category_changed else sorted(categories.values()))
        changed |= {"search_title", "search_text"}
    if changed:
        product.last_seen_at = product.updated_at = now
        changed |= {"last_seen_at", "updated_at"}
    return frozenset(changed)


def search_fields_of(item: Product | ProductRecord, category_titles: Iterable[str]) -> tuple[str, str]:
    """search_fields() of a stored product or of an import record (they share the field names)."""
    return search_fields(
        title=item.title,
        sku=item.sku,
        brand=item.brand,
        unit=item.unit,
        short_description=item.short_description,
        description=item.description,
        characteristics=item.characteristics,
        category_titles=category_titles,
    )


def set_search_fields(product: Product, category_titles: Iterable[str]) -> None:
    """Fill a product's search text from its own fields and these category titles."""
    product.search_title, product.search_text = search_fields_of(product, category_titles)


def write_fields(products: list[Product], fields: list[str]) -> None:
    """Write these fields of the products, by id, with one statement run for all rows.

    Product.objects.bulk_update builds a CASE expression per field and
    product, and spends most of a minute in Python on a 50 000-row price
    list; executemany runs one prepared UPDATE for all rows (psycopg 3 pipelines them).
    """
    model_fields = [Product._meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in model_fields)
    sql = f"UPDATE {quote(Product._meta.db_table)} SET {assignments} WHERE {quote(Product._meta.pk.column)} = %s"
    params = [
        [field.get_db_prep_save(getattr(product, field.attname), connection) for field in model_fields] + [product.pk]
        for product in products
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


MISS_QUERY_CHARS = 200


def record_search_miss(query: str) -> None:
    """One more time this query found nothing: its words without the chat around them («есть ли у вас»),
    normalised, cut to MISS_QUERY_CHARS: the phrase a synonym would be for."""
    text = " ".join(w for w in words(query) if w not in NOISE_WORDS)[:MISS_QUERY_CHARS]
    if not text:
        return
    now = timezone.now()
    if SearchMiss.objects.filter(query=text).update(times=F("times") + 1, last_at=now):
        return
    try:
        with transaction.atomic():
            SearchMiss.objects.create(query=text, last_at=now)
    except IntegrityError:
        # Recorded by another request a moment ago.
        SearchMiss.objects.filter(query=text).update(times=F("times") + 1, last_at=now)
