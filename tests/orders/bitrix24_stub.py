"""A Bitrix24 portal's CRM behind `responses`, keeping what it is sent: contacts, deals, product rows, comments.

It answers in the shapes recorded in tests/integrations/bitrix24/fixtures/crm/
(see NOTES.md there), so a test can ask what Bitrix24 would hold afterwards
("exactly one deal"), and inject the faults that make exactly-once hard:

- `timeout_after(method)`: the call is carried out (the deal is committed), then
  the answer is lost: the client sees a read timeout;
- `timeout_before(method)`: the connection fails, nothing is done;
- `refuse(method, code, status)`: Bitrix24 answers an error (e.g. OPERATION_TIME_LIMIT);
- `slow(method, seconds)`: the answer takes that long to come back after the
  call was carried out, so two workers can both read "no deal yet".

Thread-safe: responses patches the HTTP adapter for every thread.
"""

import itertools
import json
import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

import requests
import responses

MSK = timezone(timedelta(hours=3))
METHODS = [
    "crm.duplicate.findbycomm",
    "crm.contact.add",
    "crm.deal.add",
    "crm.deal.get",
    "crm.deal.update",
    "crm.deal.list",
    "crm.item.productrow.set",
    "crm.timeline.comment.add",
    "crm.timeline.comment.list",
]
PAGE = 50


def _now() -> str:
    return datetime.now(MSK).isoformat(timespec="seconds")


def _digits(phone) -> str:
    return "".join(c for c in str(phone) if c.isdigit())


