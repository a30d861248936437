"""Acknowledgement latency of the channels' webhooks under load, and the replies behind them.

    .venv/bin/python bench/webhook.py [--channel bitrix24|telegram|both] [--events 2000] [--concurrency 50]

Runs the real stack as separate processes: gunicorn serving config.wsgi,
`--qclusters` (default 2) django-q2 clusters (`manage.py qcluster`, as two
worker nodes would run) on a Redis broker, PostgreSQL, and a fake of the
channel's API (in a process of its own, at the workers' niceness: it stands in
for a system on another machine) that answers the sends and counts them per
dialog:

- bitrix24: ONIMBOTMESSAGEADD events (the test fixture, each with its own
  MESSAGE_ID and DIALOG_ID) from `--portals` portals (distinct
  auth[member_id] and bot id, all accepted with the webhook-mode application
  token) to POST /b24/imbot/events; the fake REST server answers
  imbot.message.add with a per-portal message id, so ids repeat across portals;
- telegram: private text-message updates (message_text.json, each with its own
  update_id, chat and message_id) to POST /tg/webhook with the secret token
  header; the fake Bot API answers sendMessage / sendPhoto / sendMediaGroup /
  answerCallbackQuery / getMe in Telegram's shape, with message ids counted per
  chat from 1, as Telegram does, so ids repeat across chats.

Per channel, each from a fresh state (conversations, channel accounts, received
events and task results emptied, Redis flushed, the services started anew):
`--serial` events one at a time (the warm-up), N events by C connections in a
closed loop, `--open-events` more in an open loop at `--open-share` of the
measured throughput, then a wait until every message has a sent reply, a check
that every dialog got exactly one (the fake's counts, the database's delivery
states), and N GET /health with the same concurrency for comparison. Database
`storebot_bench_webhook` (the catalog kept), Redis db 6. Exits 1 when a target
of any channel is missed.
"""

import argparse
import hashlib
import html
import http.client
import json
import math
import multiprocessing
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.database import ensure_database

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
FIXTURES = ROOT / "tests" / "integrations"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storebot_bench_webhook"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
CHANNELS = ("bitrix24", "telegram")

TARGET_OPEN_P99_MS = 50.0
TARGET_THROUGHPUT_SHARE = 0.5
# Telegram's own limit is about 30 messages a second per bot: the drain would
# take minutes at it, and it is not what this bench measures.
TELEGRAM_BENCH_RATE_PER_BOT = 1000

# --- the customers' questions ---------------------------------------------

ITEMS = [
    "креветки",
    "тигровые креветки",
    "икра горбуши",
    "красная икра",
    "икра кеты",
    "кальмар",
    "мидии",
    "гребешок",
    "осьминог",
    "краб",
    "крабовые палочки",
    "лосось",
    "сёмга",
    "форель",
    "треска",
    "палтус",
    "скумбрия",
    "сельдь",
    "тунец",
    "морской коктейль",
    "печень трески",
    "устрицы",
]
TEMPLATES = [
    "Здравствуйте! Есть {item}?",
    "Сколько стоит {item}?",
    "{item} есть в наличии?",
    "Хочу купить {item}, что посоветуете?",
    "Какая у вас {item} и почём?",
    "Подскажите, {item} свежемороженые есть?",
    "Добрый день, нужна {item} на праздник",
    "{item} 1 кг сколько будет?",
    "Есть ли {item} подешевле?",
]
OTHER_QUESTIONS = [
    "Как у вас с доставкой?",
    "Какие способы оплаты?",
    "Что есть из морепродуктов для гриля?",
    "Посоветуйте что-нибудь к пиву из рыбы",
    "Есть ли акции на икру?",
]
FIRST_NAMES = ["Анна", "Иван", "Мария", "Сергей", "Ольга", "Дмитрий", "Елена", "Алексей", "Наталья", "Павел"]
LAST_NAMES = ["Соколова", "Смирнов", "Кузнецова", "Попов", "Васильева", "Морозов", "Новикова", "Волков"]


