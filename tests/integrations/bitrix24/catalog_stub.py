"""A local Bitrix24 portal with a product catalog, over real HTTP on 127.0.0.1.

It serves the methods the catalog import reads (catalog.catalog.list,
catalog.priceType.list, catalog.section.list, catalog.product.list,
catalog.price.list, catalog.storeproduct.list, the legacy crm.product.list
and crm.productsection.list) and `batch`, whose commands it reads the way
PHP does (`filter[%40productId][0]=1243`), from what it holds: products with
a price, a quantity and warehouse amounts, and sections. Rows are built on
the first item of each recorded answer in fixtures/catalog/ (see NOTES.md),
so they keep Bitrix24's keys and types.

What it was asked is kept: `requests` (each HTTP request's method) and
`batches` (the methods of each `batch`'s commands), so a test counts calls.
`catalog_module=False` makes it a portal whose catalog.* methods are not
there (ERROR_METHOD_NOT_FOUND, or `catalog_error="insufficient_scope"` for a
webhook without the scope).
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl

from tests.local_server import ScriptedServer

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"
SECRET = "cat4l0g-w3bh00k-s3cr3t"
PAGE = 50
BATCH_LIMIT = 50
IBLOCK_ID = 23
BASE_PRICE_TYPE = 1


def answer(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _first(name: str, key: str | None) -> dict:
    result = answer(name)["result"]
    return dict((result[key] if key else result)[0])


PRODUCT = _first("catalog_product_list.json", "products")
SECTION = _first("catalog_section_list.json", "sections")
PRICE = _first("catalog_price_list.json", "prices")
STOCK = _first("catalog_storeproduct_list.json", "storeProducts")
CRM_PRODUCT = _first("crm_product_list.json", None)
CRM_SECTION = _first("crm_productsection_list.json", None)


def php_query(query: str) -> dict:
    """A query string as PHP reads it: FIELDS[NAME]=x -> {"FIELDS": {"NAME": "x"}}; keys 0..n make a list."""
    root: dict = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        name, _, rest = key.partition("[")
        path = [name] + (rest[:-1].split("][") if rest else [])
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _lists(root)


def _lists(node):
    if not isinstance(node, dict):
        return node
    node = {key: _lists(value) for key, value in node.items()}
    if node and sorted(node) == sorted(str(i) for i in range(len(node))):
        return [node[str(i)] for i in range(len(node))]
    return node


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


class CatalogPortal(ScriptedServer):
    def __init__(self, *, catalog_module: bool = True, catalog_error: str = "ERROR_METHOD_NOT_FOUND"):
        super().__init__()
        self.catalog_module = catalog_module
        self.catalog_error = catalog_error
        self.lock = threading.Lock()
        # id -> {"name", "section", "price", "quantity", "available", "active", "stock": {store id: amount}}
        self.products: dict[int, dict] = {}
        self.sections: dict[int, dict] = {}
        self.requests: list[str] = []
        self.batches: list[list[str]] = []
        self._refusals: dict[str, tuple[int, str]] = {}

    @property
    def webhook_url(self) -> str:
        return f"{self.address}/rest/1/{SECRET}/"

    # What the portal holds -----------------------------------------------------

    def add_section(self, section_id: int, name: str, *, parent: int | None = None, sort: int = 500) -> None:
        self.sections[section_id] = {"name": name, "parent": parent, "sort": sort}

    def add_product(
        self,
        product_id: int,
        name: str,
        *,
        price: float | None = 100.0,
        quantity: float = 10,
        available: str = "Y",
        active: str = "Y",
        section: int | None = None,
        stock: dict[int, float] | None = None,
        sort: int = 500,
    ) -> None:
        self.products[product_id] = {
            "name": name,
            "price": price,
            "quantity": quantity,
            "available": available,
            "active": active,
            "section": section,
            "stock": dict(stock or {}),
            "sort": sort,
        }

    def refuse(self, method: str, code: str = "OPERATION_TIME_LIMIT", status: int = 429) -> None:
        """`method` answers this error from now on, on its own or inside a batch."""
        self._refusals[method] = (status, code)

    def called(self, method: str) -> int:
        """Requests of `method` on their own (not inside a batch)."""
        return self.requests.count(method)

    def batches_with(self, method: str) -> int:
        return sum(1 for methods in self.batches if method in methods)

    def forget_calls(self) -> None:
        self.requests.clear()
        self.batches.clear()

    # Methods ---------------------------------------------------------------------

    def answer(self, method: str, params: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(method)
            if method == "batch":
                return self._batch(params)
            return self._method(method, params)

    def _method(self, method: str, params: dict) -> tuple[int, dict]:
        if method in self._refusals:
            status, code = self._refusals[method]
            return status, {"error": code, "error_description": f"stub refused: {code}"}
        if method.startswith("catalog.") and not self.catalog_module:
            if self.catalog_error == "insufficient_scope":
                return 403, answer("error_insufficient_scope.json")
            return 404, answer("error_method_not_found.json")
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 404, answer("error_method_not_found.json")
        return handler(params)

    def _batch(self, params: dict) -> tuple[int, dict]:
        commands = params.get("cmd") or {}
        if len(commands) > BATCH_LIMIT:
            return 400, {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
        parts = {"result": {}, "result_error": {}, "result_total": {}, "result_next": {}, "result_time": {}}
        methods = []
        for key, command in commands.items():
            method, _, query = command.partition("?")
            methods.append(method)
            _status, body = self._method(method, php_query(query))
            if "error" in body:
                parts["result_error"][key] = {"error": body["error"], "error_description": body["error_description"]}
                continue
            parts["result"][key] = body["result"]
            parts["result_time"][key] = body["time"]
            if "total" in body:
                parts["result_total"][key] = body["total"]
            if "next" in body:
                parts["result_next"][key] = body["next"]
        self.batches.append(methods)
        # PHP encodes an empty array as [].
        return 200, {"result": {name: value or [] for name, value in parts.items()}, "time": self._time()}

    def _catalog_catalog_list(self, params):
        return 200, answer("catalog_catalog_list.json")

    def _catalog_priceType_list(self, params):
        return 200, answer("catalog_price_type_list.json")

    def _catalog_section_list(self, params):
        if str((params.get("filter") or {}).get("iblockId")) != str(IBLOCK_ID):
            return 400, {"error": 0, "error_description": "Required fields: iblockId"}
        rows = [
            {**SECTION, "id": section_id, "name": s["name"], "iblockSectionId": s["parent"], "sort": s["sort"]}
            for section_id, s in sorted(self.sections.items())
        ]
        return self._page(rows, params, "sections")

    def _catalog_product_list(self, params):
        select = params.get("select") or []
        filters = params.get("filter") or {}
        if "id" not in select or "iblockId" not in select:
            return 400, {"error": 0, "error_description": "Required select fields: id, iblockId"}
        if str(filters.get("iblockId")) != str(IBLOCK_ID):
            return 400, {"error": 0, "error_description": "Required filter fields: iblockId"}
        found = [
            (product_id, p)
            for product_id, p in sorted(self.products.items())
            if "active" not in filters or p["active"] == filters["active"]
        ]
        start = int(params.get("start") or 0)
        rows = [self._product_row(product_id, p, select) for product_id, p in found[start : start + PAGE]]
        return self._page(rows, params, "products", start=start, total=len(found))

    @staticmethod
    def _product_row(product_id: int, p: dict, select: list[str]) -> dict:
        row = {
            **PRODUCT,
            "id": product_id,
            "iblockId": IBLOCK_ID,
            "name": p["name"],
            "active": p["active"],
            "available": p["available"],
            "quantity": p["quantity"],
            "iblockSectionId": p["section"],
            "sort": p["sort"],
            "previewText": None,
            "detailText": None,
            "detailTextType": "text",
        }
        return {key: value for key, value in row.items() if key in select}

    def _catalog_price_list(self, params):
        filters = params.get("filter") or {}
        wanted = {int(v) for v in _as_list(filters.get("@productId", []))}
        group = str(filters.get("catalogGroupId", BASE_PRICE_TYPE))
        rows = [
            {
                **PRICE,
                "productId": product_id,
                "price": self.products[product_id]["price"],
                "catalogGroupId": BASE_PRICE_TYPE,
            }
            for product_id in sorted(wanted & self.products.keys())
            if self.products[product_id]["price"] is not None and group == str(BASE_PRICE_TYPE)
        ]
        return self._page(rows, params, "prices")

    def _catalog_storeproduct_list(self, params):
        filters = params.get("filter") or {}
        wanted = {int(v) for v in _as_list(filters.get("@productId", []))}
        stores = {int(v) for v in _as_list(filters["@storeId"])} if "@storeId" in filters else None
        rows = [
            {**STOCK, "productId": product_id, "storeId": store_id, "amount": amount}
            for product_id in sorted(wanted & self.products.keys())
            for store_id, amount in sorted(self.products[product_id]["stock"].items())
            if stores is None or store_id in stores
        ]
        return self._page(rows, params, "storeProducts")

    def _crm_product_list(self, params):
        filters = params.get("filter") or {}
        rows = [
            {
                **CRM_PRODUCT,
                "ID": str(product_id),
                "NAME": p["name"],
                "PRICE": None if p["price"] is None else f"{p['price']:.2f}",
                "SECTION_ID": None if p["section"] is None else str(p["section"]),
                "DESCRIPTION": None,
                "DESCRIPTION_TYPE": "text",
                "SORT": str(p["sort"]),
            }
            for product_id, p in sorted(self.products.items())
            if filters.get("ACTIVE", p["active"]) == p["active"]
        ]
        return self._page(rows, params, None)

    def _crm_productsection_list(self, params):
        rows = [
            {
                **CRM_SECTION,
                "ID": str(section_id),
                "NAME": s["name"],
                "SECTION_ID": None if s["parent"] is None else str(s["parent"]),
            }
            for section_id, s in sorted(self.sections.items())
        ]
        return self._page(rows, params, None)

    def _page(
        self, rows: list[dict], params: dict, key: str | None, *, start: int | None = None, total: int | None = None
    ) -> tuple[int, dict]:
        """A list method's answer: the page at `start` of `rows`, or `rows` as that page of `total`."""
        if total is None:
            start = int(params.get("start") or 0)
            rows, total = rows[start : start + PAGE], len(rows)
        body = {"result": {key: rows} if key else rows, "total": total, "time": self._time()}
        if start + PAGE < total:
            body["next"] = start + PAGE
        return 200, body

    @staticmethod
    def _time() -> dict:
        now = time.time()
        return {"start": now, "finish": now, "duration": 0.0, "processing": 0.0, "operating": 0}

    # HTTP ------------------------------------------------------------------------

    def _handler_class(self):
        portal = self
        prefix = f"/rest/1/{SECRET}/"

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith(prefix) or not self.path.endswith(".json"):
                    self._send(401, {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"})
                    return
                method = self.path[len(prefix) :].removesuffix(".json")
                status, body = portal.answer(method, json.loads(raw or b"{}"))
                self._send(status, body)

            def _send(self, status: int, body: dict) -> None:
                payload = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args):
                pass  # keep test output quiet

        return Handler