class FakeBitrix24:
    def __init__(self, mock: responses.RequestsMock, endpoint: str):
        self.endpoint = endpoint
        self.lock = threading.Lock()
        self.contacts: dict[str, dict] = {}
        self.deals: dict[str, dict] = {}
        self.rows: dict[str, list] = {}
        self.comments: dict[str, dict] = {}
        self.calls: list[tuple[str, dict]] = []
        self._faults: dict[str, deque] = defaultdict(deque)
        self._slow: dict[str, float] = {}
        self._ids = {"contact": itertools.count(46), "deal": itertools.count(394), "comment": itertools.count(999)}
        for method in METHODS:
            mock.add_callback(responses.POST, f"{endpoint}{method}.json", callback=self._handle)

    # Faults -----------------------------------------------------------------

    def timeout_after(self, method: str, times: int = 1) -> None:
        self._faults[method].extend([("after", None)] * times)

    def timeout_before(self, method: str, times: int = 1) -> None:
        self._faults[method].extend([("before", None)] * times)

    def refuse(
        self, method: str, code: str = "OPERATION_TIME_LIMIT", status: int = 503, *, times: int = 1, skip: int = 0
    ) -> None:
        """The next `times` calls (after `skip` that go through) answer an error."""
        self._faults[method].extend([(None, None)] * skip + [("refuse", (code, status))] * times)

    def slow(self, method: str, seconds: float) -> None:
        self._slow[method] = seconds

    # What the portal holds ----------------------------------------------------

    def called(self, method: str) -> int:
        return sum(1 for name, _params in self.calls if name == method)

    def deal(self, deal_id) -> dict:
        return self.deals[str(deal_id)]

    def add_contact(self, *, name: str, phone: str) -> str:
        """A contact staff made on the portal."""
        with self.lock:
            _status, body = self._contact_add({"fields": {"NAME": name, "PHONE": [{"VALUE": phone}]}})
        return str(body["result"])

    def add_deal(self, **fields) -> str:
        """A deal made on the portal by someone else (e.g. Open Lines for a chat)."""
        with self.lock:
            _status, body = self._deal_add({"fields": fields})
        return str(body["result"])

    def move(self, deal_id, stage_id: str, *, semantic: str = "P", comments: str | None = None) -> None:
        """Staff drag the deal to another stage."""
        with self.lock:
            deal = self.deals[str(deal_id)]
            deal.update(STAGE_ID=stage_id, STAGE_SEMANTIC_ID=semantic, DATE_MODIFY=_now())
            deal["CLOSED"] = "Y" if semantic in ("S", "F") else "N"
            if comments is not None:
                deal["COMMENTS"] = comments

    # The HTTP side -----------------------------------------------------------

    def _handle(self, request):
        method = request.url.rsplit("/", 1)[1].removesuffix(".json")
        params = json.loads(request.body or b"{}")
        with self.lock:
            self.calls.append((method, params))
            kind, extra = self._faults[method].popleft() if self._faults[method] else (None, None)
        if kind == "before":
            raise requests.ConnectTimeout("stub: no connection")
        if kind == "refuse":
            code, status = extra
            body = {"error": code, "error_description": f"stub refused: {code}"}
            if code == "OPERATION_TIME_LIMIT":
                body["time"] = {"operating_reset_at": time.time() + 600}
            return status, {"Content-Type": "application/json"}, json.dumps(body)
        with self.lock:
            status, body = getattr(self, "_" + method.removeprefix("crm.").replace(".", "_"))(params)
        if method in self._slow:
            # Done, and the answer on its way: what it says is already true no longer.
            time.sleep(self._slow[method])
        if kind == "after":
            raise requests.ReadTimeout("stub: done, then the answer was lost")
        return status, {"Content-Type": "application/json"}, json.dumps(body, ensure_ascii=False)

    @staticmethod
    def _ok(result, **extra):
        return 200, {"result": result, **extra, "time": {"start": time.time(), "operating": 0}}

    @staticmethod
    def _error(description: str, code: str = "", status: int = 400):
        return status, {"error": code, "error_description": description}

    def _duplicate_findbycomm(self, params):
        if params.get("type") != "PHONE" or not params.get("values"):
            return self._error("Parameter 'type' is required.", "Communication type is not defined")
        wanted = {_digits(v) for v in params["values"]}
        found = [
            int(contact_id)
            for contact_id, contact in self.contacts.items()
            if any(_digits(p.get("VALUE")) in wanted for p in contact.get("PHONE", []))
        ]
        return self._ok({"CONTACT": sorted(found)} if found else [])

    def _contact_add(self, params):
        fields = params.get("fields")
        if not isinstance(fields, dict):
            return self._error("Parameter 'fields' must be array.")
        contact_id = str(next(self._ids["contact"]))
        self.contacts[contact_id] = {"ID": contact_id, **fields}
        return self._ok(int(contact_id))

    def _deal_add(self, params):
        fields = params.get("fields")
        if not isinstance(fields, dict):
            return self._error("Parameter 'fields' must be array.")
        deal_id = str(next(self._ids["deal"]))
        now = _now()
        deal = {
            "ID": deal_id,
            "STAGE_ID": "NEW",
            "STAGE_SEMANTIC_ID": "P",
            "CATEGORY_ID": "0",
            "CLOSED": "N",
            "COMMENTS": "",
            "ORIGINATOR_ID": None,
            "ORIGIN_ID": None,
            "DATE_CREATE": now,
            "DATE_MODIFY": now,
        }
        deal.update({k: self._stored(v) for k, v in fields.items() if k != "CONTACT_IDS"})
        if fields.get("CONTACT_IDS"):
            deal["CONTACT_ID"] = str(fields["CONTACT_IDS"][0])
        self.deals[deal_id] = deal
        return self._ok(int(deal_id))

    def _deal_get(self, params):
        deal = self.deals.get(str(params.get("id")))
        if deal is None:
            return self._error("Not found")
        return self._ok(dict(deal))

    def _deal_update(self, params):
        deal = self.deals.get(str(params.get("id")))
        if deal is None:
            return self._error("Not found")
        fields = params.get("fields") or {}
        deal.update({k: self._stored(v) for k, v in fields.items() if k != "CONTACT_IDS"})
        if fields.get("CONTACT_IDS"):
            deal["CONTACT_ID"] = str(fields["CONTACT_IDS"][0])
        deal["DATE_MODIFY"] = _now()
        return self._ok(True)

    def _deal_list(self, params):
        found = [deal for deal in self.deals.values() if self._matches(deal, params.get("filter") or {})]
        found.sort(key=lambda deal: int(deal["ID"]))
        start = int(params.get("start") or 0)
        page = found[start : start + PAGE]
        select = params.get("select") or []
        if select and "*" not in select:
            page = [{k: v for k, v in deal.items() if k in select} for deal in page]
        extra = {"total": len(found)}
        if start + PAGE < len(found):
            extra["next"] = start + PAGE
        return self._ok(page, **extra)

    def _item_productrow_set(self, params):
        deal_id = str(params.get("ownerId"))
        if params.get("ownerType") != "D" or deal_id not in self.deals:
            return self._error("Owner was not found", "OWNER_NOT_FOUND")
        rows = [
            {"id": 17654 + i, "ownerId": int(deal_id), "ownerType": "D", "productId": 0, **row}
            for i, row in enumerate(params.get("productRows") or [])
        ]
        self.rows[deal_id] = rows
        self.deals[deal_id]["OPPORTUNITY"] = f"{sum(r['price'] * r['quantity'] for r in rows):.2f}"
        self.deals[deal_id]["DATE_MODIFY"] = _now()
        return self._ok({"productRows": rows})

    def _timeline_comment_add(self, params):
        fields = params.get("fields")
        if not isinstance(fields, dict) or not fields.get("ENTITY_ID") or not fields.get("ENTITY_TYPE"):
            return self._error("Parameter 'fields' must be array.")
        comment_id = str(next(self._ids["comment"]))
        self.comments[comment_id] = {"ID": comment_id, "CREATED": _now(), **fields}
        return self._ok(int(comment_id))

    def _timeline_comment_list(self, params):
        filters = params.get("filter") or {}
        found = [
            {"ID": c["ID"], "COMMENT": c["COMMENT"], "CREATED": c["CREATED"]}
            for c in self.comments.values()
            if str(c["ENTITY_ID"]) == str(filters.get("ENTITY_ID")) and c["ENTITY_TYPE"] == filters.get("ENTITY_TYPE")
        ]
        return self._ok(found, total=len(found))

    @staticmethod
    def _stored(value):
        # Bitrix24 gives entity fields back as strings.
        return value if value is None or isinstance(value, str | list | dict) else str(value)

    @staticmethod
    def _matches(deal: dict, filters: dict) -> bool:
        for key, wanted in filters.items():
            if key.startswith(">"):
                value = deal.get(key[1:])
                if not value or datetime.fromisoformat(value) <= datetime.fromisoformat(str(wanted)):
                    return False
            elif str(deal.get(key.lstrip("="))) != str(wanted):
                return False
        return True