def question(i: int) -> str:
    if i % 10 == 9:
        return OTHER_QUESTIONS[(i // 10) % len(OTHER_QUESTIONS)]
    item = ITEMS[i % len(ITEMS)]
    text = TEMPLATES[(i // len(ITEMS)) % len(TEMPLATES)].format(item=item)
    return text[0].upper() + text[1:]


# --- the fake channel servers ---------------------------------------------


class FakeServer(ThreadingHTTPServer):
    """A channel's API: what it was sent, per dialog (a DIALOG_ID, a chat id); read with fake_counts()."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.replies: Counter = Counter()  # dialog -> reply sends (imbot.message.add, sendMessage)
        self.media: Counter = Counter()  # dialog -> picture sends before a reply's text (Telegram)
        self.last_id: dict[str, str] = {}  # dialog -> the id given to its last reply
        self.other: Counter = Counter()  # other methods -> calls
        self.refused: Counter = Counter()  # why a call was refused -> calls

    @property
    def port(self) -> int:
        return self.server_address[1]

    def counts(self) -> dict:
        with self.lock:
            return {
                "replies": Counter(self.replies),
                "media": Counter(self.media),
                "last_id": dict(self.last_id),
                "other": Counter(self.other),
                "refused": Counter(self.refused),
            }


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _params(self, body: bytes) -> dict:
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = dict(parse_qsl(body.decode(errors="replace")))
        return params if isinstance(params, dict) else {}

    def _refuse(self, why: str) -> None:
        with self.server.lock:
            self.server.refused[why] += 1

    def _answer(self, status: int, payload) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        # The bench reads what the fake counted: it serves from a process of its own.
        if urlsplit(self.path).path != COUNTS_PATH:
            return self._answer(404, {"error": "not found"})
        counts = self.server.counts()
        return self._answer(200, {name: dict(values) for name, values in counts.items()})

    def log_message(self, format, *args):
        pass


COUNTS_PATH = "/__bench/counts"


def fake_counts(port: int) -> dict:
    """What the fake API counted, read from its process."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", COUNTS_PATH)
        data = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return {name: (dict(values) if name == "last_id" else Counter(values)) for name, values in data.items()}


def serve_fake(fake: "FakeServer", nice: int) -> None:
    """The fake API stands in for a system on another machine: it must not take the web server's CPU here."""
    if nice:
        os.nice(nice)
    fake.serve_forever()


class FakeBitrix24(FakeServer):
    """The inbound webhook's REST API; imbot.message.add's ids are counted per portal (by BOT_ID)."""

    def __init__(self, webhook_path: str, portal_of_bot: dict[str, int], portal_of_dialog: dict[str, int]):
        super().__init__(_B24Handler)
        self.webhook_path = webhook_path
        self.portal_of_bot = portal_of_bot
        self.portal_of_dialog = portal_of_dialog
        self.next_id: Counter = Counter()  # portal -> the last message id it gave


class _B24Handler(_Handler):
    server: FakeBitrix24

    def do_POST(self):
        body = self._body()
        path = urlsplit(self.path).path
        prefix = self.server.webhook_path
        if not path.startswith(prefix) or not path.endswith(".json"):
            self._refuse("wrong webhook URL")
            return self._answer(
                401, {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}
            )
        method = path[len(prefix) : -len(".json")]
        if method != "imbot.message.add":
            with self.server.lock:
                self.server.other[method] += 1
            return self._answer(200, {"result": True})
        params = self._params(body)
        dialog = str(params.get("DIALOG_ID", ""))
        portal = self.server.portal_of_bot.get(str(params.get("BOT_ID", "")))
        if portal is None:
            self._refuse("unknown BOT_ID")
            return self._answer(400, {"error": "BOT_ID_ERROR", "error_description": "Bot not found"})
        if self.server.portal_of_dialog.get(dialog, portal) != portal:
            # The dialog is another portal's: the reply went through the wrong bot.
            self._refuse("dialog of another portal")
        with self.server.lock:
            self.server.next_id[portal] += 1
            message_id = self.server.next_id[portal]
            self.server.replies[dialog] += 1
            self.server.last_id[dialog] = str(message_id)
        return self._answer(200, {"result": message_id, "time": {"start": time.time()}})


class FakeTelegram(FakeServer):
    """The Bot API; message ids are counted per chat from 1, as Telegram does."""

    def __init__(self, token: str, bot_id: int, chats: dict[int, str]):
        super().__init__(_TelegramHandler)
        self.token = token
        self.bot = {"id": bot_id, "is_bot": True, "first_name": "Морской рынок", "username": "storebot_bench_bot"}
        self.chats = chats  # chat id -> the customer's first name: the chats that started the bot
        self.next_message: Counter = Counter()  # chat -> the last message id in it


_TAGS = re.compile(r"<[^>]*>")


class _TelegramHandler(_Handler):
    server: FakeTelegram

    def do_POST(self):
        body = self._body()
        token, _slash, method = urlsplit(self.path).path.removeprefix("/bot").partition("/")
        if not self.path.startswith("/bot") or token != self.server.token:
            self._refuse("wrong token")
            return self._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        params = self._params(body)
        if method == "getMe":
            return self._ok(self.server.bot)
        if method == "answerCallbackQuery":
            self._other(method)
            return self._ok(True)
        if method not in ("sendMessage", "sendPhoto", "sendMediaGroup"):
            self._refuse(f"method {method}")
            return self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        try:
            chat_id = int(params.get("chat_id"))
        except (TypeError, ValueError):
            chat_id = None
        if chat_id not in self.server.chats:
            self._refuse("unknown chat")
            return self._answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
        chat = {"id": chat_id, "first_name": self.server.chats[chat_id], "type": "private"}
        if method == "sendMessage":
            text = params.get("text") or ""
            if not text:
                return self._answer(
                    400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
                )
            (message,) = self._messages(chat, 1, reply=True)
            message["text"] = self._plain(text, params.get("parse_mode"))
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            return self._ok(message)
        if method == "sendPhoto":
            (message,) = self._messages(chat, 1)
            message["photo"] = self._photo(str(params.get("photo")))
            if params.get("caption"):
                message["caption"] = self._plain(params["caption"], params.get("parse_mode"))
            return self._ok(message)
        media = params.get("media") if isinstance(params.get("media"), list) else []
        if not 2 <= len(media) <= 10:
            return self._answer(
                400, {"ok": False, "error_code": 400, "description": "Bad Request: wrong number of messages in album"}
            )
        messages = self._messages(chat, len(media))
        group = str(10**17 + messages[0]["message_id"] * 1000 + chat_id % 1000)
        for message, item in zip(messages, media, strict=True):
            message["media_group_id"] = group
            message["photo"] = self._photo(str(item.get("media")))
            if item.get("caption"):
                message["caption"] = self._plain(item["caption"], item.get("parse_mode"))
        return self._ok(messages)

    def _messages(self, chat: dict, count: int, *, reply: bool = False) -> list[dict]:
        key = str(chat["id"])
        with self.server.lock:
            first = self.server.next_message[chat["id"]] + 1
            self.server.next_message[chat["id"]] += count
            if reply:
                self.server.replies[key] += 1
                self.server.last_id[key] = str(first + count - 1)
            else:
                self.server.media[key] += 1
        now = int(time.time())
        return [{"message_id": first + n, "from": self.server.bot, "chat": chat, "date": now} for n in range(count)]

    def _ok(self, result) -> None:
        self._answer(200, {"ok": True, "result": result})

    def _other(self, method: str) -> None:
        with self.server.lock:
            self.server.other[method] += 1

    @staticmethod
    def _plain(text: str, parse_mode) -> str:
        # Telegram answers with the text as shown: the HTML parsed away.
        return html.unescape(_TAGS.sub("", text)) if parse_mode == "HTML" else text

    @staticmethod
    def _photo(source: str) -> list[dict]:
        digest = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (a made-up file id)
        return [
            {"file_id": f"AgAC{digest}{w}", "file_unique_id": f"AQAD{digest[:12]}{w}", "width": w, "height": h}
            for w, h in ((90, 68), (320, 240), (1280, 960))
        ]


# --- the channels ----------------------------------------------------------


class Bitrix24Channel:
    name = "bitrix24"
    unit = "event"
    path = "/b24/imbot/events"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    webhook_path = "/rest/1/benchsecret/"
    fixture = FIXTURES / "bitrix24" / "fixtures" / "message_add.txt"
    first_dialog = 700_000  # DIALOG_IDs (and user ids) of the bench's customers start here
    first_message = 9_000_000
    first_bot = 1291

    def __init__(self, args):
        self.portals = max(1, args.portals)
        self.token = secrets.token_hex(16)
        self.members = [hashlib.md5(f"bench-portal-{p}".encode()).hexdigest() for p in range(self.portals)]  # noqa: S324
        self.pairs = parse_qsl(self.fixture.read_text().strip(), keep_blank_values=True)

    def describe(self) -> str:
        return (
            f"{self.portals} portals (auth[member_id]), all on the webhook's application token; "
            "imbot.message.add ids counted per portal"
        )

    def portal(self, i: int) -> int:
        return i % self.portals

    def dialog(self, i: int) -> str:
        return str(self.first_dialog + i)

    def bot(self, portal: int) -> str:
        return str(self.first_bot + portal)

    def fake(self, total: int) -> FakeBitrix24:
        return FakeBitrix24(
            self.webhook_path,
            {self.bot(p): p for p in range(self.portals)},
            {self.dialog(i): self.portal(i) for i in range(total)},
        )

    def env(self, fake: FakeBitrix24) -> dict:
        return {
            "B24_APPLICATION_TOKEN": self.token,
            "B24_WEBHOOK_URL": f"http://127.0.0.1:{fake.port}{self.webhook_path}",
            # The client-side limit (2/s per portal, Bitrix24's own) would make the drain take 1,000 s.
            "B24_RATE_LIMIT_PER_S": "0",
            "B24_OPERATOR_DIALOG_ID": "",
            "TELEGRAM_BOT_TOKEN": "",
        }

    def build(self, first: int, count: int) -> list[bytes]:
        """`count` form-encoded ONIMBOTMESSAGEADD bodies, each with its own dialog, user and message."""
        bodies = []
        for i in range(first, first + count):
            p = self.portal(i)
            user, bot, member = self.dialog(i), self.bot(p), self.members[p]
            domain = f"seafood-{p:02d}.bitrix24.ru"
            text = question(i)
            fields = {
                "data[PARAMS][MESSAGE]": text,
                "data[PARAMS][MESSAGE_ORIGINAL]": text,
                "data[PARAMS][DIALOG_ID]": user,
                "data[PARAMS][FROM_USER_ID]": user,
                "data[PARAMS][AUTHOR_ID]": user,
                "data[PARAMS][MESSAGE_ID]": str(self.first_message + i),
                "data[PARAMS][TO_CHAT_ID]": str(self.first_message + i),
                "data[PARAMS][TO_USER_ID]": bot,
                "data[USER][ID]": user,
                "data[USER][FIRST_NAME]": FIRST_NAMES[i % len(FIRST_NAMES)],
                "data[USER][NAME]": f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[i % len(LAST_NAMES)]}",
                "data[USER][LAST_NAME]": LAST_NAMES[i % len(LAST_NAMES)],
                "auth[user_id]": user,
                "auth[member_id]": member,
                "auth[domain]": domain,
                "auth[client_endpoint]": f"https://{domain}/rest/",
                "auth[application_token]": self.token,
                "ts": str(int(time.time())),
            }
            pairs = []
            for key, value in self.pairs:
                if key.startswith("data[BOT][1291]"):
                    # The bot's section, under this portal's bot id.
                    key = f"data[BOT][{bot}]" + key[len("data[BOT][1291]") :]
                    value = {
                        "application_token": self.token,
                        "member_id": member,
                        "domain": domain,
                        "client_endpoint": f"https://{domain}/rest/",
                        "user_id": bot,
                        "BOT_ID": bot,
                    }.get(key.rsplit("[", 1)[1].rstrip("]"), value)
                pairs.append((key, fields.get(key, value)))
            bodies.append(urlencode(pairs).encode())
        return bodies

    def expected(self, total: int) -> set[str]:
        return {self.dialog(i) for i in range(total)}

    def dialog_of(self, conversation_external_id: str) -> str:
        # "<member_id>:<DIALOG_ID>"
        return conversation_external_id.partition(":")[2]

    def reply_check(self, counts: dict, expected: set[str]) -> dict:
        return _reply_check(counts, expected, with_media=False)


class TelegramChannel:
    name = "telegram"
    unit = "update"
    path = "/tg/webhook"
    fixture = FIXTURES / "telegram" / "fixtures" / "message_text.json"
    first_update = 815_300_000
    first_chat = 6_100_000_000  # private chats (and user ids) of the bench's customers
    first_message = 4_000
    bot_id = 7_123_456_789

    def __init__(self, args):
        self.token = f"{self.bot_id}:AA{secrets.token_urlsafe(25)[:33]}"
        self.secret = secrets.token_urlsafe(32)
        self.headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": self.secret}
        self.template = json.loads(self.fixture.read_text())

    def describe(self) -> str:
        return (
            f"one bot, private chats; TELEGRAM_RATE_PER_BOT_PER_S={TELEGRAM_BENCH_RATE_PER_BOT} for the bench "
            "(Telegram's own ~30/s per bot would make the drain take minutes, and is not what is measured); "
            "message ids counted per chat from 1"
        )

    def chat(self, i: int) -> int:
        return self.first_chat + i

    def fake(self, total: int) -> FakeTelegram:
        return FakeTelegram(
            self.token, self.bot_id, {self.chat(i): FIRST_NAMES[i % len(FIRST_NAMES)] for i in range(total)}
        )

    def env(self, fake: FakeTelegram) -> dict:
        return {
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_WEBHOOK_SECRET": self.secret,
            "TELEGRAM_API_URL": f"http://127.0.0.1:{fake.port}",
            "TELEGRAM_OPERATOR_CHAT_ID": "",
            "TELEGRAM_RATE_PER_BOT_PER_S": str(TELEGRAM_BENCH_RATE_PER_BOT),
            "B24_WEBHOOK_URL": "",
            "B24_APPLICATION_TOKEN": "",
        }

    def build(self, first: int, count: int) -> list[bytes]:
        """`count` Update bodies of private text messages, each with its own update_id, chat and message_id."""
        bodies = []
        for i in range(first, first + count):
            update = json.loads(json.dumps(self.template))
            message = update["message"]
            first_name, last_name = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[i % len(LAST_NAMES)]
            person = {"id": self.chat(i), "first_name": first_name, "last_name": last_name, "username": f"bench_{i}"}
            update["update_id"] = self.first_update + i
            message["message_id"] = self.first_message + i
            message["from"].update(person)
            message["chat"].update(person)
            message["date"] = int(time.time())
            message["text"] = question(i)
            bodies.append(json.dumps(update, ensure_ascii=False).encode())
        return bodies

    def expected(self, total: int) -> set[str]:
        return {str(self.chat(i)) for i in range(total)}

    def dialog_of(self, conversation_external_id: str) -> str:
        return conversation_external_id

    def reply_check(self, counts: dict, expected: set[str]) -> dict:
        return _reply_check(counts, expected, with_media=True)


def _reply_check(counts: dict, expected: set[str], *, with_media: bool) -> dict:
    """Exactly one reply per dialog at the fake; a Telegram reply may have one picture send before its text."""
    replies, media = counts["replies"], counts["media"]
    many = sorted(d for d in expected if replies.get(d, 0) > 1 or (with_media and media.get(d, 0) > 1))
    return {
        "once": sum(1 for d in expected if replies.get(d) == 1 and media.get(d, 0) <= 1),
        "zero": sorted(d for d in expected if replies.get(d, 0) == 0),
        "many": many,
        "strangers": sorted(d for d in set(replies) | set(media) if d not in expected),
        "sends": sum(replies.values()),
        "media": sum(media.values()),
    }


# --- the load generator ----------------------------------------------------


def _load_process(port, method, path, bodies, threads, start_at, out, headers, schedule=None):
    """One load process: `threads` connections over its share of the requests.

    Closed loop without a schedule: each connection sends its next request as
    soon as the last is answered. With one (seconds after start_at, one per
    request), open loop: a request is due at its time whether or not earlier
    ones were answered, and its latency counts from then, so time spent waiting
    for a free connection counts too.
    """
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    for i, body in enumerate(bodies):
        jobs.put((body, schedule[i] if schedule else None))
    results = []
    lock = threading.Lock()
    headers = {"Host": "127.0.0.1", **(headers or {})}
    # perf_counter is per process: wall-clock offsets for the schedule and the overall duration.
    offset = time.time() - time.perf_counter()
    start_perf = start_at - offset

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while True:
            try:
                body, due = jobs.get_nowait()
            except queue.Empty:
                break
            if due is not None:
                time.sleep(max(0.0, start_perf + due - time.perf_counter()))
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers if body is not None else {"Host": "127.0.0.1"})
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
            t1 = time.perf_counter()
            began = t0 if due is None else min(t0, start_perf + due)
            mine.append((status, t1 - began, began, t1))
        conn.close()
        with lock:
            results.extend(mine)

    # Every process starts at the same moment, its threads already created.
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    time.sleep(max(0.0, start_at - time.time()))
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put([(s, d, a + offset, b + offset) for s, d, a, b in results])


def drive(
    port: int,
    method: str,
    path: str,
    bodies: list,
    concurrency: int,
    processes: int,
    rate: float | None = None,
    headers: dict | None = None,
) -> dict:
    """Send every request with up to `concurrency` connections; their statuses and timings.

    Closed loop (all connections always busy), or open loop at `rate` requests a second.
    """
    processes = max(1, min(processes, concurrency, len(bodies)))
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.5
    procs = []
    for p in range(processes):
        share = bodies[p::processes]
        schedule = [(p + j * processes) / rate for j in range(len(share))] if rate else None
        threads = concurrency // processes + (1 if p < concurrency % processes else 0)
        proc = ctx.Process(
            target=_load_process, args=(port, method, path, share, threads, start_at, out, headers, schedule)
        )
        proc.start()
        procs.append(proc)
    results = []
    for _ in procs:
        results.extend(out.get())
    for proc in procs:
        proc.join()
    return summarize(results, concurrency)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def summarize(results: list, concurrency: int) -> dict:
    latencies = sorted(d * 1000 for _s, d, _a, _b in results)
    wall = max(b for *_x, b in results) - min(a for _s, _d, a, _b in results)
    return {
        "requests": len(results),
        "concurrency": concurrency,
        "seconds": wall,
        "rps": len(results) / wall if wall > 0 else float("nan"),
        "mean": sum(latencies) / len(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": latencies[-1],
        "statuses": Counter(str(s) for s, *_x in results),
    }


def print_run(title: str, r: dict, closed_loop: bool = True) -> None:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    print(
        f"{title}: {r['requests']} requests, {r['concurrency']} connections, {r['seconds']:.2f} s, "
        f"{r['rps']:.0f} req/s\n"
        f"    latency ms: p50 {r['p50']:.1f}  p95 {r['p95']:.1f}  p99 {r['p99']:.1f}  max {r['max']:.1f}  "
        f"mean {r['mean']:.1f}\n"
        f"    status codes: {statuses}"
    )
    if closed_loop and r["concurrency"] > 1:
        little = r["concurrency"] / r["rps"] * 1000
        print(
            f"    Little's law: {r['concurrency']} requests always in flight at {r['rps']:.0f}/s "
            f"-> mean latency ≈ {little:.0f} ms (measured {r['mean']:.0f} ms): the latency is mostly queueing"
        )


# --- the services ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


# Log lines that tell something went wrong in a service (a 500, a failed task, a killed worker).
_TROUBLE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Internal Server Error|WORKER TIMEOUT")


class Services:
    """gunicorn and the qclusters as child processes, each in a process group of its own."""

    def __init__(self, env: dict, logdir: Path):
        self.env = env
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> None:
        log = open(self.logdir / f"{name}.log", "wb")  # kept open for the child's life
        # A process group of its own (to be stopped whole) in this session: with
        # Linux's autogroup scheduling every session shares the CPU equally, so
        # a worker in a session of its own would take half of it whatever its nice.
        self.procs[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, process_group=0
        )

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def trouble(self) -> dict[str, list[str]]:
        """Each log's lines that tell of an error."""
        found = {}
        for name in self.procs:
            path = self.logdir / f"{name}.log"
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            found[name] = [line for line in lines if _TROUBLE.search(line)]
        return found

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # gunicorn and qcluster both shut down gracefully on TERM
        deadline = time.time() + 30
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 30 s: killing its process group")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            else:
                # Children left behind by a master that exited (qcluster's workers): their group only.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def start_services(services: Services, args, port: int) -> None:
    services.start(
        "gunicorn",
        [
            GUNICORN,
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.gunicorn_workers),
            "--threads",
            str(args.gunicorn_threads),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ],
    )
    # Two worker nodes: clusters of their own on the one broker, each taking tasks from the same queue.
    for n in range(1, args.qclusters + 1):
        services.start(f"qcluster{n}", ["nice", "-n", str(args.worker_nice), PYTHON, "manage.py", "qcluster"])


def wait_for_health(port: int, services: Services, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    last = "no answer"
    while time.time() < deadline:
        services.check()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health", headers={"Host": "127.0.0.1"})
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return
            last = f"HTTP {response.status} {body[:200]!r}"
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer /health in {timeout:.0f} s ({last}):\n{services.tail('gunicorn')}")


def manage(env: dict, *args: str) -> None:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def db_connect(url: str):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname=parts.path.lstrip("/"),
        autocommit=True,
    )


def fresh_state(db_url: str, redis_url: str) -> None:
    """Earlier runs' dialogs, channel accounts, events, task results and retries go (the catalog stays)."""
    import redis

    with db_connect(db_url) as conn:
        conn.execute(
            "TRUNCATE conversations_conversation, conversations_channelaccount, conversations_receivedevent,"
            " django_q_task, django_q_ormq CASCADE"
        )
        conn.execute("DELETE FROM django_q_schedule WHERE schedule_type = 'O'")
    redis.Redis.from_url(redis_url).flushdb()


def drain_counts(conn, channel: str) -> tuple[int, int, int]:
    """Customer messages; those with a sent bot reply; bot replies not sent (yet)."""
    return conn.execute(
        """
        SELECT
          (SELECT count(*) FROM conversations_message
             WHERE channel = %(c)s AND direction = 'in' AND author = 'customer'),
          (SELECT count(DISTINCT in_reply_to_id) FROM conversations_message
             WHERE channel = %(c)s AND author = 'bot' AND delivery_state = 'sent'),
          (SELECT count(*) FROM conversations_message
             WHERE channel = %(c)s AND author = 'bot' AND delivery_state <> 'sent')
        """,
        {"c": channel},
    ).fetchone()


def database_check(conn, channel: str) -> dict:
    """The replies as the database has them: per customer message, its bot replies by delivery state."""
    row = conn.execute(
        """
        WITH customer AS (
          SELECT id FROM conversations_message
          WHERE channel = %(c)s AND direction = 'in' AND author = 'customer'
        ), per AS (
          SELECT c.id,
                 count(b.id) AS replies,
                 count(b.id) FILTER (WHERE b.delivery_state = 'sent') AS sent
          FROM customer c LEFT JOIN conversations_message b ON b.in_reply_to_id = c.id AND b.author = 'bot'
          GROUP BY c.id
        )
        SELECT
          (SELECT count(*) FROM per),
          (SELECT count(*) FROM per WHERE replies = 1 AND sent = 1),
          (SELECT count(*) FROM per WHERE replies = 0),
          (SELECT count(*) FROM per WHERE replies > 1),
          (SELECT count(*) FROM per WHERE replies >= 1 AND sent = 0),
          (SELECT count(*) FROM conversations_conversation WHERE channel = %(c)s),
          (SELECT count(DISTINCT account_id) FROM conversations_conversation WHERE channel = %(c)s),
          (SELECT count(*) FROM conversations_message WHERE channel = %(c)s AND author = 'bot'
             AND delivery_attempts > 1),
          (SELECT extract(epoch FROM max(delivered_at)) FROM conversations_message
             WHERE channel = %(c)s AND author = 'bot')
        """,
        {"c": channel},
    ).fetchone()
    states = dict(
        conn.execute(
            "SELECT delivery_state, count(*) FROM conversations_message"
            " WHERE channel = %s AND author = 'bot' GROUP BY 1",
            [channel],
        ).fetchall()
    )
    ids = conn.execute(
        "SELECT c.external_id, m.external_id FROM conversations_message m"
        " JOIN conversations_conversation c ON c.id = m.conversation_id"
        " WHERE m.channel = %s AND m.author = 'bot' AND m.delivery_state = 'sent'",
        [channel],
    ).fetchall()
    keys = ("customers", "once", "without", "many", "unsent", "conversations", "accounts", "retried", "last")
    return {**dict(zip(keys, row, strict=True)), "states": states, "ids": ids}


# --- one channel -----------------------------------------------------------


def run_channel(channel, args, base_env: dict, db_url: str, redis_url: str) -> dict:
    """The stack started afresh for one channel, the load, the drain, the checks and /health."""
    total = args.serial + args.events + args.open_events
    fake = channel.fake(total)
    # A process of its own, at the workers' niceness (fork: the bound socket and the fake's maps go with it).
    fake_process = multiprocessing.get_context("fork").Process(
        target=serve_fake, args=(fake, args.worker_nice), daemon=True
    )
    fake_process.start()
    env = {**base_env, **channel.env(fake)}
    fresh_state(db_url, redis_url)
    port = free_port()
    logdir = Path(tempfile.mkdtemp(prefix=f"bench-webhook-{channel.name}-"))
    services = Services(env, logdir)
    print(f"\n===== {channel.name}: {channel.describe()}; fake API on :{fake.port}")
    result = None
    try:
        start_services(services, args, port)
        wait_for_health(port, services)
        print(
            f"gunicorn on :{port} ({args.gunicorn_workers} workers × {args.gunicorn_threads} threads), "
            f"{args.qclusters} qcluster{'s' if args.qclusters != 1 else ''} × {args.q_workers} workers at nice "
            f"{args.worker_nice}; logs in {logdir}"
        )
        result = measure(channel, args, port, fake, services, db_url)
    finally:
        services.stop()
        fake_process.terminate()
        fake_process.join(timeout=10)
        fake.server_close()
        trouble = services.trouble()
        print(f"{channel.name}: gunicorn and qclusters stopped; load average {_load()}")
        if result is not None:
            result["trouble"] = trouble
        for name, lines in trouble.items():
            if lines:
                print(f"  {name}.log: {len(lines)} lines of trouble, e.g.:")
                for line in lines[:8]:
                    print(f"    {line[:300]}")
        if result is not None and result["ok"] and not any(trouble.values()):
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print(f"  logs kept in {logdir}")
    return result


def measure(channel, args, port: int, fake: FakeServer, services: Services, db_url: str) -> dict:
    unit = channel.unit
    serial_bodies = channel.build(0, args.serial)
    bodies = channel.build(args.serial, args.events)
    open_bodies = channel.build(args.serial + args.events, args.open_events)
    total = len(serial_bodies) + len(bodies) + len(open_bodies)
    post = {"port": port, "method": "POST", "path": channel.path, "headers": channel.headers}

    print(f"\nload average before: {_load()}")
    serial = None
    if serial_bodies:
        serial = drive(bodies=serial_bodies, concurrency=1, processes=1, **post)
        print_run(f"{unit}s one at a time (also the warm-up)", serial)
    t_load = time.time()
    closed = drive(bodies=bodies, concurrency=args.concurrency, processes=args.load_processes, **post)
    print_run(f"POST {channel.path}", closed)
    services.check()
    open_run = None
    if open_bodies:
        # A channel posts an event when it happens, not when the last one was
        # answered: the same endpoint at a share of the throughput just
        # measured, while the workers are still answering the burst.
        rate = max(1.0, closed["rps"] * args.open_share)
        open_run = drive(
            bodies=open_bodies, concurrency=args.concurrency, processes=args.load_processes, rate=rate, **post
        )
        print_run(f"POST {channel.path} at {rate:.0f}/s (open loop)", open_run, closed_loop=False)
        services.check()

    # The drain: every customer message has a delivered reply.
    print(f"\nload average after the {unit}s: {_load()}")
    conn = db_connect(db_url)
    t_drain = time.time()
    deadline = t_drain + args.drain_timeout
    last_print = 0.0
    while True:
        customers, answered, unsent = drain_counts(conn, channel.name)
        now = time.time()
        done = customers >= total and answered >= customers
        if done or now >= deadline or now - last_print >= 5:
            print(
                f"  drain +{now - t_drain:5.1f} s: {customers} messages, {answered} answered and sent, "
                f"{unsent} replies not sent (yet), {sum(fake_counts(fake.port)['replies'].values())} at the fake API"
            )
            last_print = now
        if done or now >= deadline:
            break
        services.check()
        time.sleep(0.5)
    drain_s = time.time() - t_drain
    # A late duplicate (a sweep, a retry) would come after the last first reply: give it a moment.
    time.sleep(2)
    db = database_check(conn, channel.name)
    conn.close()

    counts = fake_counts(fake.port)
    expected = channel.expected(total)
    at_fake = channel.reply_check(counts, expected)
    # The id each sent reply was recorded with is the one the fake gave its dialog last.
    mismatched = sum(1 for conv, mid in db["ids"] if counts["last_id"].get(channel.dialog_of(conv)) != mid)
    distinct_ids = len({mid for _conv, mid in db["ids"]})
    span = float(db["last"]) - t_load if db["last"] else None

    print(
        f"\ndrain: {'done' if done else 'NOT done'} {drain_s:.1f} s after the load ended"
        + (f"; last reply {span:.1f} s after the load began" if span else "")
    )
    if span:
        print(f"  worker throughput ≈ {total / max(0.001, span):.0f} replies/s over the run")
    print(
        f"  fake API: {at_fake['sends']} reply sends for {total} {unit}s"
        + (f" (+ {at_fake['media']} picture sends)" if at_fake["media"] else "")
        + f"; dialogs with exactly one reply {at_fake['once']}, with none {len(at_fake['zero'])}, "
        f"with more than one {len(at_fake['many'])}"
    )
    if at_fake["zero"]:
        print(f"  without a reply: {', '.join(at_fake['zero'][:10])}{' ...' if len(at_fake['zero']) > 10 else ''}")
    if at_fake["many"]:
        shown = ", ".join(f"{d}×{counts['replies'][d]}+{counts['media'][d]}" for d in at_fake["many"][:10])
        print(f"  duplicated (texts+pictures): {shown}")
    if at_fake["strangers"]:
        print(f"  replies to {len(at_fake['strangers'])} dialogs the bench never wrote from")
    if counts["refused"]:
        print(f"  refused by the fake: {dict(counts['refused'])}")
    if counts["other"]:
        print(f"  other methods: {dict(counts['other'])}")
    print(
        f"  database: {db['customers']} customer messages in {db['conversations']} conversations "
        f"({db['accounts']} channel account{'s' if db['accounts'] != 1 else ''}); "
        f"with one sent reply {db['once']}, with none {db['without']}, "
        f"with more than one {db['many']}, reply not sent {db['unsent']}; bot replies by state "
        f"{ {k or '-': v for k, v in sorted(db['states'].items())} }, {db['retried']} sent after a retry"
    )
    print(
        f"  outgoing ids: {len(db['ids'])} sent replies carry {distinct_ids} distinct ids "
        f"(they repeat across {'portals' if channel.name == 'bitrix24' else 'chats'}); "
        f"{mismatched} differ from the id the fake gave"
    )

    print(f"\nload average before /health: {_load()}")
    get = {"port": port, "method": "GET", "path": "/health"}
    if args.serial:
        print_run("GET /health one at a time", drive(bodies=[None] * args.serial, concurrency=1, processes=1, **get))
    health = drive(bodies=[None] * args.events, concurrency=args.concurrency, processes=args.load_processes, **get)
    print_run("GET /health", health)
    print(f"load average after: {_load()}")

    # Lost: never recorded, or recorded without a reply or with one never sent.
    db_lost = (total - db["customers"]) + db["without"] + db["unsent"]
    runs = [r for r in (serial, closed, open_run) if r]
    acked = sum(r["statuses"].get("200", 0) for r in runs)
    non_200 = Counter()
    for r in runs:
        non_200.update({k: v for k, v in r["statuses"].items() if k != "200"})
    share = closed["rps"] / health["rps"]
    targets = [
        (
            f"every {unit} acknowledged with 200",
            f"{acked}/{total} ({sum(non_200.values())} non-200{': ' + str(dict(non_200)) if non_200 else ''})",
            acked == total,
        ),
        (
            f"throughput ≥ {TARGET_THROUGHPUT_SHARE:.0%} of /health's",
            f"{closed['rps']:.0f} vs {health['rps']:.0f} req/s ({share:.0%})",
            share >= TARGET_THROUGHPUT_SHARE,
        ),
        (
            f"closed loop p50 / p99 ({args.concurrency} conn.)",
            f"{closed['p50']:.1f} / {closed['p99']:.1f} ms (/health {health['p50']:.1f} / {health['p99']:.1f})",
            None,
        ),
    ]
    if open_run:
        targets.append(
            (
                f"open loop p99 < {TARGET_OPEN_P99_MS:.0f} ms",
                f"{open_run['p99']:.1f} ms at {open_run['rps']:.0f}/s (p50 {open_run['p50']:.1f})",
                open_run["p99"] < TARGET_OPEN_P99_MS,
            )
        )
    targets += [
        (
            f"one reply per {unit} (fake API)",
            f"{at_fake['once']}/{total} once, {len(at_fake['zero'])} lost, {len(at_fake['many'])} duplicated",
            at_fake["once"] == total and not at_fake["strangers"] and not counts["refused"],
        ),
        (
            f"one reply per {unit} (database)",
            f"{db['once']}/{total} sent once, {db_lost} lost, {db['many']} duplicated",
            db["customers"] == total and db["once"] == total and not db["many"] and not mismatched,
        ),
    ]
    print(
        f"\n== {channel.name}: {total} {unit}s ({len(serial_bodies)} serial + {len(bodies)} at "
        f"{args.concurrency} connections + {len(open_bodies)} open loop)"
    )
    print_targets([(channel.name, *t) for t in targets])
    if closed["p99"] >= TARGET_OPEN_P99_MS:
        little = args.concurrency / closed["rps"] * 1000
        print(
            f"note: with {args.concurrency} requests always in flight, Little's law puts the closed loop's mean "
            f"latency at {args.concurrency} / {closed['rps']:.0f} per s = {little:.0f} ms whatever the code does; "
            f"p99 < {TARGET_OPEN_P99_MS:.0f} ms there needs > {args.concurrency / TARGET_OPEN_P99_MS * 1000:.0f} req/s"
        )
    return {"targets": targets, "ok": all(met is not False for *_x, met in targets)}


def print_targets(rows: list) -> None:
    print(f"{'channel':<10}{'target':<40}{'measured':<58}verdict")
    for name, target, measured, met in rows:
        verdict = "—" if met is None else "met" if met else "MISSED"
        print(f"{name:<10}{target:<40}{measured:<58}{verdict}")


# --- main ------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--channel", choices=(*CHANNELS, "both"), default="both", help="the channel to drive (default both, in turn)"
    )
    parser.add_argument("--events", type=int, default=2000, help="events (updates) under load (default 2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="connections in flight (default 50)")
    parser.add_argument("--serial", type=int, default=100, help="events and /health requests sent one at a time first")
    parser.add_argument("--gunicorn-workers", type=int, default=8, help="gunicorn workers (default 8)")
    parser.add_argument(
        "--gunicorn-threads", type=int, default=1, help="threads per worker (default 1: sync workers; more: gthread)"
    )
    parser.add_argument("--qclusters", type=int, default=2, help="qcluster processes, as worker nodes (default 2)")
    parser.add_argument(
        "--q-workers",
        type=int,
        default=1,
        help="workers of each qcluster (default 1, Q_WORKERS: two nodes of one worker on this machine's 2 cores)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=19,
        help="niceness of the qclusters (default 19, as `make run`: on one machine the worker yields to the web "
        "server in a burst, so every event is acknowledged at once and the replies follow; 0 runs both alike)",
    )
    parser.add_argument("--load-processes", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument(
        "--open-events", type=int, default=1000, help="events then sent open loop (default 1000; 0: none)"
    )
    parser.add_argument(
        "--open-share",
        type=float,
        default=0.5,
        help="open-loop rate as a share of the closed-loop throughput (default 0.5)",
    )
    parser.add_argument("--portals", type=int, default=20, help="Bitrix24 portals the events come from (default 20)")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds to wait for the replies")
    args = parser.parse_args()
    if args.events < 1 or args.concurrency < 1 or args.qclusters < 1:
        parser.error("--events, --concurrency and --qclusters must be at least 1")

    db_url = os.environ.get("BENCH_WEBHOOK_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_WEBHOOK_REDIS_URL", DEFAULT_REDIS_URL)
    ensure_database(db_url)
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "Q_WORKERS": str(args.q_workers),
        "LLM_PROVIDER": "",
        "STT_PROVIDER": "",
    }
    base_env.pop("CHANNEL_SENDERS", None)  # the default: every channel through its own sender

    print(f"database {urlsplit(db_url).path.lstrip('/')}, redis {redis_url}")
    t = time.perf_counter()
    manage(base_env, "migrate", "--noinput")
    manage(base_env, "load_demo", "--if-empty")
    print(f"migrate + load_demo: {time.perf_counter() - t:.1f} s")

    names = CHANNELS if args.channel == "both" else (args.channel,)
    channels = {"bitrix24": Bitrix24Channel, "telegram": TelegramChannel}
    results = {}
    try:
        for name in names:
            results[name] = run_channel(channels[name](args), args, base_env, db_url, redis_url)
    except KeyboardInterrupt:
        print("\ninterrupted")
        return 130

    print(
        f"\n===== summary: {os.cpu_count()} CPUs, gunicorn {args.gunicorn_workers} workers × "
        f"{args.gunicorn_threads} threads, {args.qclusters} qcluster{'s' if args.qclusters != 1 else ''} × "
        f"{args.q_workers} workers at nice "
        f"{args.worker_nice}, {args.serial} serial + {args.events} closed loop + {args.open_events} open loop "
        f"per channel"
    )
    if "telegram" in results:
        print(
            f"Telegram: TELEGRAM_RATE_PER_BOT_PER_S={TELEGRAM_BENCH_RATE_PER_BOT} (Telegram's real ~30/s per bot "
            "would make the drain take minutes and is not what is measured)"
        )
    if "bitrix24" in results:
        print(f"Bitrix24: {args.portals} portals on the webhook's token, B24_RATE_LIMIT_PER_S=0")
    print_targets([(name, *t) for name, r in results.items() for t in r["targets"]])
    missed = [f"{name}: {t[0]}" for name, r in results.items() for t in r["targets"] if t[2] is False]
    if missed:
        print("MISSED: " + "; ".join(missed))
    trouble = {
        f"{name}/{log}": len(lines) for name, r in results.items() for log, lines in r["trouble"].items() if lines
    }
    if trouble:
        print(f"error lines in the services' logs: {trouble}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
