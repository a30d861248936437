"""Tilda Store: parsing of `getproductslist` pages into catalog records.

Real pages are loosely typed: `uid` arrives as a number or a string, prices as
"1290.0000", "650.00", "1 290" or "", `quantity` "" or "-1" for "not tracked"
and "0" for "out of stock", `gallery` and `partuids` as JSON inside a string.
A product with several `editions` is a family of variants; each edition keeps
its own uid, SKU, price and stock, and its option values as keys named after
the option ("Фасовка": "250 г").
"""

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from catalog.importers.records import CategoryRecord, ProductRecord, SkippedRow
from catalog.text import strip_html

# Keys of an edition that are not option values.
_EDITION_FIELDS = frozenset(
    {"uid", "price", "priceold", "sku", "quantity", "img", "externalid", "mark", "portion", "unit", "single"}
)
# Characteristics that tell the pack size of a product.
_UNIT_CHARACTERISTICS = ("фасовка", "вес", "объем", "объём", "упаковка", "размер")


class TildaFormatError(ValueError):
    """The page itself is not a Tilda products page (bad JSON, no products)."""


@dataclass
class TildaPage:
    products: list[ProductRecord] = field(default_factory=list)
    categories: list[CategoryRecord] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    total: int | None = None
    next_slice: int | None = None


