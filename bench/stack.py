"""The real stack as processes, shared by the webhook bench and the fault drills.

- the customers' questions and the two channels' events (`Bitrix24Channel`,
  `TelegramChannel`: each event with its own dialog, so a dialog's replies are
  that event's);
- fake channel APIs (`FakeBitrix24`, `FakeTelegram`) that answer the sends in
  the channel's shape and count them per dialog, served from a process of
  their own (`start_fake`) and read over HTTP (`fake_counts`);
- the load generator (`drive`, `Load`: closed or open loop, from processes,
  every request's status kept with the caller's key);
- the services (`Services`: gunicorn and `manage.py qcluster` processes, each in
  a process group of its own, started, killed and restarted by name);
- what the database says about the replies (`database_check`,
  `replies_by_dialog`, `exactly_once`);
- for the drills, a private PostgreSQL cluster (`PrivatePostgres`: initdb into
  a temporary folder, its own port) and a private Redis (`PrivateRedis`, AOF
  on, its own port) that a drill may stop and start without touching the
  machine's, and `DrillStack`, which puts all of it together for both channels
  at once.
"""

import contextlib
import dataclasses
import glob
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
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.database import ensure_database

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
FIXTURES = ROOT / "tests" / "integrations"
CHANNELS = ("bitrix24", "telegram")
# Telegram's own limit is about 30 messages a second per bot: a drain would
# take minutes at it, and it is not what the bench and the drills measure.
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
        self.reply_at: dict[str, float] = {}  # dialog -> when its last reply was sent (time.time())
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
                "reply_at": dict(self.reply_at),
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
    return {
        name: (dict(values) if name in ("last_id", "reply_at") else Counter(values)) for name, values in data.items()
    }


def serve_fake(fake: "FakeServer", nice: int) -> None:
    """The fake API stands in for a system on another machine: it must not take the web server's CPU here."""
    if nice:
        os.nice(nice)
    fake.serve_forever()


def start_fake(fake: "FakeServer", nice: int) -> multiprocessing.Process:
    """The fake served from a process of its own (fork: the bound socket and the fake's maps go with it)."""
    process = multiprocessing.get_context("fork").Process(target=serve_fake, args=(fake, nice), daemon=True)
    process.start()
    return process


def stop_fake(fake: "FakeServer", process: multiprocessing.Process) -> None:
    process.terminate()
    process.join(timeout=10)
    fake.server_close()


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
            self.server.reply_at[dialog] = time.time()
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
                self.server.reply_at[key] = time.time()
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
    # The settings that leave the channel off, for a stack that runs the other one alone.
    off = {"B24_WEBHOOK_URL": "", "B24_APPLICATION_TOKEN": ""}

    def __init__(self, portals: int = 20):
        self.portals = max(1, portals)
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
    off = {"TELEGRAM_BOT_TOKEN": ""}

    def __init__(self):
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

    def dialog(self, i: int) -> str:
        return str(self.chat(i))

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


class Req(NamedTuple):
    """One request of a load; `key` is the caller's (say, an event's channel and number), kept with its result."""

    path: str
    body: bytes | None = None
    headers: dict | None = None
    method: str = "POST"
    key: object = None


class Result(NamedTuple):
    status: int | str  # the HTTP status, or the name of the error that came instead (ConnectionResetError...)
    seconds: float  # the latency; in an open loop from when the request was due
    began: float  # time.time()
    ended: float
    key: object
    retry_after: str | None  # the answer's Retry-After header


def _load_process(port, requests, threads, start_at, out, schedule=None, timeout=60.0):
    """One load process: `threads` connections over its share of the requests.

    Closed loop without a schedule: each connection sends its next request as
    soon as the last is answered. With one (seconds after start_at, one per
    request), open loop: a request is due at its time whether or not earlier
    ones were answered, and its latency counts from then, so time spent waiting
    for a free connection counts too.
    """
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    for i, request in enumerate(requests):
        jobs.put((request, schedule[i] if schedule else None))
    results = []
    lock = threading.Lock()
    # perf_counter is per process: wall-clock offsets for the schedule and the overall duration.
    offset = time.time() - time.perf_counter()
    start_perf = start_at - offset

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        mine = []
        while True:
            try:
                request, due = jobs.get_nowait()
            except queue.Empty:
                break
            if due is not None:
                time.sleep(max(0.0, start_perf + due - time.perf_counter()))
            t0 = time.perf_counter()
            retry_after = None
            try:
                conn.request(
                    request.method,
                    request.path,
                    body=request.body,
                    headers={"Host": "127.0.0.1", **(request.headers or {})},
                )
                response = conn.getresponse()
                response.read()
                status = response.status
                retry_after = response.getheader("Retry-After")
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
            t1 = time.perf_counter()
            began = t0 if due is None else min(t0, start_perf + due)
            mine.append((status, t1 - began, began, t1, request.key, retry_after))
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
    out.put([Result(s, d, a + offset, b + offset, k, r) for s, d, a, b, k, r in results])


