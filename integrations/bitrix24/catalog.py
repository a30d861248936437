"""A product catalog kept in Bitrix24, read into the shared import records (catalog/importers/records.py).

Only Bitrix24's side lives here: which methods, in what shapes, and reading
the answers into ProductRecord / CategoryRecord. Storing them, and the run
with its safety rules, is integrations/bitrix24/catalog_tasks.py on top of
catalog.services.import_products.

Two APIs, tried in this order:

- the catalog module (scope `catalog`): the CRM catalog's iblock from
  catalog.catalog.list (unless B24_CATALOG_IBLOCK_ID names it), its sections
  (catalog.section.list), its active products (catalog.product.list), the
  base price type (catalog.priceType.list) and each product's base price
  (catalog.price.list); stock is the product's own `quantity` (what Bitrix24
  says is available, with its `available` flag), or, with warehouses named in
  B24_CATALOG_STORE_IDS, their amounts summed (catalog.storeproduct.list);
- the legacy CRM products (scope `crm`: crm.product.list, whose rows carry
  the price, and crm.productsection.list) when the catalog module is missing
  or not granted (ERROR_METHOD_NOT_FOUND, insufficient_scope). They have no
  stock: the products count as not tracked.

Every list is read through `batch`, 50 commands a request (Bitrix24's limit,
one token of the portal's rate limit): a list's first page tells its total and
the other pages are asked for together, so a catalog of 5,000 products is its
first page plus two requests of pages; prices and stock are asked for 50
products a command, 2,500 products a request (a product kept in several
warehouses has a row in each, so stock may take a second page of a command).
Nothing is asked product by product.

Shapes as documented at apidocs.bitrix24.com (github.com/bitrix-tools/b24-rest-docs);
recorded answers and where each comes from are in
tests/integrations/bitrix24/fixtures/catalog/ (NOTES.md).
"""

import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from catalog.importers.records import CategoryRecord, ProductRecord, SkippedRow
from catalog.text import strip_html
from integrations.bitrix24.client import BATCH_LIMIT, Bitrix24Client, Bitrix24Error

logger = logging.getLogger(__name__)

PAGE = 50  # items a page of every Bitrix24 list method, fixed
# Errors that say the catalog module is not there for us: not installed, or the
# webhook / app has no `catalog` scope. Upper-cased (Bitrix24 writes the scope one in lower case).
CATALOG_UNAVAILABLE = {"ERROR_METHOD_NOT_FOUND", "INSUFFICIENT_SCOPE"}
# Errors of a command inside a batch that may pass if the run is tried again later.
TRANSIENT = {"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER"}
CRM_CATALOG_TYPE = "CRM_PRODUCT_CATALOG"

PRODUCT_SELECT = [
    "id",
    "iblockId",
    "name",
    "active",
    "available",
    "quantity",
    "iblockSectionId",
    "previewText",
    "previewTextType",
    "detailText",
    "detailTextType",
    "sort",
]
SECTION_SELECT = ["id", "name", "iblockSectionId", "sort"]
PRICE_SELECT = ["productId", "catalogGroupId", "price", "currency", "quantityFrom"]
STOCK_SELECT = ["productId", "storeId", "amount"]
CRM_PRODUCT_SELECT = ["ID", "NAME", "PRICE", "CURRENCY_ID", "SECTION_ID", "DESCRIPTION", "DESCRIPTION_TYPE", "SORT"]
CRM_SECTION_SELECT = ["ID", "NAME", "SECTION_ID"]


@dataclass
class Bitrix24Catalog:
    products: list[ProductRecord] = field(default_factory=list)
    categories: list[CategoryRecord] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    api: str = "catalog"  # "catalog": the catalog module; "crm": crm.product.list
    requests: int = 0  # REST requests the read took, batches included


