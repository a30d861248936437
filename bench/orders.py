"""500 concurrent order dialogs driven through the worker, and their orders pushed to Bitrix24 exactly once.

    .venv/bin/python bench/orders.py

Database `storebot_bench_orders` on the local PostgreSQL by default
(`--database-url`; DATABASE_URL in the environment wins), created and
migrated; the orders, customers, conversations, task queue and one-off
schedules of an earlier run are emptied at the start. The demo catalog
(`catalog.demo.load_demo_store()`) is loaded again and the stock of the
products the dialogs order raised to 100,000. Retrieval mode: no LLM
(AssistantSettings provider "", LLM_PROVIDER empty); every channel sends
through `LocmemSender`.

The dialogs: `--dialogs` (500) Telegram conversations `bench-order-{i}`, each
a seeded script of «хочу заказать икру кеты 500 г, 2 шт» → «добавь ещё
креветки тигровые» → (some: «добавь икру горбуши» → a choice → «2»; some:
«убери креветки») → «оформляем» → (some: a question mid-checkout) → a phone
of its own in one of several formats → delivery and an address, or pickup →
a time → payment → a comment or «нет» → «подтверждаю». A message is recorded
with `record_incoming` as a channel's webhook would, and answered by
`integrations.tasks.answer(message.pk)`, the worker's task, in a pool of
`--workers` threads (2 by default, as many as the qcluster's Q_WORKERS
default; more threads than cores in one process share its GIL, and each call
then waits for the others). All dialogs are in progress at once: a dialog's next
message is recorded only once its previous reply exists, and queued at the
back. Each `answer()` call is timed (time.perf_counter; its thread's CPU time
and SQL statements alongside), by step and overall, against p95 < 100 ms.

The pushes: B24_CRM_ORDERS on, B24_WEBHOOK_URL at a Bitrix24 stand-in of this
script (a ThreadingHTTPServer on 127.0.0.1 in a process of its own, stateful,
in the shapes of tests/orders/bitrix24_stub.py) that makes a share of the
crm.deal.add calls lose their answer after the deal is made (the answer held
back past the client's B24_TIMEOUT_S, or the connection dropped) and refuses
another share with 503 QUERY_LIMIT_EXCEEDED. A confirmation queues
`orders.tasks.push_order` on commit (django-q's ORM broker); a real `manage.py
qcluster` subprocess runs the queue and the retries its Schedule rows hold.
For a share of the orders two more threads of this process push the order at
the moment it is made, racing each other and the cluster's task; once every
order is pushed, a share is pushed again. Checks: one order per confirmed
dialog, each with its deal; one deal per order uid at the stand-in and no
other; one contact per customer and one transcript comment per deal; one bot
reply per customer message, sent; every reply what the dialog expects.
Exits 1 when the target is missed or a check fails.
"""

import argparse
import gc
import itertools
import json
import logging
import multiprocessing
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import SqlMeter, ensure_database  # noqa: E402
from bench.search import _load, percentile  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storebot_bench_orders"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PREFIX = "bench-order-"
CHANNEL = "telegram"
TARGET_P95_MS = 100.0
STOCK = 100_000
WEBHOOK_PATH = "/rest/1/benchsecret/"

# --- the dialogs ----------------------------------------------------------------------

STEPS = [
    "add",
    "add more",
    "ambiguous",
    "choice",
    "remove",
    "checkout",
    "question",
    "phone",
    "fulfilment",
    "address",
    "time",
    "payment",
    "comment → summary",
    "confirm",
]

# (text, the product added, how many); {n} a number, {word} the same in words.
FIRST_ITEMS = [
    ("хочу заказать икру кеты 500 г, {n} шт", "Икра кеты зернистая, 500 г"),
    ("закажу {n} банки икры нерки 100 г", "Икра нерки, 100 г"),
    ("положите в корзину {word} упаковки икры форели 250 г", "Икра форели, 250 г"),
    ("беру икру кеты 100 г x{n}", "Икра кеты зернистая, 100 г"),
    ("Здравствуйте! Хочу заказать икру нерки 250 г, {n} шт", "Икра нерки, 250 г"),
]
NUMBER_WORDS = {2: "две", 3: "три", 4: "четыре"}
MORE_ITEMS = [
    ("добавь ещё креветки тигровые", "Креветки тигровые 16/20 в/м"),
    ("добавь креветки северные", "Креветки северные 90/120 в/м"),
    ("и ещё добавьте креветки коктейльные", "Креветки коктейльные очищенные"),
]
AMBIGUOUS = ["добавь икру горбуши", "добавьте ещё икру горбуши"]
GORBUSHA = ["Икра горбуши зернистая, 100 г", "Икра горбуши зернистая, 250 г", "Икра горбуши зернистая, 500 г"]
CHOICES = [("1", 0), ("2", 1), ("второй", 1), ("третий", 2), ("давайте первый", 0), (GORBUSHA[2], 2)]
REMOVALS = ["убери креветки", "удали креветки", "убери креветки из корзины"]
CHECKOUTS = ["оформляем", "Оформить заказ", "всё, оформляем", "оформите заказ, пожалуйста"]
# A question mid-checkout: answered, then the step's question asked again (its words below).
QUESTIONS = {
    "phone": ["а сколько стоит доставка?", "а вы работаете в выходные?", "у вас есть самовывоз?"],
    "time": ["а в какое время вы доставляете?", "а курьер привезёт сегодня?"],
    "payment": ["как оплатить?", "какие есть способы оплаты?", "а оплатить можно при получении?"],
}
REMINDERS = {
    "phone": "Напишите его, например: +7 900 123-45-67.",
    "time": "Когда вам удобно получить заказ?",
    "payment": "Как удобнее оплатить: онлайн, картой при получении или наличными?",
}
PHONE_FORMATS = [
    "+7 {a} {b}-{c}-{d}",
    "8 ({a}) {b}-{c}-{d}",
    "8{a}{b}{c}{d}",
    "+7-{a}-{b}-{c}{d}",
    "{a} {b} {c} {d}",
    "+7{a}{b}{c}{d}",
    "мой номер +7 ({a}) {b}-{c}-{d}",
]
DELIVERIES = ["доставка", "Доставка", "курьером", "доставка, пожалуйста"]
PICKUPS = ["самовывоз", "Самовывоз", "заберу сам"]
ADDRESSES = [
    "Москва, ул. Лесная, д. {h}, кв. {f}",
    "г. Москва, Ленинский проспект, д. {h}, кв. {f}",
    "Москва, Профсоюзная ул., дом {h}, квартира {f}",
    "Химки, ул. Мира, д. {h}, кв. {f}",
    "Москва, Тверская улица {h}, кв {f}",
]
TIMES = ["завтра после 18", "сегодня вечером", "в субботу с 10 до 14", "Как можно скорее", "послезавтра утром"]
PAYMENTS = [("наличными", "cash"), ("картой", "card"), ("онлайн", "online"), ("Картой при получении", "card")]
COMMENTS = [
    ("нет", ""),
    ("Без комментария", ""),
    ("нет, спасибо", ""),
    ("позвоните за час, пожалуйста", "позвоните за час, пожалуйста"),
]
CONFIRMS = ["подтверждаю", "Подтверждаю", "да, всё верно", "да"]