class Load:
    """Requests sent in the background from `processes` load processes with up to `concurrency` connections.

    Closed loop without a `rate` (all connections always busy), open loop at
    `rate` requests a second (see _load_process). `result()` waits for the end
    and summarizes; its "results" are every request's Result.
    """

    def __init__(
        self,
        port: int,
        requests: list[Req],
        concurrency: int,
        processes: int = 2,
        rate: float | None = None,
        timeout: float = 60.0,
    ):
        if not requests:
            raise ValueError("a load of no requests")
        processes = max(1, min(processes, concurrency, len(requests)))
        ctx = multiprocessing.get_context("fork")
        self.out = ctx.Queue()
        self.concurrency = concurrency
        self.start_at = time.time() + 0.5
        self.procs = []
        for p in range(processes):
            share = requests[p::processes]
            schedule = [(p + j * processes) / rate for j in range(len(share))] if rate else None
            threads = concurrency // processes + (1 if p < concurrency % processes else 0)
            proc = ctx.Process(
                target=_load_process, args=(port, share, threads, self.start_at, self.out, schedule, timeout)
            )
            proc.start()
            self.procs.append(proc)

    def result(self, during=None) -> dict:
        """Wait for every request's answer; `during()` is called about twice a second meanwhile."""
        results = []
        for _ in self.procs:
            while True:
                try:
                    results.extend(self.out.get(timeout=0.5))
                    break
                except queue.Empty:
                    if during is not None:
                        during()
        for proc in self.procs:
            proc.join()
        return summarize(results, self.concurrency)


def redeliver(port: int, requests: list[Req], first: list[Result], *, rounds: int = 3, during=None) -> list[list]:
    """Post again what was not answered 200, as a channel that retries would (Telegram retries any answer that
    is not 2xx): after the Retry-After asked for (5 s without one), up to `rounds` times; each round's results."""
    by_key = {r.key: r for r in requests}
    pending = [r for r in first if r.status != 200]
    done = []
    for _round in range(rounds):
        if not pending:
            break
        waits = [int(r.retry_after) for r in pending if (r.retry_after or "").isdigit()]
        pause = min(max(waits, default=5), 60)
        deadline = time.time() + pause
        while time.time() < deadline:
            if during is not None:
                during()
            time.sleep(0.5)
        result = Load(port, [by_key[r.key] for r in pending], concurrency=10).result(during)
        done.append(result["results"])
        pending = [r for r in result["results"] if r.status != 200]
    return done