@dataclass(frozen=True)
class ListRead:
    """One list method to read whole; its items are collected under `name`."""

    name: str
    method: str
    params: dict
    items: str = ""  # the key of the items in `result` ({"products": [...]}); "" when `result` is the list

    @property
    def start(self) -> int:
        return _int(self.params.get("start")) or 0

    def at(self, start: int) -> "ListRead":
        """The same list from another page."""
        return replace(self, params={**self.params, "start": start})


class BatchedReader:
    """Reads whole lists through `batch` and counts the requests it makes."""

    def __init__(self, client: Bitrix24Client):
        self.client = client
        self.requests = 0

    def call(self, method: str, params: dict | None = None):
        self.requests += 1
        return self.client.call(method, params)

    def read(self, reads: list[ListRead]) -> dict[str, list[dict]]:
        """Every item of each list, by name: the first pages together, then every other page at once.

        A first page's `total` tells which pages there are, and they are queued
        together (not one by one from `next`); a list that gives no total is
        followed by `next`, a page at a time.
        """
        queue = deque((read, True) for read in reads)
        found: dict[str, list[dict]] = defaultdict(list)
        while queue:
            chunk = [queue.popleft() for _ in range(min(BATCH_LIMIT, len(queue)))]
            self.requests += 1
            answer = self.client.batch({str(n): (read.method, read.params) for n, (read, _) in enumerate(chunk)})
            for n, (read, first) in enumerate(chunk):
                key = str(n)
                if key in answer["result_error"]:
                    raise command_error(read.method, answer["result_error"][key])
                if key not in answer["result"]:
                    raise Bitrix24Error("BAD_RESPONSE", f"batch: no answer for {read.method}")
                found[read.name] += page_items(answer["result"][key], read.items)
                total = _int(answer["result_total"].get(key))
                if first and total is not None:
                    queue.extend((read.at(start), False) for start in range(read.start + PAGE, total, PAGE))
                elif total is None and _int(answer["result_next"].get(key)):
                    queue.append((read.at(_int(answer["result_next"][key])), False))
        return found


def fetch_catalog(
    client: Bitrix24Client, *, iblock_id: int | None = None, store_ids: list[int] | tuple[int, ...] = ()
) -> Bitrix24Catalog:
    """The portal's whole catalog: from the catalog module, else from the legacy CRM products."""
    reader = BatchedReader(client)
    try:
        catalog = _from_catalog_module(reader, iblock_id=iblock_id, store_ids=list(store_ids))
    except Bitrix24Error as exc:
        if not catalog_module_unavailable(exc):
            raise
        logger.info("bitrix24 catalog module unavailable (%s): reading crm.product.list", exc.code)
        catalog = _from_crm_products(reader)
    catalog.requests = reader.requests
    return catalog


def catalog_module_unavailable(exc: Bitrix24Error) -> bool:
    return exc.code.upper() in CATALOG_UNAVAILABLE


# The catalog module -------------------------------------------------------------


def _from_catalog_module(reader: BatchedReader, *, iblock_id: int | None, store_ids: list[int]) -> Bitrix24Catalog:
    iblock_id = iblock_id or product_iblock_id(reader.call("catalog.catalog.list"))
    found = reader.read(
        [
            ListRead(
                "price types",
                "catalog.priceType.list",
                {"select": ["id", "base"], "filter": {"base": "Y"}},
                "priceTypes",
            ),
            ListRead(
                "sections",
                "catalog.section.list",
                {"select": SECTION_SELECT, "filter": {"iblockId": iblock_id}, "order": {"id": "asc"}},
                "sections",
            ),
            ListRead(
                "products",
                "catalog.product.list",
                {"select": PRODUCT_SELECT, "filter": {"iblockId": iblock_id, "active": "Y"}, "order": {"id": "asc"}},
                "products",
            ),
        ]
    )
    base_type = base_price_type(found["price types"])
    rows = {str(row.get("id")): row for row in found["products"] if row.get("id") is not None}
    ids = sorted(int(product_id) for product_id in rows if product_id.isdigit())
    reads = [
        ListRead(
            "prices",
            "catalog.price.list",
            {"select": PRICE_SELECT, "filter": {"@productId": chunk, "catalogGroupId": base_type}},
            "prices",
        )
        for chunk in _chunks(ids, PAGE)
    ]
    if store_ids:
        reads += [
            ListRead(
                "stock",
                "catalog.storeproduct.list",
                {"select": STOCK_SELECT, "filter": {"@productId": chunk, "@storeId": store_ids}},
                "storeProducts",
            )
            for chunk in _chunks(ids, PAGE)
        ]
    if reads:
        found |= reader.read(reads)
    prices = base_prices(found.get("prices", []))
    stock = store_stock(found.get("stock", [])) if store_ids else None
    catalog = Bitrix24Catalog(api="catalog", categories=[parse_section(row) for row in found["sections"]])
    for product_id, row in rows.items():
        try:
            catalog.products.append(parse_product(row, prices.get(product_id), stock))
        except ValueError as exc:
            catalog.skipped.append(SkippedRow(ref=product_id, reason=str(exc)))
    return catalog