@dataclass
class Turn:
    step: str
    text: str
    expect: tuple[str, ...]  # what the reply must contain


@dataclass
class Dialog:
    index: int
    turns: list[Turn]
    phone: str  # E.164, as the customer should be stored
    payment: str
    fulfilment: str
    comment: str
    race: bool = False  # pushed by two threads of this process the moment the order is made
    # Filled in as it runs:
    at: int = 0
    conversation_id: int | None = None
    message_ids: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    confirmed: bool = False
    stalled: bool = False


def build_dialogs(count: int, rng: random.Random, *, race_share: float) -> list[Dialog]:
    dialogs = []
    for i in range(count):
        turns = []
        template, first = rng.choice(FIRST_ITEMS)
        n = rng.choice([1, 2, 2, 3]) if "{n}" in template else rng.choice([2, 3, 4])
        if "банки" in template:
            n = rng.choice([2, 3, 4])
        text = template.format(n=n, word=NUMBER_WORDS.get(n, "две"))
        turns.append(Turn("add", text, (f"Добавил в корзину: {first} × {n}",)))
        text, more = rng.choice(MORE_ITEMS)
        turns.append(Turn("add more", text, (f"Добавил в корзину: {more} × 1",)))
        if rng.random() < 0.3:
            turns.append(Turn("ambiguous", rng.choice(AMBIGUOUS), ("Уточните, какой именно", GORBUSHA[0])))
            text, pick = rng.choice(CHOICES)
            turns.append(Turn("choice", text, (f"Добавил в корзину: {GORBUSHA[pick]} × 1",)))
        if rng.random() < 0.25:
            turns.append(Turn("remove", rng.choice(REMOVALS), (f"Убрал: {more}",)))
        turns.append(Turn("checkout", rng.choice(CHECKOUTS), ("Для заказа нужен номер телефона",)))
        asked_at = rng.choice(list(QUESTIONS)) if rng.random() < 0.3 else ""

        if asked_at == "phone":
            turns.append(Turn("question", rng.choice(QUESTIONS["phone"]), (REMINDERS["phone"],)))
        digits = f"{9160000000 + i:010d}"
        a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
        turns.append(
            Turn("phone", rng.choice(PHONE_FORMATS).format(a=a, b=b, c=c, d=d), ("Доставка курьером или самовывоз?",))
        )
        if rng.random() < 0.15:
            fulfilment = "pickup"
            turns.append(Turn("fulfilment", rng.choice(PICKUPS), ("Когда вам удобно получить заказ?",)))
        else:
            fulfilment = "delivery"
            turns.append(Turn("fulfilment", rng.choice(DELIVERIES), ("Напишите адрес доставки",)))
            address = rng.choice(ADDRESSES).format(h=rng.randint(1, 120), f=rng.randint(1, 300))
            turns.append(Turn("address", address, ("Когда вам удобно получить заказ?",)))
        if asked_at == "time":
            turns.append(Turn("question", rng.choice(QUESTIONS["time"]), (REMINDERS["time"],)))
        turns.append(Turn("time", rng.choice(TIMES), ("Как удобнее оплатить",)))
        if asked_at == "payment":
            turns.append(Turn("question", rng.choice(QUESTIONS["payment"]), (REMINDERS["payment"],)))
        text, payment = rng.choice(PAYMENTS)
        turns.append(Turn("payment", text, ("Есть комментарий к заказу?",)))
        text, comment = rng.choice(COMMENTS)
        expect = ("Ваш заказ:", "Итого:", "Всё верно?", f"Телефон: +7 {a} {b}-{c}-{d}")
        turns.append(Turn("comment → summary", text, expect))
        turns.append(Turn("confirm", rng.choice(CONFIRMS), ("оформлен на",)))
        dialogs.append(
            Dialog(
                index=i,
                turns=turns,
                phone="+7" + digits,
                payment=payment,
                fulfilment=fulfilment,
                comment=comment,
                race=rng.random() < race_share,
            )
        )
    return dialogs


def products_ordered() -> list[str]:
    return sorted({t for _text, t in FIRST_ITEMS} | {t for _text, t in MORE_ITEMS} | set(GORBUSHA))


# --- the Bitrix24 stand-in -------------------------------------------------------------------