def print_timeline(results: list[Result], t0: float, title: str) -> None:
    """Statuses per second since t0 (by when each request was due), runs of all-200 seconds merged."""
    seconds: dict[int, Counter] = {}
    for r in results:
        seconds.setdefault(int(r.began - t0), Counter())[str(r.status)] += 1
    print(title)
    run_start = run_end = None
    run_count = 0

    def flush():
        if run_start is not None:
            span = f"{run_start} s" if run_start == run_end else f"{run_start}–{run_end} s"
            print(f"    +{span}: 200: {run_count}")

    for second in sorted(seconds):
        counts = seconds[second]
        if set(counts) == {"200"} and (run_end is None or second == run_end + 1):
            if run_start is None:
                run_start = second
            run_end, run_count = second, run_count + counts["200"]
            continue
        flush()
        run_start = run_end = None
        run_count = 0
        if set(counts) == {"200"}:
            run_start = run_end = second
            run_count = counts["200"]
            continue
        print(f"    +{second} s: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    flush()


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
    """Send every body to one path with up to `concurrency` connections; their statuses and timings.

    Closed loop (all connections always busy), or open loop at `rate` requests a second.
    """
    requests = [Req(path, body, headers if body is not None else None, method, i) for i, body in enumerate(bodies)]
    return Load(port, requests, concurrency, processes, rate).result()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def summarize(results: list[Result], concurrency: int) -> dict:
    latencies = sorted(r.seconds * 1000 for r in results)
    wall = max(r.ended for r in results) - min(r.began for r in results)
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
        "statuses": Counter(str(r.status) for r in results),
        "results": results,
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


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


# Log lines that tell something went wrong in a service (a 500, a failed task, a killed worker).
TROUBLE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Internal Server Error|WORKER TIMEOUT")


def process_children() -> dict[int, list[int]]:
    """Every process's children (by /proc), each list by pid."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": the name may hold spaces and parentheses.
        pid, ppid = int(text.split(" ", 1)[0]), int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    return {pid: sorted(kids) for pid, kids in children.items()}


class Services:
    """gunicorn and the qclusters as child processes, each in a process group of its own.

    A service can be killed (its whole group, SIGKILL) and started again with
    the same command line; its log goes on in the same file.
    """

    def __init__(self, env: dict, logdir: Path):
        self.env = env
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.argv: dict[str, list[str]] = {}
        self.restarts: Counter = Counter()  # name -> times started again

    def start(self, name: str, argv: list[str]) -> None:
        self.argv[name] = argv
        with open(self.logdir / f"{name}.log", "ab") as log:  # the child keeps its own copy open
            # A process group of its own (to be stopped whole) in this session: with
            # Linux's autogroup scheduling every session shares the CPU equally, so
            # a worker in a session of its own would take half of it whatever its nice.
            self.procs[name] = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )

    def exited(self) -> dict[str, int]:
        """The services whose main process has exited, with its exit code."""
        return {name: proc.returncode for name, proc in self.procs.items() if proc.poll() is not None}

    def check(self) -> None:
        for name, code in self.exited().items():
            raise RuntimeError(f"{name} exited with {code}:\n{self.tail(name)}")

    def pids(self, name: str) -> list[int]:
        """The service's main process and its descendants, parents before children, each level by pid."""
        children = process_children()
        found, level = [], [self.procs[name].pid]
        while level:
            found += level
            level = sorted(child for pid in level for child in children.get(pid, ()))
        return found

    def kill(self, name: str) -> list[int]:
        """SIGKILL to every process of the service (its process group), as a crash of its node would; their pids."""
        proc = self.procs[name]
        pids = self.pids(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return pids

    def restart(self, name: str) -> None:
        """The service started again with its command line (after it exited or was killed)."""
        proc = self.procs[name]
        if proc.poll() is None:
            raise RuntimeError(f"{name} is still running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what its main process left behind
        self.restarts[name] += 1
        self.start(name, self.argv[name])

    def supervise(self) -> list[str]:
        """Start again whatever exited, as a container's restart policy (`restart: unless-stopped`) would."""
        restarted = []
        for name, code in self.exited().items():
            print(f"  ! {name} exited with {code}: started again (a restart policy would)")
            self.restart(name)
            restarted.append(name)
        return restarted

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def trouble(self) -> dict[str, list[str]]:
        """Each log's lines that tell of an error."""
        found = {}
        for name in self.procs:
            path = self.logdir / f"{name}.log"
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            found[name] = [line for line in lines if TROUBLE.search(line)]
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
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def start_gunicorn(services: Services, port: int, workers: int = 8, threads: int = 1) -> None:
    services.start(
        "gunicorn",
        [
            GUNICORN,
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ],
    )


def start_qcluster(services: Services, name: str, nice: int) -> None:
    """A worker node: a cluster of its own on the one broker, taking tasks from the same queue as the others."""
    services.start(name, ["nice", "-n", str(nice), PYTHON, "manage.py", "qcluster"])


def start_services(
    services: Services, port: int, *, gunicorn_workers: int, gunicorn_threads: int, qclusters: int, worker_nice: int
) -> None:
    start_gunicorn(services, port, gunicorn_workers, gunicorn_threads)
    for n in range(1, qclusters + 1):
        start_qcluster(services, f"qcluster{n}", worker_nice)


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


# --- what the database says ------------------------------------------------


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


def replies_by_dialog(conn, channel) -> dict[str, dict]:
    """Per dialog of the channel (its conversation's id as the fake API knows it): its customer messages and
    its bot replies, sent and by delivery state."""
    rows = conn.execute(
        """
        SELECT c.external_id,
               count(m.id) FILTER (WHERE m.direction = 'in' AND m.author = 'customer'),
               count(m.id) FILTER (WHERE m.author = 'bot'),
               count(m.id) FILTER (WHERE m.author = 'bot' AND m.delivery_state = 'sent'),
               coalesce(string_agg(DISTINCT coalesce(nullif(m.delivery_state, ''), '-'), ',')
                        FILTER (WHERE m.author = 'bot'), '')
        FROM conversations_conversation c LEFT JOIN conversations_message m ON m.conversation_id = c.id
        WHERE c.channel = %s
        GROUP BY c.external_id
        """,
        [channel.name],
    ).fetchall()
    found = {}
    for external_id, customers, replies, sent, states in rows:
        entry = found.setdefault(channel.dialog_of(external_id), {"customers": 0, "replies": 0, "sent": 0})
        entry["customers"] += customers
        entry["replies"] += replies
        entry["sent"] += sent
        entry["states"] = states
    return found


def exactly_once(channel, expected: set[str], counts: dict, db: dict[str, dict], posted: set[str]) -> dict:
    """Each expected dialog (one event each) against the fake's counts and the database's replies.

    `posted` is every dialog an event was sent for: a reply to one of them that
    is not expected (its event was refused) is counted apart, a reply to any
    other dialog is a stranger's.
    """
    at_fake = channel.reply_check(counts, expected)
    replied = set(counts["replies"]) | set(counts["media"])
    rows = {d: db.get(d, {"customers": 0, "replies": 0, "sent": 0}) for d in expected}
    return {
        "expected": len(expected),
        "fake_once": at_fake["once"],
        "fake_lost": at_fake["zero"],
        "fake_many": at_fake["many"],
        "refused_answered": sorted(d for d in replied if d in posted and d not in expected),
        "strangers": sorted(d for d in replied if d not in posted),
        "db_once": sum(1 for r in rows.values() if r["customers"] == 1 and r["replies"] == 1 and r["sent"] == 1),
        "db_unrecorded": sorted(d for d, r in rows.items() if r["customers"] == 0),
        "db_without": sorted(d for d, r in rows.items() if r["customers"] and r["replies"] == 0),
        "db_unsent": sorted(d for d, r in rows.items() if r["replies"] and r["sent"] == 0),
        "db_many": sorted(d for d, r in rows.items() if r["customers"] > 1 or r["replies"] > 1),
        "states": Counter(r.get("states", "") or "none" for r in rows.values()),
        "refused": dict(counts["refused"]),
    }


def once_met(found: dict) -> bool:
    return (
        found["fake_once"] == found["expected"]
        and not found["strangers"]
        and not found["refused"]
        and found["db_once"] == found["expected"]
    )


def once_rows(found: dict[str, dict], label: str) -> list[tuple]:
    """Target rows of exactly_once's findings: at the fake API and in the database, per channel."""
    rows = []
    for name, f in found.items():
        rows.append(
            (
                name,
                f"{label} (fake API)",
                f"{f['fake_once']}/{f['expected']} once, {len(f['fake_lost'])} lost, {len(f['fake_many'])} duplicated",
                f["fake_once"] == f["expected"] and not f["strangers"] and not f["refused"],
            )
        )
        rows.append(
            (
                name,
                "one sent reply each (database)",
                f"{f['db_once']}/{f['expected']}; {len(f['db_unrecorded'])} unrecorded, {len(f['db_without'])} "
                f"without, {len(f['db_unsent'])} unsent",
                once_met(f),
            )
        )
    return rows


def print_once(name: str, found: dict, unit: str = "event") -> None:
    def few(items: list) -> str:
        return ", ".join(items[:8]) + (" ..." if len(items) > 8 else "")

    print(
        f"  {name}: {found['expected']} acknowledged {unit}s; at the fake API {found['fake_once']} answered once, "
        f"{len(found['fake_lost'])} not answered, {len(found['fake_many'])} more than once"
    )
    for label, key in (("not answered", "fake_lost"), ("answered more than once", "fake_many")):
        if found[key]:
            print(f"    {label} (dialogs): {few(found[key])}")
    print(
        f"    in the database {found['db_once']} with one sent reply; {len(found['db_unrecorded'])} not recorded, "
        f"{len(found['db_without'])} without a reply, {len(found['db_unsent'])} reply not sent, "
        f"{len(found['db_many'])} with more than one; bot replies by state {dict(found['states'])}"
    )
    for label, key in (
        ("not recorded", "db_unrecorded"),
        ("without a reply", "db_without"),
        ("reply not sent", "db_unsent"),
    ):
        if found[key]:
            print(f"    {label} (dialogs): {few(found[key])}")
    if found["refused_answered"]:
        print(f"    answered though their {unit} was refused: {len(found['refused_answered'])}")
    if found["strangers"]:
        print(f"    replies to {len(found['strangers'])} dialogs no {unit} came from: {few(found['strangers'])}")
    if found["refused"]:
        print(f"    sends the fake refused: {found['refused']}")


def print_targets(rows: list) -> None:
    """(channel, target, measured, met) rows; met None for a figure without a target."""
    print(f"{'channel':<10}{'target':<40}{'measured':<58}verdict")
    for name, target, measured, met in rows:
        verdict = "—" if met is None else "met" if met else "MISSED"
        print(f"{name:<10}{target:<40}{measured:<58}{verdict}")


def drill_verdict(stack, title: str, rows: list) -> int:
    """A drill's closing table under its title; the exit status (1 when a target is missed, its logs kept)."""
    print(f"\n== {title}")
    print_targets(rows)
    missed = [row for row in rows if row[3] is False]
    if missed:
        stack.keep_logs = True
        print("MISSED: " + "; ".join(f"{row[0]}: {row[1]}" for row in missed))
    return 1 if missed else 0


@contextlib.contextmanager
def warmed_up_stack(name: str, args, *, warmup: int, per_channel: int):
    """(DrillStack, warm-up results) for a load drill: web and workers up, `warmup` events sent one at a time."""
    with DrillStack(name, events=warmup + per_channel, portals=args.portals, worker_nice=args.worker_nice) as stack:
        stack.keep_logs = args.keep_logs
        stack.start_web()
        stack.start_workers()
        print(stack.describe())
        warm_requests = stack.events_of(0, warmup)
        warm = Load(stack.port, warm_requests, concurrency=1, processes=1).result()
        print_run(f"warm-up: {len(warm_requests)} events one at a time", warm)
        yield stack, warm


@dataclasses.dataclass
class Outage:
    """When a load drill's fault began and ended, and the load it ran under."""

    load: "Load"
    t0: float
    t_stop: float
    t_start: float
    t_up: float
    took_stop: float
    took_start: float


def load_with_outage(stack, requests, args, *, what: str, stop, start) -> Outage:
    """An open-loop load of `requests` at args.rate; `stop()` at args.fault_at into it, `start()` args.down later.

    The load keeps going meanwhile; services that exit are started again (a restart policy).
    """
    load = Load(stack.port, requests, concurrency=50, rate=args.rate, timeout=30)
    t0 = load.start_at
    time.sleep(max(0.0, t0 + args.fault_at - time.time()))
    t_stop = time.time()
    took_stop = stop()
    print(f"  +{t_stop - t0:5.1f} s: {what} stopped in {took_stop:.2f} s")
    while time.time() < t_stop + args.down:
        stack.services.supervise()
        time.sleep(0.2)
    t_start = time.time()
    took_start = start()
    return Outage(load, t0, t_stop, t_start, time.time(), took_stop, took_start)


def final_statuses(warm: dict, first: list, rounds: list) -> dict:
    """Each event's last status: the warm-up's, the load's, then each redelivery's."""
    final = {r.key: r.status for r in warm["results"] + first}
    for results in rounds:
        final.update({r.key: r.status for r in results})
    return final


def add_outage_arguments(parser, *, service: str, seconds: float, fault_at: float, down: float) -> None:
    """The options of a load drill that stops `service` for a while (load_with_outage)."""
    parser.add_argument("--rate", type=float, default=50, help="events a second, both channels together (50)")
    parser.add_argument("--seconds", type=float, default=seconds, help=f"seconds of load ({seconds:g})")
    parser.add_argument(
        "--fault-at", type=float, default=fault_at, help=f"seconds into the load {service} stops ({fault_at:g})"
    )
    parser.add_argument("--down", type=float, default=down, help=f"seconds {service} stays stopped ({down:g})")


def add_drill_arguments(parser, *, drain_timeout: float, portals: bool = True) -> None:
    """The options every drill on DrillStack takes."""
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=drain_timeout,
        help=f"seconds to wait for the replies ({drain_timeout:g})",
    )
    if portals:
        parser.add_argument("--portals", type=int, default=5, help="Bitrix24 portals the events come from (5)")
        parser.add_argument("--worker-nice", type=int, default=19, help="niceness of the qclusters (19)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")


# --- a private PostgreSQL and Redis, for the drills --------------------------


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PrivatePostgres:
    """A PostgreSQL cluster of one run's own: initdb into `root`, trust auth, on its own port and socket folder.

    The machine's server (5432) is not touched: a drill may stop and start
    this one as it likes. fsync stays on, as in production.
    """

    def __init__(self, root: Path, port: int | None = None):
        initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
        if not initdbs:
            raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        self.bin = Path(initdbs[-1]).parent
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "postgres.log"
        self.port = port or free_port()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(_as_postgres([str(self.bin / program), *args]), capture_output=True, text=True, cwd="/")
        if check and result.returncode:
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            for path in (self.root, self.socket_dir):
                shutil.chown(path, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")

    def start(self) -> float:
        """Started and accepting connections; the seconds it took."""
        t = time.perf_counter()
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        return time.perf_counter() - t

    def stop(self, mode: str = "fast") -> float:
        """Stopped (`fast`: sessions ended, a clean shutdown; `immediate`: as a crash); the seconds it took."""
        t = time.perf_counter()
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        return time.perf_counter() - t

    def running(self) -> bool:
        return self.data.exists() and self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def close(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False)


class PrivateRedis:
    """A redis-server of one run's own on its own port, in this session.

    Append-only file on (as docker-compose.yml runs Redis: queued tasks survive
    a restart), RDB snapshots off. Stopped with SIGTERM it writes the AOF and
    exits, as `docker compose stop` would stop it.
    """

    def __init__(self, root: Path, port: int | None = None, *, appendonly: bool = True):
        self.root = root
        self.port = port or free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> float:
        """Started and answering PING (after loading its AOF); the seconds it took."""
        import redis

        t = time.perf_counter()
        self.root.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)]
        argv += ["--save", "", "--appendonly", "yes" if self.appendonly else "no"]
        argv += ["--logfile", str(self.root / "redis.log"), "--daemonize", "no"]
        self.proc = subprocess.Popen(argv, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.time() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"redis-server did not start:\n{self.tail()}") from None
                time.sleep(0.05)
        client.close()
        return time.perf_counter() - t

    def stop(self, sig: int = signal.SIGTERM) -> float:
        t = time.perf_counter()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        return time.perf_counter() - t

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        path = self.root / "redis.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def close(self) -> None:
        if self.running():
            self.stop()


def queue_length(redis_url: str) -> int | None:
    """Tasks waiting in django-q's Redis queues; None when Redis cannot be reached."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return sum(client.llen(key) for key in client.scan_iter("django_q:*:q"))
        finally:
            client.close()
    except redis.RedisError:
        return None


# --- the drills' stack --------------------------------------------------------


class DrillStack:
    """Both channels on one stack of a drill's own, as processes.

    A private PostgreSQL (database `storebot_drill`, migrated, demo catalog
    loaded) and Redis, the fake Bitrix24 REST and Bot API (each in a process of
    its own at the workers' niceness), gunicorn and `qclusters` qcluster
    processes of `q_workers` workers at nice `worker_nice`, on env with both
    channels set up (Bitrix24 in webhook mode from `portals` portals, the
    Telegram bot of the environment), no LLM, and SPOOL_DIR in the run's
    folder. `events` is how many events of each channel the fakes know dialogs
    for. Everything is stopped and the run's folder removed at the end; its logs
    are kept when `keep_logs` is set.
    """

    def __init__(
        self,
        name: str,
        *,
        events: int,
        portals: int = 5,
        gunicorn_workers: int = 8,
        qclusters: int = 2,
        q_workers: int = 1,
        worker_nice: int = 19,
        env: dict | None = None,
    ):
        self.name = name
        self.events = events
        self.gunicorn_workers = gunicorn_workers
        self.qclusters = qclusters
        self.q_workers = q_workers
        self.worker_nice = worker_nice
        self.extra_env = env or {}
        self.channels = {"bitrix24": Bitrix24Channel(portals), "telegram": TelegramChannel()}
        self.keep_logs = False
        self.root: Path | None = None
        self.pg: PrivatePostgres | None = None
        self.redis: PrivateRedis | None = None
        self.fakes: dict[str, FakeServer] = {}
        self.fake_procs: dict[str, multiprocessing.Process] = {}
        self.services: Services | None = None
        self._conn = None

    def __enter__(self) -> "DrillStack":
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def setup(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"drill-{self.name}-"))
        self.root.chmod(0o755)  # the postgres user goes through it to its cluster
        self.logdir = self.root / "logs"
        self.spool_dir = self.root / "spool"
        self.logdir.mkdir()
        self.spool_dir.mkdir()
        t = time.perf_counter()
        self.pg = PrivatePostgres(self.root / "pg")
        self.pg.init()
        self.pg.start()
        self.db_url = self.pg.url("storebot_drill")
        ensure_database(self.db_url)
        self.redis = PrivateRedis(self.root / "redis")
        self.redis.start()
        self.redis_url = self.redis.url(0)
        for name, channel in self.channels.items():
            self.fakes[name] = channel.fake(self.events)
            self.fake_procs[name] = start_fake(self.fakes[name], self.worker_nice)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.db_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "Q_WORKERS": str(self.q_workers),
            "LLM_PROVIDER": "",
            "STT_PROVIDER": "",
            "SPOOL_DIR": str(self.spool_dir),
            **self.channels["bitrix24"].env(self.fakes["bitrix24"]),
            **self.channels["telegram"].env(self.fakes["telegram"]),
            **self.extra_env,
        }
        self.env.pop("CHANNEL_SENDERS", None)  # the default: every channel through its own sender
        manage(self.env, "migrate", "--noinput")
        manage(self.env, "load_demo", "--if-empty")
        self.port = free_port()
        self.services = Services(self.env, self.logdir)
        print(
            f"stack of the drill in {self.root}: PostgreSQL {self.bin_version()} on :{self.pg.port}, Redis on "
            f":{self.redis.port} (AOF {'on' if self.redis.appendonly else 'off'}), fake Bitrix24 on "
            f":{self.fakes['bitrix24'].port}, fake Bot API on :{self.fakes['telegram'].port}; "
            f"initdb + migrate + load_demo {time.perf_counter() - t:.1f} s"
        )

    def bin_version(self) -> str:
        return self.pg.bin.parts[-2] if self.pg else "?"

    def start_web(self) -> None:
        start_gunicorn(self.services, self.port, self.gunicorn_workers)
        wait_for_health(self.port, self.services)

    def start_workers(self) -> None:
        for n in range(1, self.qclusters + 1):
            start_qcluster(self.services, f"qcluster{n}", self.worker_nice)

    def describe(self) -> str:
        return (
            f"gunicorn on :{self.port} ({self.gunicorn_workers} sync workers), {self.qclusters} qcluster"
            f"{'s' if self.qclusters != 1 else ''} × {self.q_workers} worker at nice {self.worker_nice}; "
            f"Bitrix24 from {self.channels['bitrix24'].portals} portals (webhook mode), Telegram "
            f"(TELEGRAM_RATE_PER_BOT_PER_S={TELEGRAM_BENCH_RATE_PER_BOT}); logs in {self.logdir}"
        )

    # --- events --------------------------------------------------------------

    def events_of(self, first: int, count: int) -> list[Req]:
        """`count` events of each channel (numbers first..first+count-1), the channels taking turns;
        each Req's key is (channel, number)."""
        built = {name: channel.build(first, count) for name, channel in self.channels.items()}
        return [
            Req(channel.path, built[name][n], channel.headers, key=(name, first + n))
            for n in range(count)
            for name, channel in self.channels.items()
        ]

    def dialogs(self, keys) -> dict[str, set[str]]:
        """The dialogs of (channel, number) keys, per channel."""
        found = {name: set() for name in self.channels}
        for name, n in keys:
            found[name].add(self.channels[name].dialog(n))
        return found

    # --- checks --------------------------------------------------------------

    def db(self):
        """A connection to the drill's database, made again after an outage."""
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT 1")
                return self._conn
            except Exception:
                self._conn.close()
        self._conn = db_connect(self.db_url)
        return self._conn

    def counts(self, name: str) -> dict:
        return fake_counts(self.fakes[name].port)

    def answered(self, expected: dict[str, set[str]]) -> tuple[int, int]:
        """Of the expected dialogs: (with a reply at the fake, with a sent reply in the database)."""
        at_fake = in_db = 0
        db_ok = True
        for name, dialogs in expected.items():
            replies = self.counts(name)["replies"]
            at_fake += sum(1 for d in dialogs if replies.get(d))
            if db_ok:
                try:
                    rows = replies_by_dialog(self.db(), self.channels[name])
                except Exception:
                    db_ok = False  # the database is down: the fake's figure alone
                    continue
                in_db += sum(1 for d in dialogs if rows.get(d, {}).get("sent"))
        return at_fake, (in_db if db_ok else -1)

    def wait_answered(
        self, expected: dict[str, set[str]], timeout: float, *, since: float, supervise: bool = True, extra=None
    ) -> dict:
        """Poll until every expected dialog has a reply at the fake and a sent one in the database, or `timeout`
        seconds; progress every 5 s (with what `extra()` says). Exited services are started again when
        `supervise` is set."""
        total = sum(len(d) for d in expected.values())
        deadline = time.time() + timeout
        last_print = 0.0
        while True:
            if supervise:
                self.services.supervise()
            at_fake, in_db = self.answered(expected)
            now = time.time()
            done = at_fake >= total and in_db >= total
            if done or now >= deadline or now - last_print >= 5:
                waiting = queue_length(self.redis_url)
                print(
                    f"  +{now - since:5.1f} s: {at_fake}/{total} answered at the fake, "
                    f"{in_db if in_db >= 0 else '?'}/{total} sent in the database, "
                    f"{'?' if waiting is None else waiting} tasks in the queue" + (f", {extra()}" if extra else "")
                )
                last_print = now
            if done or now >= deadline:
                return {"done": done, "at": now}
            time.sleep(0.5)

    def check_replies(self, expected: dict[str, set[str]], posted: dict[str, set[str]]) -> dict[str, dict]:
        conn = self.db()
        return {
            name: exactly_once(
                channel,
                expected[name],
                self.counts(name),
                replies_by_dialog(conn, channel),
                posted[name],
            )
            for name, channel in self.channels.items()
        }

    def pending_retries(self) -> int:
        return self.db().execute("SELECT count(*) FROM django_q_schedule WHERE schedule_type = 'O'").fetchone()[0]

    def spooled_files(self) -> int:
        """Events kept in SPOOL_DIR (files, its lock files aside), wherever the spool keeps them."""
        return sum(1 for path in self.spool_dir.rglob("*") if path.is_file() and path.suffix != ".lock")

    def spool_by_folder(self) -> dict[str, int]:
        found = Counter(
            str(path.parent.relative_to(self.spool_dir))
            for path in self.spool_dir.rglob("*")
            if path.is_file() and path.suffix != ".lock"
        )
        return dict(found)

    def explain(self, found: dict[str, dict], t0: float, limit: int = 6) -> None:
        """What the database holds for the dialogs left without a sent reply once (a few per channel)."""
        for name, f in found.items():
            dialogs = set(f["fake_lost"] + f["fake_many"] + f["db_unsent"] + f["db_without"] + f["db_unrecorded"])
            if not dialogs:
                continue
            channel = self.channels[name]
            rows = (
                self.db()
                .execute(
                    """
                SELECT c.external_id, cm.id, extract(epoch FROM cm.created_at), cm.needs_reply, cm.answer_failures,
                       cm.answer_error, b.id, b.delivery_state, b.delivery_attempts,
                       extract(epoch FROM b.delivery_claimed_at), extract(epoch FROM b.created_at), b.delivery_error
                FROM conversations_conversation c
                JOIN conversations_message cm ON cm.conversation_id = c.id AND cm.author = 'customer'
                LEFT JOIN conversations_message b ON b.in_reply_to_id = cm.id AND b.author = 'bot'
                WHERE c.channel = %s
                """,
                    [name],
                )
                .fetchall()
            )
            shown = 0
            for external_id, mid, created, needs, failures, error, bid, state, attempts, claimed, made, derr in rows:
                dialog = channel.dialog_of(external_id)
                if dialog not in dialogs or shown >= limit:
                    continue
                shown += 1
                line = f"    {name} dialog {dialog}: message {mid} recorded +{float(created) - t0:.1f} s"
                line += f", needs_reply {needs}, answer failures {failures}" + (f" ({error[:80]})" if error else "")
                if bid is None:
                    line += "; no bot reply recorded"
                else:
                    line += f"; reply {bid} recorded +{float(made) - t0:.1f} s, {state or '-'}, {attempts} attempts"
                    if claimed is not None:
                        lease_end = float(claimed) + int(self.env.get("REPLY_SEND_LEASE_S", "180")) - t0
                        line += f", send claimed +{float(claimed) - t0:.1f} s (the lease runs out +{lease_end:.0f} s)"
                    if derr:
                        line += f", error {derr[:80]!r}"
                print(line)
            unrecorded = [d for d in sorted(dialogs) if d in f["db_unrecorded"]]
            if unrecorded:
                print(f"    {name}: not recorded at all: {', '.join(unrecorded[:limit])}")

    def print_trouble(self, limit: int = 6) -> dict[str, int]:
        """The error lines of each service's log, a few of each; their numbers."""
        found = {}
        for name, lines in self.services.trouble().items():
            if lines:
                found[name] = len(lines)
                print(f"  {name}.log: {len(lines)} lines of trouble, e.g.:")
                shown = []
                for line in lines:
                    short = line[:240]
                    if short not in shown:
                        shown.append(short)
                    if len(shown) >= limit:
                        break
                for line in shown:
                    print(f"    {line}")
        return found

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        if self.services:
            self.services.stop()
        for name, process in self.fake_procs.items():
            stop_fake(self.fakes[name], process)
        if self.redis:
            self.redis.close()
        if self.pg:
            self.pg.close()
        if self.root:
            if self.keep_logs:
                for name in ("pg", "redis"):
                    for log in (self.root / name).glob("*.log"):
                        shutil.copy(log, self.logdir / f"{name}-{log.name}")
                shutil.rmtree(self.root / "pg", ignore_errors=True)
                shutil.rmtree(self.root / "redis", ignore_errors=True)
                print(f"logs kept in {self.logdir}")
            else:
                shutil.rmtree(self.root, ignore_errors=True)