def product_iblock_id(result) -> int:
    """The iblock of the CRM's products in catalog.catalog.list's answer: not an offers (variations) catalog."""
    catalogs = result.get("catalogs") if isinstance(result, dict) else result
    candidates = [
        c for c in catalogs or [] if isinstance(c, dict) and c.get("iblockId") and not c.get("productIblockId")
    ]
    candidates.sort(key=lambda c: (c.get("iblockTypeId") != CRM_CATALOG_TYPE, _int(c.get("iblockId")) or 0))
    if not candidates:
        raise Bitrix24Error("NO_CATALOG", "catalog.catalog.list names no product catalog", permanent=True)
    return int(candidates[0]["iblockId"])


def base_price_type(rows: list[dict]) -> int:
    for row in rows:
        if str(row.get("base", "Y")).upper() == "Y" and _int(row.get("id")):
            return int(row["id"])
    raise Bitrix24Error("NO_BASE_PRICE", "catalog.priceType.list has no base price type", permanent=True)


def base_prices(rows: list[dict]) -> dict[str, tuple[Decimal, str]]:
    """(price, currency) by product id; of a product's quantity-range prices, the one for the smallest quantity."""
    best: dict[str, tuple[float, Decimal, str]] = {}
    for row in rows:
        try:
            price = parse_price(row.get("price"))
        except ValueError:
            price = None  # the product goes without a price, as one that has none
        if price is None or row.get("productId") is None:
            continue
        product_id = str(row["productId"])
        quantity_from = float(row.get("quantityFrom") or 0)
        if product_id not in best or quantity_from < best[product_id][0]:
            best[product_id] = (quantity_from, price, str(row.get("currency") or "RUB"))
    return {product_id: (price, currency) for product_id, (_, price, currency) in best.items()}


def store_stock(rows: list[dict]) -> dict[str, int]:
    """Units in the named warehouses, by product id."""
    stock: dict[str, float] = defaultdict(float)
    for row in rows:
        if row.get("productId") is not None:
            stock[str(row["productId"])] += max(float(row.get("amount") or 0), 0.0)
    return {product_id: int(amount) for product_id, amount in stock.items()}


def parse_product(row: dict, price: tuple[Decimal, str] | None, stock: dict[str, int] | None) -> ProductRecord:
    product_id = str(row["id"])
    title = (row.get("name") or "").strip()
    if not title:
        raise ValueError("no name")
    section = row.get("iblockSectionId")
    return ProductRecord(
        external_id=product_id,
        title=title,
        short_description=_text(row.get("previewText"), row.get("previewTextType")),
        description=_text(row.get("detailText"), row.get("detailTextType")),
        price=price[0] if price else None,
        currency=price[1][:3] if price else "RUB",
        quantity=stock.get(product_id, 0) if stock is not None else product_quantity(row),
        category_external_ids=[str(section)] if section else [],
        sort_order=_int(row.get("sort")) or 0,
    )