class FakeCrm:
    """A portal's CRM as orders/push.py uses it, in the shapes of tests/orders/bitrix24_stub.py, with faults.

    crm.deal.add: a `lost` share is carried out and its answer then lost (half
    held back past the client's timeout, half with the connection dropped); a
    `refused` share answers 503 QUERY_LIMIT_EXCEEDED and makes nothing.
    """

    METHODS = (
        "crm.duplicate.findbycomm",
        "crm.contact.add",
        "crm.deal.add",
        "crm.deal.get",
        "crm.deal.update",
        "crm.deal.list",
        "crm.item.productrow.set",
        "crm.timeline.comment.add",
        "crm.timeline.comment.list",
    )
    PAGE = 50

    def __init__(self, *, seed: int, lost: float, refused: float, delay_s: float):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.lost, self.refused, self.delay_s = lost, refused, delay_s
        self.contacts: dict[str, dict] = {}
        self.deals: dict[str, dict] = {}
        self.rows: dict[str, list] = {}
        self.comments: dict[str, dict] = {}
        self.calls: Counter = Counter()
        self.faults: Counter = Counter()
        self.unknown: Counter = Counter()
        self.next_id = {"contact": 46, "deal": 394, "comment": 999}

    def _new_id(self, kind: str) -> str:
        value = self.next_id[kind]
        self.next_id[kind] += 1
        return str(value)

    def handle(self, method: str, params: dict) -> tuple[str, int, dict]:
        """(fault, status, body): fault "" for a plain answer, "refused", "delayed" or "dropped"."""
        with self.lock:
            self.calls[method] += 1
            if method not in self.METHODS:
                self.unknown[method] += 1
                return "", 400, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
            fault = ""
            if method == "crm.deal.add":
                roll = self.rng.random()
                if roll < self.refused:
                    fault = "refused"
                elif roll < self.refused + self.lost:
                    fault = "delayed" if roll < self.refused + self.lost / 2 else "dropped"
            if fault:
                self.faults[fault] += 1
            if fault == "refused":
                return fault, 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
            status, body = getattr(self, "_" + method.removeprefix("crm.").replace(".", "_"))(params)
            return fault, status, body

    def state(self) -> dict:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "faults": dict(self.faults),
                "unknown": dict(self.unknown),
                "deals": [
                    {k: d.get(k) for k in ("ID", "ORIGIN_ID", "ORIGINATOR_ID", "CONTACT_ID", "OPPORTUNITY")}
                    for d in self.deals.values()
                ],
                "contacts": [
                    {"ID": c["ID"], "ORIGIN_ID": c.get("ORIGIN_ID"), "PHONE": [p.get("VALUE") for p in c["PHONE"]]}
                    for c in self.contacts.values()
                ],
                "comments": [
                    {"ID": c["ID"], "ENTITY_ID": str(c["ENTITY_ID"]), "marker": c["COMMENT"].rsplit("\n", 1)[-1]}
                    for c in self.comments.values()
                ],
                "rows": {deal_id: len(rows) for deal_id, rows in self.rows.items()},
            }

    # The methods, as the stub answers them --------------------------------------------

    @staticmethod
    def _now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S+03:00", time.gmtime(time.time() + 3 * 3600))

    @staticmethod
    def _ok(result, **extra):
        return 200, {"result": result, **extra, "time": {"start": time.time(), "operating": 0}}

    @staticmethod
    def _error(description: str, code: str = "", status: int = 400):
        return status, {"error": code, "error_description": description}

    @staticmethod
    def _digits(phone) -> str:
        return "".join(c for c in str(phone) if c.isdigit())

    @staticmethod
    def _stored(value):
        return value if value is None or isinstance(value, str | list | dict) else str(value)

    def _duplicate_findbycomm(self, params):
        if params.get("type") != "PHONE" or not params.get("values"):
            return self._error("Parameter 'type' is required.")
        wanted = {self._digits(v) for v in params["values"]}
        found = [
            int(contact_id)
            for contact_id, contact in self.contacts.items()
            if any(self._digits(p.get("VALUE")) in wanted for p in contact.get("PHONE", []))
        ]
        return self._ok({"CONTACT": sorted(found)} if found else [])

    def _contact_add(self, params):
        fields = params.get("fields")
        if not isinstance(fields, dict):
            return self._error("Parameter 'fields' must be array.")
        contact_id = self._new_id("contact")
        self.contacts[contact_id] = {"ID": contact_id, "PHONE": [], **fields}
        return self._ok(int(contact_id))

    def _deal_add(self, params):
        fields = params.get("fields")
        if not isinstance(fields, dict):
            return self._error("Parameter 'fields' must be array.")
        deal_id = self._new_id("deal")
        now = self._now()
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
        return self._ok(dict(deal)) if deal is not None else self._error("Not found")

    def _deal_update(self, params):
        deal = self.deals.get(str(params.get("id")))
        if deal is None:
            return self._error("Not found")
        fields = params.get("fields") or {}
        deal.update({k: self._stored(v) for k, v in fields.items() if k != "CONTACT_IDS"})
        deal["DATE_MODIFY"] = self._now()
        return self._ok(True)

    def _deal_list(self, params):
        found = [deal for deal in self.deals.values() if self._matches(deal, params.get("filter") or {})]
        found.sort(key=lambda deal: int(deal["ID"]))
        start = int(params.get("start") or 0)
        page = found[start : start + self.PAGE]
        select = params.get("select") or []
        if select and "*" not in select:
            page = [{k: v for k, v in deal.items() if k in select} for deal in page]
        extra = {"total": len(found)}
        if start + self.PAGE < len(found):
            extra["next"] = start + self.PAGE
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
        self.deals[deal_id]["DATE_MODIFY"] = self._now()
        return self._ok({"productRows": rows})

    def _timeline_comment_add(self, params):
        fields = params.get("fields")
        if not isinstance(fields, dict) or not fields.get("ENTITY_ID") or not fields.get("ENTITY_TYPE"):
            return self._error("Parameter 'fields' must be array.")
        comment_id = self._new_id("comment")
        self.comments[comment_id] = {"ID": comment_id, "CREATED": self._now(), **fields}
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
    def _matches(deal: dict, filters: dict) -> bool:
        from datetime import datetime

        for key, wanted in filters.items():
            if key.startswith(">"):
                value = deal.get(key[1:])
                if not value or datetime.fromisoformat(value) <= datetime.fromisoformat(str(wanted)):
                    return False
            elif str(deal.get(key.lstrip("="))) != str(wanted):
                return False
        return True