def parse_price(value) -> Decimal | None:
    """A price from Tilda: None when empty or unreadable as a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    text = re.sub(r"[\s\u00a0\u202f₽]|руб\.?|р\.", "", str(value), flags=re.IGNORECASE).replace(",", ".")
    if not text:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"unreadable price {value!r}") from None
    if price < 0:
        raise ValueError(f"negative price {value!r}")
    return price.quantize(Decimal("0.01"))


def parse_quantity(value) -> int | None:
    """Stock from Tilda: None when not tracked ("" or negative), else the count."""
    if value is None or value == "":
        return None
    try:
        quantity = int(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        raise ValueError(f"unreadable quantity {value!r}") from None
    return None if quantity < 0 else quantity


def _json_field(value, default):
    """Tilda nests JSON in strings for some fields (gallery, partuids)."""
    if value in (None, ""):
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"unreadable JSON field {value[:80]!r}") from None
    return value


def _first_image(gallery) -> str:
    for item in _json_field(gallery, []):
        if isinstance(item, dict) and item.get("img"):
            return str(item["img"])
        if isinstance(item, str) and item:
            return item
    return ""


def _characteristics(raw) -> dict:
    result = {}
    for item in raw or []:
        if isinstance(item, dict) and item.get("title") and item.get("value") not in (None, ""):
            result[str(item["title"]).strip()] = str(item["value"]).strip()
    return result


def _unit(characteristics: dict, raw: dict) -> str:
    for title, value in characteristics.items():
        if title.lower() in _UNIT_CHARACTERISTICS:
            return value
    portion, unit = raw.get("portion"), raw.get("unit")
    if portion not in (None, "", 0, "0") and unit:
        return f"{portion} {unit}"
    return ""


def _uid(value) -> str:
    if value is None or value == "" or isinstance(value, bool):
        raise ValueError("no uid")
    if isinstance(value, float):
        value = int(value)
    return str(value).strip()


def parse_product(raw: dict) -> list[ProductRecord]:
    """One Tilda product: one record, or the product and one record per variant."""
    if not isinstance(raw, dict):
        raise ValueError("product is not an object")
    uid = _uid(raw.get("uid"))
    title = str(raw.get("title") or "").strip()
    if not title:
        raise ValueError("no title")
    characteristics = _characteristics(raw.get("characteristics"))
    category_ids = [str(c) for c in _json_field(raw.get("partuids"), []) if str(c).strip()]
    base = ProductRecord(
        external_id=uid,
        title=title,
        sku=str(raw.get("sku") or "").strip(),
        short_description=strip_html(str(raw.get("descr") or "")),
        description=strip_html(str(raw.get("text") or "")),
        price=parse_price(raw.get("price")),
        old_price=parse_price(raw.get("priceold")),
        quantity=parse_quantity(raw.get("quantity")),
        unit=_unit(characteristics, raw),
        url=str(raw.get("url") or "").strip(),
        image_url=_first_image(raw.get("gallery")),
        characteristics=characteristics,
        brand=str(raw.get("brand") or "").strip(),
        category_external_ids=category_ids,
        sort_order=_int_or_zero(raw.get("sort")),
    )
    editions = [e for e in raw.get("editions") or [] if isinstance(e, dict)]
    # A single edition with the product's own uid is the product itself.
    if len(editions) == 1 and _uid(editions[0].get("uid")) == uid:
        _apply_edition(base, editions[0])
        return [base]
    if not editions:
        return [base]
    records = [base]
    for edition in editions:
        records.append(_variant(base, edition))
    # The family's stock is the sum of its variants' where all are tracked.
    quantities = [r.quantity for r in records[1:]]
    base.quantity = None if any(q is None for q in quantities) else sum(quantities)
    return records


def _apply_edition(record: ProductRecord, edition: dict) -> None:
    if edition.get("price") not in (None, ""):
        record.price = parse_price(edition.get("price"))
    if edition.get("priceold") not in (None, ""):
        record.old_price = parse_price(edition.get("priceold"))
    if "quantity" in edition:
        record.quantity = parse_quantity(edition.get("quantity"))
    record.sku = str(edition.get("sku") or "").strip() or record.sku
    record.image_url = str(edition.get("img") or "").strip() or record.image_url


def _variant(base: ProductRecord, edition: dict) -> ProductRecord:
    options = {
        str(key).strip(): str(value).strip()
        for key, value in edition.items()
        if key not in _EDITION_FIELDS and value not in (None, "") and not isinstance(value, (dict, list))
    }
    option_text = ", ".join(options.values())
    variant = ProductRecord(
        external_id=_uid(edition.get("uid")),
        parent_external_id=base.external_id,
        title=f"{base.title}, {option_text}" if option_text else base.title,
        sku="",
        short_description=base.short_description,
        description=base.description,
        price=base.price,
        old_price=base.old_price,
        quantity=base.quantity,
        unit=next(iter(options.values()), base.unit),
        url=base.url,
        image_url=base.image_url,
        characteristics={**base.characteristics, **options},
        brand=base.brand,
        category_external_ids=list(base.category_external_ids),
        sort_order=base.sort_order,
    )
    _apply_edition(variant, edition)
    return variant


def _int_or_zero(value) -> int:
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        return 0


def parse_page(payload) -> TildaPage:
    """A decoded `getproductslist` answer. Bad products are skipped, not fatal."""
    if isinstance(payload, (str, bytes)):
        try:
            payload = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TildaFormatError(f"not JSON: {str(payload[:120])!r}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("products"), list):
        raise TildaFormatError("no product list in the answer")
    page = TildaPage()
    for part in payload.get("parts") or []:
        if isinstance(part, dict) and part.get("uid") not in (None, "") and part.get("title"):
            page.categories.append(
                CategoryRecord(
                    external_id=str(part["uid"]),
                    title=str(part["title"]).strip(),
                    sort_order=_int_or_zero(part.get("sort")),
                )
            )
    for index, raw in enumerate(payload["products"]):
        ref = str(raw.get("uid")) if isinstance(raw, dict) and raw.get("uid") else f"#{index + 1}"
        try:
            page.products.extend(parse_product(raw))
        except ValueError as exc:
            page.skipped.append(SkippedRow(ref=ref, reason=str(exc)))
    page.total = _int_or_zero(payload.get("total")) or None
    next_slice = payload.get("nextslice")
    page.next_slice = _int_or_zero(next_slice) or None
    return page


# --- HTTP ---------------------------------------------------------------------


USER_AGENT = "storebot/0.1 (catalog sync)"


class TildaError(Exception):
    """A page could not be fetched or read, after retries. The run must fail."""


@dataclass
class TildaClient:
    """Tilda Store's public `getproductslist` API, page by page.

    One requests.Session: urllib3 retries 429/5xx and connection errors with
    exponential backoff (honouring Retry-After), every call has a timeout,
    and pages are fetched with a pause between them.
    """

    api_url: str
    timeout: float = 20.0
    page_size: int = 100
    page_delay: float = 0.5
    max_pages: int = 1000
    retries: int = 4
    backoff: float = 1.0
    session: requests.Session = field(default=None, repr=False)

    def __post_init__(self):
        if self.session is None:
            self.session = requests.Session()
            retry = Retry(
                total=self.retries,
                connect=self.retries,
                read=self.retries,
                status=self.retries,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=frozenset({"GET"}),
                backoff_factor=self.backoff,
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            adapter = HTTPAdapter(max_retries=retry)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)
            self.session.headers["User-Agent"] = USER_AGENT

    @classmethod
    def from_settings(cls) -> "TildaClient":
        return cls(
            api_url=settings.TILDA_API_URL,
            timeout=settings.SCRAPER_TIMEOUT_S,
            page_size=settings.TILDA_PAGE_SIZE,
            page_delay=settings.SCRAPER_PAGE_DELAY_S,
            max_pages=settings.SCRAPER_MAX_PAGES,
            retries=settings.SCRAPER_RETRIES,
            backoff=settings.SCRAPER_BACKOFF_S,
        )

    def fetch_page(self, *, partuid: str, recid: str, slice_number: int) -> TildaPage:
        params = {
            "storepartuid": partuid,
            "recid": recid,
            "getparts": "true",
            "getoptions": "true",
            "slice": slice_number,
            "size": self.page_size,
        }
        try:
            response = self.session.get(self.api_url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TildaError(f"slice {slice_number}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise TildaError(f"slice {slice_number}: HTTP {response.status_code}")
        try:
            return parse_page(response.text)
        except TildaFormatError as exc:
            # Tilda answers some errors as plain text with status 200.
            raise TildaError(f"slice {slice_number}: {exc}") from exc

    def iter_pages(self, *, partuid: str, recid: str) -> Iterator[TildaPage]:
        """Every page of one store part, following `nextslice` until it is empty."""
        slice_number = 1
        for count in range(1, self.max_pages + 1):
            page = self.fetch_page(partuid=partuid, recid=recid, slice_number=slice_number)
            yield page
            if not page.next_slice:
                return
            if page.next_slice <= slice_number:
                raise TildaError(f"slice {slice_number}: next slice {page.next_slice} goes backwards")
            slice_number = page.next_slice
            if count < self.max_pages and self.page_delay:
                time.sleep(self.page_delay)
        raise TildaError(f"more than {self.max_pages} pages; raise SCRAPER_MAX_PAGES if the store is that big")


# A store block's record id, and the store part its script asks for.
_RECORD_RE = re.compile(r"""id=["']rec(\d+)["']""")
_STOREPART_RE = re.compile(r"""storepart(?:uid)?["']?\s*[:=]\s*["']?(\d{6,})""")
_API_CALL_RE = re.compile(r"storepartuid=(\d+)[^\"'<>\s]*?recid=(\d+)|recid=(\d+)[^\"'<>\s]*?storepartuid=(\d+)")


def discover_store_ids(html: str) -> list[tuple[str, str]]:
    """(storepartuid, recid) pairs found in a Tilda page's embedded store scripts."""
    found: list[tuple[str, str]] = []

    def add(pair):
        if pair not in found:
            found.append(pair)

    records = list(_RECORD_RE.finditer(html))
    for index, record in enumerate(records):
        end = records[index + 1].start() if index + 1 < len(records) else len(html)
        for storepart in _STOREPART_RE.findall(html[record.start() : end]):
            add((storepart, record.group(1)))
    for match in _API_CALL_RE.finditer(html):
        part, recid, recid2, part2 = match.groups()
        add((part or part2, recid or recid2))
    return found


def fetch_store_ids(url: str, *, timeout: float = 20.0) -> list[tuple[str, str]]:
    """Read a shop's public page and find its store ids (for `scrape --discover`)."""
    try:
        response = requests.get(url, timeout=timeout, headers={"User-Agent": USER_AGENT})
        response.raise_for_status()
    except requests.RequestException as exc:
        raise TildaError(f"{url}: {exc}") from exc
    return discover_store_ids(response.text)