def product_quantity(row: dict) -> int | None:
    """Stock as the product row tells it; None (not tracked) for a product sold without stock.

    `quantity` is what Bitrix24 counts as available (with inventory management, the
    warehouses' total less reserves); `available` says whether it can be bought at
    all, which a product with no stock can be when stock is not traced or buying
    at zero is allowed.
    """
    quantity = int(float(row.get("quantity") or 0))
    available = str(row.get("available") or "").upper()
    if available == "N":
        return 0
    if quantity > 0:
        return quantity
    return None if available == "Y" else 0


def parse_section(row: dict) -> CategoryRecord:
    parent = row.get("iblockSectionId")
    return CategoryRecord(
        external_id=str(row["id"]),
        title=(row.get("name") or "").strip()[:255] or str(row["id"]),
        sort_order=_int(row.get("sort")) or 0,
        parent_external_id=str(parent) if parent else "",
    )


# The legacy CRM products ----------------------------------------------------------


def _from_crm_products(reader: BatchedReader) -> Bitrix24Catalog:
    found = reader.read(
        [
            ListRead("sections", "crm.productsection.list", {"select": CRM_SECTION_SELECT, "order": {"ID": "ASC"}}),
            ListRead(
                "products",
                "crm.product.list",
                {"select": CRM_PRODUCT_SELECT, "filter": {"ACTIVE": "Y"}, "order": {"ID": "ASC"}},
            ),
        ]
    )
    catalog = Bitrix24Catalog(api="crm")
    for row in found["sections"]:
        if row.get("ID"):
            parent = row.get("SECTION_ID")
            catalog.categories.append(
                CategoryRecord(
                    external_id=str(row["ID"]),
                    title=(row.get("NAME") or "").strip()[:255] or str(row["ID"]),
                    parent_external_id=str(parent) if parent else "",
                )
            )
    rows = {str(row["ID"]): row for row in found["products"] if row.get("ID")}
    for product_id, row in rows.items():
        try:
            catalog.products.append(parse_crm_product(row))
        except ValueError as exc:
            catalog.skipped.append(SkippedRow(ref=product_id, reason=str(exc)))
    return catalog


def parse_crm_product(row: dict) -> ProductRecord:
    title = (row.get("NAME") or "").strip()
    if not title:
        raise ValueError("no name")
    section = row.get("SECTION_ID")
    return ProductRecord(
        external_id=str(row["ID"]),
        title=title,
        description=_text(row.get("DESCRIPTION"), row.get("DESCRIPTION_TYPE")),
        price=parse_price(row.get("PRICE")),
        currency=str(row.get("CURRENCY_ID") or "RUB")[:3],
        quantity=None,  # crm.product.list knows no stock
        category_external_ids=[str(section)] if section else [],
        sort_order=_int(row.get("SORT")) or 0,
    )


# Helpers ------------------------------------------------------------------------


def page_items(result, key: str = "") -> list[dict]:
    """The items of one page: `result[key]` ({"products": [...]}) or `result` itself (legacy methods)."""
    if key and isinstance(result, dict):
        result = result.get(key)
    if isinstance(result, dict):
        # PHP's array with keys 0..n, encoded as an object.
        result = list(result.values())
    return [item for item in result or [] if isinstance(item, dict)]


def command_error(method: str, error) -> Bitrix24Error:
    """A command's entry of a batch's `result_error` as the error a call of its own would raise."""
    error = error if isinstance(error, dict) else {"error_description": str(error)}
    code = str(error.get("error") or "BATCH_COMMAND_FAILED")
    description = f"{method}: {error.get('error_description') or ''}".strip()[:300]
    return Bitrix24Error(code, description, permanent=code.upper() not in TRANSIENT)


def parse_price(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"unreadable price {value!r}") from None
    if price < 0:
        raise ValueError(f"negative price {value!r}")
    return price


def _text(value, text_type) -> str:
    if not value:
        return ""
    text = str(value)
    return strip_html(text) if str(text_type or "").lower() == "html" else text.strip()


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