class _CrmHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer's header and body go out in two writes: without this, each call waits out a delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_bench/state":
            self._answer(200, self.server.crm.state())
        else:
            self._answer(404, {"error": "NOT_FOUND"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not (self.path.startswith(WEBHOOK_PATH) and self.path.endswith(".json")):
            self._answer(401, {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"})
            return
        method = self.path[len(WEBHOOK_PATH) : -len(".json")]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            self._answer(400, {"error": "INVALID_REQUEST", "error_description": "not JSON"})
            return
        fault, status, answer = self.server.crm.handle(method, params)
        if fault == "dropped":
            # Done, and then the connection is gone before a byte of the answer.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "delayed":
            time.sleep(self.server.crm.delay_s)  # past the client's timeout: it has given up by now
            self.close_connection = True
        try:
            self._answer(status, answer)
        except OSError:
            pass


def _serve_crm(conn, seed: int, lost: float, refused: float, delay_s: float) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CrmHandler)
    server.daemon_threads = True
    server.request_queue_size = 256
    server.crm = FakeCrm(seed=seed, lost=lost, refused=refused, delay_s=delay_s)
    conn.send(server.server_address[1])
    conn.close()
    server.serve_forever(poll_interval=0.2)


def start_crm(seed: int, lost: float, refused: float, delay_s: float) -> tuple[multiprocessing.Process, int]:
    """The stand-in in a process of its own (forked before Django is set up): it does not take this process's GIL."""
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve_crm, args=(child, seed, lost, refused, delay_s), daemon=True
    )
    process.start()
    port = parent.recv()
    return process, port


def crm_state(port: int) -> dict:
    with urlopen(f"http://127.0.0.1:{port}/_bench/state", timeout=10) as response:
        return json.loads(response.read())


# --- measuring -----------------------------------------------------------------------------


def statement(sql: str) -> str:
    """A statement in a few words: «SELECT catalog_product FOR UPDATE»."""
    words = sql.replace('"', "").split()
    verb = words[0] if words else ""
    if verb == "INSERT":
        table = words[2]
    elif verb == "UPDATE":
        table = words[1]
    else:
        tables = [b for a, b in itertools.pairwise(words) if a == "FROM" and b.replace("_", "").isalpha()]
        table = tables[0] if tables else " ".join(words[1:4])
    return f"{verb} {table}" + (" FOR UPDATE" if "FOR UPDATE" in sql else "")


@dataclass
class Call:
    dialog: int
    step: str
    ms: float
    cpu_ms: float  # the thread's own CPU time: the rest is waiting (the GIL, PostgreSQL, locks)
    sql_count: int
    sql_ms: float
    outcome: str
    nth: int  # the how-manyth call of its thread
    slowest_sql: tuple[float, str] = (0.0, "")


class GcMeter:
    """gc.callbacks: how many collections ran, and how long each full one (generation 2) stopped the process."""

    def __init__(self):
        self.count = 0
        self.full: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.count += 1
        if info["generation"] == 2:
            self.full.append((time.perf_counter() - self._started) * 1000)


class LogCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lock_ = threading.Lock()
        self.records: Counter = Counter()
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        key = f"{record.levelname} {record.name}: {' '.join(message.split()[:6])}"
        with self.lock_:
            self.records[key] += 1
            self.examples.setdefault(key, message)


def stats_row(name: str, calls: list[Call]) -> str:
    ms = [c.ms for c in calls]
    cpu = [c.cpu_ms for c in calls]
    return (
        f"  {name:<20}{len(ms):>6}{percentile(ms, 50):>8.1f}{percentile(ms, 95):>8.1f}{percentile(ms, 99):>8.1f}"
        f"{max(ms):>8.1f}{statistics.mean(ms):>8.1f}{percentile(cpu, 50):>8.1f}{percentile(cpu, 95):>8.1f}"
        f"{statistics.mean(c.sql_count for c in calls):>7.1f}{statistics.mean(c.sql_ms for c in calls):>8.1f}"
    )


# --- the run ---------------------------------------------------------------------------------


def flush() -> str:
    """What an earlier run left: orders, customers, conversations, the task queue and one-off schedules."""
    from django.apps import apps
    from django.db import connection
    from django_q.models import OrmQ, Schedule, Task

    models = [m for m in apps.get_app_config("orders").get_models() if m.__name__ not in ("OrderStageText",)]
    models = [m for m in models if m.__name__ != "NumberSequence"]
    models += [m for m in apps.get_app_config("conversations").get_models() if m.__name__ != "ChannelAccount"]
    models += [OrmQ, Task]
    tables = sorted({m._meta.db_table for m in models})
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(connection.ops.quote_name(t) for t in tables)} CASCADE")
    once, _ = Schedule.objects.filter(schedule_type=Schedule.ONCE).delete()
    return f"{len(tables)} tables emptied, {once} one-off schedules deleted"


def run_dialogs(dialogs: list[Dialog], workers: int, racers: list, log) -> tuple[list[Call], float]:
    from django.db import connection

    from conversations.models import Message
    from conversations.services import get_or_create_conversation, record_incoming
    from integrations.tasks import answer
    from orders.models import Order
    from orders.tasks import push_order

    calls: list[Call] = []
    calls_lock = threading.Lock()
    pending: queue.Queue = queue.Queue()
    remaining = [len(dialogs)]
    done = threading.Event()

    def record_next(dialog: Dialog) -> None:
        conversation = _conversation(dialog)
        turn = dialog.turns[dialog.at]
        message, _ = record_incoming(
            conversation=conversation, text=turn.text, external_id=f"{dialog.index}-{dialog.at}"
        )
        dialog.message_ids.append(message.pk)
        pending.put((dialog, message.pk))

    conversations = {}

    def _conversation(dialog: Dialog):
        if dialog.index not in conversations:
            conversations[dialog.index] = get_or_create_conversation(
                channel=CHANNEL,
                external_id=f"{PREFIX}{dialog.index}",
                customer_name=f"Покупатель {dialog.index}",
                customer_external_id=f"{PREFIX}user-{dialog.index}",
            )
            dialog.conversation_id = conversations[dialog.index].pk
        return conversations[dialog.index]

    def race(order_id: int) -> None:
        barrier = threading.Barrier(2)
        results = []

        def push() -> None:
            try:
                barrier.wait()
                results.append(push_order(order_id))
            except Exception as exc:
                results.append(f"raised {type(exc).__name__}: {exc}")
            finally:
                connection.close()

        threads = [threading.Thread(target=push, name=f"race-{order_id}-{n}") for n in range(2)]
        for thread in threads:
            thread.start()
        racers.append((order_id, threads, results))

    def finish(dialog: Dialog) -> None:
        with calls_lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    def work() -> None:
        meter = SqlMeter()
        nth = 0
        try:
            with connection.execute_wrapper(meter):
                while not done.is_set():
                    try:
                        dialog, message_id = pending.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    turn = dialog.turns[dialog.at]
                    nth += 1
                    meter.reset()
                    cpu = time.thread_time()
                    start = time.perf_counter()
                    outcome = answer(message_id)
                    ms = (time.perf_counter() - start) * 1000
                    cpu_ms = (time.thread_time() - cpu) * 1000
                    sql_count, sql_ms = meter.count, meter.ms
                    reply = Message.objects.filter(in_reply_to_id=message_id, author=Message.Author.BOT).first()
                    with calls_lock:
                        calls.append(
                            Call(dialog.index, turn.step, ms, cpu_ms, sql_count, sql_ms, outcome, nth, meter.slowest)
                        )
                    if reply is None:
                        dialog.problems.append(f"{turn.step}: no reply ({outcome})")
                        dialog.stalled = True
                        finish(dialog)
                        continue
                    missing = [e for e in turn.expect if e not in reply.text]
                    if missing:
                        dialog.problems.append(f"{turn.step} {turn.text!r}: no {missing} in {reply.text[:300]!r}")
                    if turn.step == "confirm":
                        dialog.confirmed = "оформлен на" in reply.text
                        order = Order.objects.filter(confirmed_by_id=message_id).only("pk").first()
                        if dialog.race and order is not None:
                            race(order.pk)
                    dialog.at += 1
                    if dialog.at < len(dialog.turns):
                        record_next(dialog)  # the customer's next message, once the reply is there
                    else:
                        finish(dialog)
        except Exception:
            log.exception("worker thread failed")
            done.set()
            raise
        finally:
            connection.close()

    for dialog in dialogs:
        record_next(dialog)
    connection.close()
    threads = [threading.Thread(target=work, name=f"worker-{n}") for n in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return calls, time.perf_counter() - started


def start_cluster(env: dict, nice: int, logfile: Path) -> subprocess.Popen:
    with open(logfile, "ab") as log:
        return subprocess.Popen(
            ["nice", "-n", str(nice), PYTHON, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )


def stop_cluster(cluster: subprocess.Popen) -> None:
    if cluster.poll() is None:
        cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()
    try:
        os.killpg(cluster.pid, signal.SIGKILL)  # workers its master left behind: its group only
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogs", type=int, default=500)
    parser.add_argument(
        "--workers", type=int, default=2, help="threads answering messages (2, as the qcluster's Q_WORKERS default)"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="DATABASE_URL in the environment wins")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--q-workers", type=int, default=2, help="workers of the qcluster that pushes (2)")
    parser.add_argument("--cluster-nice", type=int, default=19, help="niceness of the qcluster, as `make run` (19)")
    parser.add_argument(
        "--cluster-after", action="store_true", help="start the qcluster once the dialogs are done, not before"
    )
    parser.add_argument("--lost", type=float, default=0.05, help="share of crm.deal.add whose answer is lost (0.05)")
    parser.add_argument("--refused", type=float, default=0.02, help="share of crm.deal.add refused with 503 (0.02)")
    parser.add_argument("--b24-timeout", type=float, default=1.0, help="B24_TIMEOUT_S for the bench (1.0)")
    parser.add_argument("--race-share", type=float, default=0.1, help="orders pushed by two more threads at once")
    parser.add_argument("--repush-share", type=float, default=0.2, help="orders pushed again once all are pushed")
    parser.add_argument("--push-timeout", type=float, default=180, help="seconds to wait for every push (180)")
    parser.add_argument("--show", type=int, default=0, help="print the first N dialogs as they went")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL") or args.database_url
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        print(f"bench/orders.py runs on PostgreSQL; the database URL is {url!r}.", file=sys.stderr)
        return 2
    started = time.perf_counter()
    ensure_database(url)
    crm_process, crm_port = start_crm(args.seed, args.lost, args.refused, args.b24_timeout + 0.5)
    webhook = f"http://127.0.0.1:{crm_port}{WEBHOOK_PATH}"
    bench_env = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LLM_PROVIDER": "",
        "CHANNEL_SENDERS": "*=conversations.channels.LocmemSender",
        "B24_CRM_ORDERS": "true",
        "B24_WEBHOOK_URL": webhook,
        "B24_TIMEOUT_S": str(args.b24_timeout),
        # Bitrix24's own 2 requests a second would make 500 pushes take half an hour; not what is measured.
        "B24_RATE_LIMIT_PER_S": "0",
        # The cluster's sweep would answer a customer message waiting in this script's queue.
        "REPLY_SWEEP_AFTER_S": "3600",
        "Q_WORKERS": str(args.q_workers),
    }
    os.environ.update(bench_env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count, Sum
    from django_q.models import OrmQ, Schedule

    from bots.models import AssistantSettings
    from catalog.demo import load_demo_store
    from catalog.models import Product
    from conversations import channels
    from conversations.models import Message
    from orders.models import Customer, Order, OrderLine
    from orders.tasks import push_order

    if connection.vendor != "postgresql":
        print(f"bench/orders.py needs PostgreSQL, the settings give {connection.vendor}.", file=sys.stderr)
        return 2
    collector = LogCollector()
    for name in ("orders", "integrations", "conversations", "bots", "catalog", "django-q"):
        logger = logging.getLogger(name)
        logger.addHandler(collector)
        logger.propagate = False
    log = logging.getLogger("bench.orders")

    print(f"== bench/orders.py: {args.dialogs} dialogs, {args.workers} worker threads, seed {args.seed}")
    print(f"database {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}")
    call_command("migrate", verbosity=0)
    print(f"flushed: {flush()}")
    report, _faq = load_demo_store()
    titles = products_ordered()
    used = Product.objects.filter(title__in=titles)
    before = {p.title: p.quantity for p in used}
    used.update(quantity=STOCK, in_stock=True)
    print(
        f"demo catalog loaded ({report.seen} products); stock of the {len(before)} products the dialogs order "
        f"raised to {STOCK:,} for the bench (the demo's is small: "
        + ", ".join(f"«{t}» {before.get(t)}" for t in [FIRST_ITEMS[0][1], MORE_ITEMS[0][1], GORBUSHA[2]])
        + ", ...)"
    )
    if len(before) != len(titles):
        print(f"  missing from the catalog: {sorted(set(titles) - set(before))}")
    config = AssistantSettings.load()
    config.provider = ""
    config.save()
    assert settings.B24_CRM_ORDERS and settings.B24_WEBHOOK_URL == webhook
    print(
        f"retrieval mode (no LLM), every channel through LocmemSender; B24_CRM_ORDERS on, "
        f"Bitrix24 stand-in at 127.0.0.1:{crm_port} (pid {crm_process.pid}), B24_TIMEOUT_S {args.b24_timeout}, "
        f"B24_RATE_LIMIT_PER_S 0"
    )
    print(
        f"faults on crm.deal.add: {args.lost:.0%} made and then the answer lost (half held back "
        f"{args.b24_timeout + 0.5:.1f} s, past the timeout; half the connection dropped), "
        f"{args.refused:.0%} refused with 503 QUERY_LIMIT_EXCEEDED"
    )

    rng = random.Random(args.seed)
    dialogs = build_dialogs(args.dialogs, rng, race_share=args.race_share)
    steps = Counter(t.step for d in dialogs for t in d.turns)
    print(
        f"{sum(steps.values()):,} customer messages: "
        + ", ".join(f"{s} {steps[s]}" for s in STEPS if steps[s])
        + f"; {sum(d.race for d in dialogs)} orders to be raced by two more pushes"
    )

    logdir = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    cluster_env = {**os.environ, **bench_env}
    cluster = None
    if not args.cluster_after:
        cluster = start_cluster(cluster_env, args.cluster_nice, logdir / "qcluster.log")
        print(
            f"qcluster started (pid {cluster.pid}, {args.q_workers} workers, nice {args.cluster_nice}, "
            f"broker {'Redis' if settings.REDIS_URL else 'ORM'}), log {logdir / 'qcluster.log'}"
        )

    racers: list = []
    outcome = 1
    try:
        print(f"\n== dialogs (load average {_load()})")
        collections = GcMeter()
        gc.callbacks.append(collections)
        try:
            calls, wall = run_dialogs(dialogs, args.workers, racers, log)
        finally:
            gc.callbacks.remove(collections)
        load_after_dialogs = _load()
        print(
            f"{len(calls):,} answer() calls in {wall:.1f} s ({len(calls) / wall:.0f}/s) by {args.workers} threads; "
            f"load average {load_after_dialogs}"
        )
        print(
            f"  {'step':<20}{'n':>6}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'mean':>8}{'cpu50':>8}{'cpu95':>8}"
            f"{'sql':>7}{'sql ms':>8}"
        )
        by_step = defaultdict(list)
        for call in calls:
            by_step[call.step].append(call)
        for step in STEPS:
            if by_step[step]:
                print(stats_row(step, by_step[step]))
        print(stats_row("overall", calls))
        print(
            "  (ms of each answer() call; cpu: the thread's own CPU time, the rest is waiting for the GIL, "
            "PostgreSQL or a lock; sql: statements and ms in them per call)"
        )
        overall = [c.ms for c in calls]
        p95 = percentile(overall, 95)
        print("  slowest calls:")
        for c in sorted(calls, key=lambda c: -c.ms)[:6]:
            print(
                f"    {c.step} {c.ms:.0f} ms: cpu {c.cpu_ms:.0f} ms, {c.sql_count} statements, the slowest "
                f"{c.slowest_sql[0]:.0f} ms ({statement(c.slowest_sql[1])}); call #{c.nth} of its thread"
            )
        print("  the slowest statement of each call, in the three slowest steps (p95):")
        for step in sorted(by_step, key=lambda s: -percentile([c.ms for c in by_step[s]], 95))[:3]:
            kinds = defaultdict(list)
            for c in by_step[step]:
                kinds[statement(c.slowest_sql[1])].append(c.slowest_sql[0])
            top = sorted(kinds.items(), key=lambda kv: -sum(kv[1]))[:3]
            print(
                f"    {step}: "
                + "; ".join(
                    f"{name} in {len(v)} calls, mean {statistics.mean(v):.1f} ms, max {max(v):.0f}" for name, v in top
                )
            )
        full = collections.full
        print(
            f"  garbage collections meanwhile: {collections.count}, {len(full)} of them full (generation 2): "
            + ", ".join(f"{ms:.0f}" for ms in full[:12])
            + " ms (each one stops every thread of the process)"
        )
        if args.show:
            for dialog in dialogs[: args.show]:
                print(f"\n-- dialog {dialog.index}")
                messages = Message.objects.filter(conversation_id=dialog.conversation_id).order_by("created_at", "pk")
                for message in messages:
                    who = ">" if message.author == Message.Author.CUSTOMER else "<"
                    print(f"{who} " + message.text.replace("\n", "\n  "))

        if cluster is None:
            cluster = start_cluster(cluster_env, args.cluster_nice, logdir / "qcluster.log")
            print(f"\nqcluster started now (pid {cluster.pid}), log {logdir / 'qcluster.log'}")

        # The pushes ------------------------------------------------------------------
        print(f"\n== pushes (load average {_load()})")
        confirmed = [d for d in dialogs if d.confirmed]
        deadline = time.monotonic() + args.push_timeout
        push_started = time.perf_counter()
        last, shown_at = None, -10.0
        while True:
            states = Counter(Order.objects.values_list("push_state", flat=True))
            now = time.perf_counter() - push_started
            finished = states.get(Order.PushState.PENDING, 0) == 0 or time.monotonic() > deadline
            if states != last and (now - shown_at >= 5 or finished):
                print(f"  {now:5.0f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
                last, shown_at = states, now
            if finished:
                break
            if cluster.poll() is not None:
                print(f"  ! the qcluster exited with {cluster.returncode}")
                break
            time.sleep(1)
        for _order_id, threads, _results in racers:
            for thread in threads:
                thread.join()
        by_hand = 0
        pending = list(Order.objects.filter(push_state=Order.PushState.PENDING).order_by("pk"))
        if pending:
            # Left over by the cluster within the time: pushed here, each after its retry time.
            print(f"  {len(pending)} still pending after {args.push_timeout:.0f} s: pushed here after their retry time")
            for order in pending:
                wait = (order.push_retry_at.timestamp() - time.time()) if order.push_retry_at else 0
                if wait > 0:
                    time.sleep(min(wait, 60))
                push_order(order.pk)
                by_hand += 1
        drained = time.perf_counter() - push_started
        race_results = Counter(r for _o, _t, results in racers for r in results)
        print(
            f"every order's push done {drained:.0f} s after the dialogs ended; "
            f"{len(racers)} orders raced by two pushes of this process as well as the cluster's task: "
            + ", ".join(f"{k} {v}" for k, v in race_results.items())
        )
        state_before = crm_state(crm_port)
        repushed = [o.pk for o in Order.objects.order_by("pk") if rng.random() < args.repush_share]
        repush_results = Counter(push_order(pk) for pk in repushed)
        state = crm_state(crm_port)
        new_calls = sum(state["calls"].values()) - sum(state_before["calls"].values())
        print(
            f"pushed again after completion: {len(repushed)} orders -> "
            + ", ".join(f"{k} {v}" for k, v in repush_results.items())
            + f"; {new_calls} calls to the stand-in, {len(state['deals']) - len(state_before['deals'])} new deals"
        )
        orders = list(Order.objects.select_related("customer", "confirmed_by").order_by("pk"))
        attempts = Counter(o.push_attempts for o in orders)
        lag = [(o.pushed_at - o.created_at).total_seconds() for o in orders if o.pushed_at]
        print(
            "push attempts per order: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(attempts.items()))
            + f"; order made -> pushed: p50 {percentile(lag, 50):.1f} s, p95 {percentile(lag, 95):.1f} s, "
            f"max {max(lag):.1f} s"
            if lag
            else ""
        )
        print("stand-in calls: " + ", ".join(f"{k} {v}" for k, v in sorted(state["calls"].items())))
        faults = state["faults"]
        print(
            "faults injected on crm.deal.add: "
            + ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))
            + f"; retries run from django-q Schedule rows: "
            f"{sum(1 for o in orders if o.push_attempts > 1)} orders; pushed here by hand: {by_hand}"
        )
        left_q = OrmQ.objects.count()
        # A retry whose order was pushed meanwhile (by a racing push) still fires, and finds it pushed.
        left_schedules = (
            Schedule.objects.filter(schedule_type=Schedule.ONCE, func="orders.tasks.push_order")
            .exclude(repeats=0)
            .count()
        )

        # The checks -------------------------------------------------------------------
        deals_by_origin = Counter(d["ORIGIN_ID"] for d in state["deals"])
        deal_of_origin = {d["ORIGIN_ID"]: d["ID"] for d in state["deals"]}
        uids = {str(o.uid) for o in orders}
        customer_messages = Message.objects.filter(
            conversation__external_id__startswith=PREFIX,
            direction=Message.Direction.IN,
            author=Message.Author.CUSTOMER,
        )
        replies = Message.objects.filter(in_reply_to__in=customer_messages, author=Message.Author.BOT)
        per_message = Counter(dict(replies.values_list("in_reply_to").annotate(n=Count("id"))))
        n_customer = customer_messages.count()
        planned = sum(len(d.turns) for d in dialogs)
        not_sent = replies.exclude(delivery_state=Message.Delivery.SENT).count()
        comments_per_deal = Counter(c["ENTITY_ID"] for c in state["comments"])
        contacts_by_phone = Counter(p for c in state["contacts"] for p in c["PHONE"])
        phones = {d.index: d.phone for d in dialogs}
        phone_of_order = {o.conversation_id: o.customer.phone for o in orders}
        wrong_phone = [d.index for d in confirmed if phone_of_order.get(d.conversation_id) != phones[d.index]]
        with_problems = [d for d in dialogs if d.problems]
        checks = [
            (
                "every dialog reached its confirmation",
                f"{len(confirmed)}/{len(dialogs)}",
                len(confirmed) == len(dialogs),
            ),
            (
                "every reply what the dialog expects",
                f"{len(with_problems)} dialogs with an unexpected reply",
                not with_problems,
            ),
            (
                "orders == confirmed dialogs",
                f"{len(orders)} orders, {len(confirmed)} confirmed",
                len(orders) == len(confirmed),
            ),
            (
                "a customer of its own per order, with the dialog's phone",
                f"{Customer.objects.filter(orders__isnull=False).distinct().count()} customers, "
                f"{len(wrong_phone)} wrong phones",
                not wrong_phone and len({o.customer_id for o in orders}) == len(orders),
            ),
            (
                "every order pushed, with its deal",
                f"{sum(1 for o in orders if o.push_state == Order.PushState.PUSHED and o.crm_deal_id)}/{len(orders)}",
                all(o.push_state == Order.PushState.PUSHED and o.crm_deal_id for o in orders),
            ),
            (
                "one deal per order uid at the stand-in, no other",
                f"{len(state['deals'])} deals, {sum(1 for n in deals_by_origin.values() if n > 1)} uids with 2+, "
                f"{len(set(deals_by_origin) - uids)} unknown, {len(uids - set(deals_by_origin))} missing",
                len(state["deals"]) == len(orders)
                and set(deals_by_origin) == uids
                and all(n == 1 for n in deals_by_origin.values()),
            ),
            (
                "each order holds the deal made for it",
                f"{sum(1 for o in orders if deal_of_origin.get(str(o.uid)) == o.crm_deal_id)}/{len(orders)}",
                all(deal_of_origin.get(str(o.uid)) == o.crm_deal_id for o in orders),
            ),
            (
                "one contact per customer phone",
                f"{len(state['contacts'])} contacts, "
                f"{sum(1 for n in contacts_by_phone.values() if n > 1)} phones with 2+",
                len(state["contacts"]) == len(orders) and all(n == 1 for n in contacts_by_phone.values()),
            ),
            (
                "one transcript comment and the rows per deal",
                f"{len(state['comments'])} comments on {len(comments_per_deal)} deals, rows on {len(state['rows'])}",
                len(state["comments"]) == len(orders)
                and all(n == 1 for n in comments_per_deal.values())
                and len(state["rows"]) == len(orders),
            ),
            (
                "a second push after completion calls nothing",
                f"{new_calls} calls, results {dict(repush_results)}",
                new_calls == 0 and set(repush_results) <= {Order.PushState.PUSHED},
            ),
            (
                "one bot reply per customer message, sent",
                f"{n_customer}/{planned} messages, {len(per_message)} answered, "
                f"{sum(1 for n in per_message.values() if n > 1)} twice, {not_sent} not sent",
                n_customer == planned
                and len(per_message) == n_customer
                and all(n == 1 for n in per_message.values())
                and not_sent == 0,
            ),
            ("no unknown Bitrix24 method called", json.dumps(state["unknown"]) or "none", not state["unknown"]),
            (
                "nothing left queued",
                f"{left_q} tasks in OrmQ ({left_schedules} push retries still scheduled)",
                left_q == 0,
            ),
        ]
        if with_problems:
            print("\nunexpected replies (first 5 dialogs):")
            for dialog in with_problems[:5]:
                print(f"  dialog {dialog.index}: " + " | ".join(dialog.problems[:3]))
        stock_after = Product.objects.filter(title=FIRST_ITEMS[0][1]).values_list("quantity", flat=True).first()
        ordered = OrderLine.objects.filter(product__title=FIRST_ITEMS[0][1]).aggregate(n=Sum("quantity"))["n"] or 0
        checks.append(
            (
                "the stock went down by what was ordered",
                f"«{FIRST_ITEMS[0][1]}»: {stock_after:,} = {STOCK:,} − {ordered:,}",
                stock_after == STOCK - ordered,
            )
        )

        if collector.records:
            print("\nwarnings and errors logged in this process (in-process pushes included):")
            for key, n in collector.records.most_common(8):
                print(f"  {n:>4} × {collector.examples[key][:160]}")
        stop_cluster(cluster)
        cluster_log = (logdir / "qcluster.log").read_text(errors="replace").splitlines()
        trouble = Counter(
            " ".join(line.split()[2:9]) for line in cluster_log if " ERROR " in line or "Traceback" in line
        )
        warned = Counter(" ".join(line.split()[3:10]) for line in cluster_log if " WARNING " in line)
        print(
            f"qcluster log: {len(cluster_log)} lines, {sum(trouble.values())} errors, {sum(warned.values())} warnings"
        )
        for line, n in (trouble + warned).most_common(6):
            print(f"  {n:>4} × {line}")

        rows = [
            (
                f"answer() p95 < {TARGET_P95_MS:.0f} ms (no LLM, {len(calls):,} calls)",
                f"{p95:.1f} ms",
                p95 < TARGET_P95_MS,
            ),
            *checks,
        ]
        print(f"\n== targets and checks ({time.perf_counter() - started:.0f} s in all, load average {_load()})")
        for name, result, met in rows:
            print(f"  {name:<58}{result:<58}  {'met' if met else 'FAILED'}")
        print(
            f"  answer() p50 / p99 / max: {percentile(overall, 50):.1f} / {percentile(overall, 99):.1f} / "
            f"{max(overall):.1f} ms; load average after the dialogs {load_after_dialogs}"
        )
        outcome = 0 if all(met for *_, met in rows) else 1
    finally:
        if cluster is not None:
            stop_cluster(cluster)
        crm_process.terminate()
        crm_process.join(5)
        channels.outbox.clear()
    return outcome


if __name__ == "__main__":
    sys.exit(main())
