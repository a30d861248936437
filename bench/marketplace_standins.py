"""Local stand-ins of the Ozon, Wildberries and Yandex Market chat APIs, for bench/marketplaces.py and tests.

One `ThreadingHTTPServer` on 127.0.0.1 routes by path prefix: `/ozon`, `/wb`
and `/ym` are each a marketplace's API root (an account's `base_url`; WB's
`feedbacks_base_url` is `/wb` too). Each marketplace holds `messages` buyer
messages spread over `chats` chats (message i goes to chat i % chats), made
on the fly from the index (deterministic texts, ids and times, nothing
pre-built), in the shapes the connectors read
(tests/integrations/marketplaces/fixtures/*/NOTES.md):

- Ozon: `POST /v3/chat/list` (opaque `cursor`, `has_next`, unread counts from
  what `/v2/chat/read` marked), `/v3/chat/history` (Forward includes
  `from_message_id` itself, as Ozon's sample does; Backward from the newest),
  `/v1/chat/send/message` (`{"result": "success"}`, no id), `/v2/chat/read`.
  Message ids are uint64 numbers, growing in time across chats.
- Wildberries: `GET /api/v1/seller/events` (one feed of every chat's events by
  `next`, a time in ms, `events_page` a page; a chat's first event carries
  `isNewChat` and its `replySign`, the others none), `/api/v1/seller/chats`
  (every chat with its sign), `POST /api/v1/seller/message` (multipart
  replySign + message), and the feedbacks API answering nothing new
  (`/api/v1/new-feedbacks-questions`, empty `/api/v1/questions` and `/api/v1/feedbacks`).
- Yandex Market: `POST /v2/businesses/{id}/chats` (only the chats whose status
  the filter asks for: WAITING_FOR_PARTNER while the buyer spoke last,
  WAITING_FOR_CUSTOMER once we answered, 20 a page by `page_token`),
  `/chats/history?chatId=` (from `messageIdFrom` inclusive, oldest first,
  100 a page), `/chats/message?chatId=` (`{"status": "OK"}`).

Every send is recorded as (chat id, text), and comes back in the chat's
history / the events feed as the seller's message, as the real APIs do, so a
poller's "our own sends are not taken for new messages" is exercised.
`add_followups(k)` gives k chats of each marketplace one more buyer message
after everything sent so far.

Control endpoints (for a stand-in in another process): `GET /_bench/sends`
(JSON {marketplace: [[chat id, text], ...]}), `GET /_bench/stats` (requests
by marketplace and path), `POST /_bench/followups?count=k`.

    standins = StandIns(messages=10_000, chats=500)
    url = standins.serve_in_process()   # or serve_in_thread()
    ... account.base_url = f"{url}/ozon" ...
    standins.sends()                    # {"ozon": [(chat_id, text), ...], ...}
    standins.stop()
"""

from __future__ import annotations

import base64
import bisect
import datetime
import email.parser
import email.policy
import json
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request, urlopen

OZON, WB, YM = "ozon", "wildberries", "yandex_market"
MARKETPLACES = (OZON, WB, YM)
PREFIXES = {OZON: "/ozon", WB: "/wb", YM: "/ym"}
YM_BUSINESS_ID = "11223344"
YM_CAMPAIGN_ID = 21001234

PRODUCTS = [
    "икра горбуши 250 г",
    "икра кеты 500 г",
    "икра нерки 100 г",
    "икра форели 250 г",
    "креветки тигровые 16/20",
    "креветки северные 90/120",
    "мидии мясо 500 г",
    "мидии киви в половинках раковины",
    "гребешок морской 1 кг",
    "устрицы Гиллардо",
]
TEMPLATES = [
    "Есть ли {p}?",
    "Здравствуйте! {P} есть в наличии?",
    "Сколько стоит {p}?",
    "Подскажите, {p} можно заказать с доставкой завтра?",
    "А {p} свежая? Когда поставка?",
    "Добрый день, хочу {p}, как оформить?",
    "{P} — какой срок годности?",
    "Есть {p}? Нужно 3 штуки.",
]
NAMES = ["Ольга", "Игорь", "Марина", "Алексей", "Наталья", "Дмитрий", "Светлана", "Сергей"]


def buyer_text(index: int) -> str:
    """The buyer's message number `index`: a product question, mixed so that a chat's messages differ."""
    mixed = index * 2_654_435_761 % 4_294_967_291
    product = PRODUCTS[mixed % len(PRODUCTS)]
    template = TEMPLATES[(mixed // len(PRODUCTS)) % len(TEMPLATES)]
    return template.format(p=product, P=product[:1].upper() + product[1:])


def _iso(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Extra:
    """A message added after the generated ones: our send, or a buyer's follow-up."""

    __slots__ = ("at", "author", "message_id", "text")

    def __init__(self, message_id: int, author: str, text: str, at: float):
        self.message_id, self.author, self.text, self.at = message_id, author, text, at


class Market:
    """One marketplace's chats: generated buyer messages plus what came later, per chat."""

    # Generated message i has id ID_BASE + i; later ones count on from LATER_BASE, past every generated id.
    ID_BASE = 3_000_000_000_000_000_000
    LATER_BASE = ID_BASE + 1_000_000_000

    def __init__(self, name: str, messages: int, chats: int, started: float, step_s: float):
        self.name = name
        self.messages = messages
        self.chats = max(1, min(chats, messages)) if messages else max(1, chats)
        # Generated message i was written at t0 + i * step (all in the recent past: within reply windows).
        self.step_s = step_s
        self.t0 = started - messages * step_s - 60
        self.extras: dict[int, list[Extra]] = {}
        self.sends: list[tuple[str, str]] = []
        self.read_upto: dict[int, int] = {}
        self.next_id = self.LATER_BASE
        self.lock = threading.RLock()
        self.requests: Counter = Counter()
        # For WB's feed: (time in ms, chat, Extra), in time order.
        self.timeline: list[tuple[int, int, Extra]] = []

    # What each chat holds ------------------------------------------------------

    def count_in(self, chat: int) -> int:
        return (self.messages - chat + self.chats - 1) // self.chats if chat < self.messages else 0

    def generated(self, chat: int) -> range:
        """The global indexes of the chat's generated buyer messages, oldest first."""
        return range(chat, self.messages, self.chats)

    def history(self, chat: int) -> list[tuple[int, str, str, float]]:
        """(id, author "customer"|"seller", text, unix time) of every message in the chat, oldest first."""
        rows = [(self.ID_BASE + i, "customer", buyer_text(i), self.t0 + i * self.step_s) for i in self.generated(chat)]
        with self.lock:
            rows += [(e.message_id, e.author, e.text, e.at) for e in self.extras.get(chat, ())]
        return rows

    def last(self, chat: int) -> tuple[int, str, float] | None:
        with self.lock:
            extras = self.extras.get(chat)
            if extras:
                return extras[-1].message_id, extras[-1].author, extras[-1].at
        if self.count_in(chat):
            i = chat + (self.count_in(chat) - 1) * self.chats
            return self.ID_BASE + i, "customer", self.t0 + i * self.step_s
        return None

    def append(self, chat: int, author: str, text: str) -> Extra:
        with self.lock:
            self.next_id += 1
            # WB's feed pages by time in ms: every later message has a millisecond of its own.
            ms = int(time.time() * 1000)
            if self.timeline:
                ms = max(ms, self.timeline[-1][0] + 1)
            extra = Extra(self.next_id, author, text, ms / 1000)
            self.extras.setdefault(chat, []).append(extra)
            self.timeline.append((ms, chat, extra))
            if author == "seller":
                self.sends.append((self.chat_id(chat), text))
            return extra

    def add_followups(self, count: int) -> int:
        added = 0
        for chat in range(min(count, self.chats)):
            self.append(chat, "customer", f"Спасибо! И ещё вопрос: {buyer_text(self.messages + chat)}")
            added += 1
        return added

    # Ids as the marketplace writes them ---------------------------------------

    def chat_id(self, chat: int) -> str:
        if self.name == OZON:
            return str(uuid.UUID(int=(0x0A0 << 116) | chat))
        if self.name == WB:
            return f"1:{uuid.UUID(int=(0x0B0 << 116) | chat)}"
        return str(41_000_000 + chat)

    def chat_index(self, chat_id: str) -> int | None:
        try:
            if self.name == OZON:
                number = uuid.UUID(str(chat_id)).int & ((1 << 116) - 1)
            elif self.name == WB:
                number = uuid.UUID(str(chat_id).partition(":")[2]).int & ((1 << 116) - 1)
            else:
                number = int(chat_id) - 41_000_000
        except (ValueError, TypeError):
            return None
        return number if 0 <= number < self.chats else None

    def reply_sign(self, chat: int) -> str:
        return f"{self.chat_id(chat)}:{uuid.UUID(int=(0x5E << 120) | chat).hex}"

    def customer_id(self, chat: int) -> str:
        return str(115_000 + chat)

    def customer_name(self, chat: int) -> str:
        return NAMES[chat % len(NAMES)]


class StandIns:
    """The three stand-ins' state, and the HTTP server that serves it."""

    def __init__(
        self,
        messages: int = 10_000,
        chats: int = 500,
        *,
        events_page: int = 100,
        marketplaces: tuple[str, ...] = MARKETPLACES,
        step_s: float = 0.05,
    ):
        self.started = time.time()
        self.events_page = events_page
        self.markets = {name: Market(name, messages, chats, self.started, step_s) for name in marketplaces}
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.process: multiprocessing.Process | None = None
        self.url = ""

    # Serving -------------------------------------------------------------------

    def _make_server(self, port: int = 0) -> ThreadingHTTPServer:
        standins = self

        class Handler(_Handler):
            state = standins

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        return server

    def serve_in_thread(self) -> str:
        self.server = self._make_server()
        self.thread = threading.Thread(target=self.server.serve_forever, name="marketplace-standins", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def serve_in_process(self) -> str:
        """Serve from a child process of its own (its CPU and memory are not the caller's); control over HTTP."""
        context = multiprocessing.get_context("fork")
        ready = context.Queue()
        self.process = context.Process(target=self._child, args=(ready,), name="marketplace-standins", daemon=True)
        self.process.start()
        port = ready.get(timeout=30)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def _child(self, ready) -> None:
        server = self._make_server()
        ready.put(server.server_address[1])
        server.serve_forever()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.process is not None:
            self.process.terminate()
            self.process.join(10)
            self.process = None

    # What the bench asks -------------------------------------------------------

    def _control(self, method: str, path: str):
        data = b"" if method == "POST" else None
        request = Request(f"{self.url}{path}", method=method, data=data)  # noqa: S310 - http://127.0.0.1
        with urlopen(request) as answer:  # noqa: S310 - our own http://127.0.0.1 stand-in
            return json.loads(answer.read())

    def sends(self) -> dict[str, list[tuple[str, str]]]:
        if self.process is not None:
            answer = self._control("GET", "/_bench/sends")
            return {name: [tuple(pair) for pair in pairs] for name, pairs in answer.items()}
        return {name: list(market.sends) for name, market in self.markets.items()}

    def stats(self) -> dict[str, dict[str, int]]:
        if self.process is not None:
            return self._control("GET", "/_bench/stats")
        return {name: dict(market.requests) for name, market in self.markets.items()}

    def add_followups(self, count: int) -> int:
        if self.process is not None:
            return self._control("POST", f"/_bench/followups?count={count}")["added"]
        return sum(market.add_followups(count) for market in self.markets.values())

    def control(self, path: str, query: dict) -> dict | None:
        if path == "/_bench/sends":
            return {name: list(market.sends) for name, market in self.markets.items()}
        if path == "/_bench/stats":
            return {name: dict(market.requests) for name, market in self.markets.items()}
        if path == "/_bench/followups":
            count = int((query.get("count") or ["0"])[0])
            return {"added": sum(market.add_followups(count) for market in self.markets.values())}
        return None

    # Ozon ------------------------------------------------------------------------

    def ozon(self, market: Market, path: str, headers, body: dict) -> tuple[int, dict]:
        if not headers.get("Client-Id") or not headers.get("Api-Key"):
            return 401, {"code": 16, "message": "Client-Id and Api-Key are required", "details": []}
        if path == "/v3/chat/list":
            return 200, self._ozon_list(market, body)
        chat = market.chat_index(body.get("chat_id"))
        if chat is None:
            return 404, {"code": 5, "message": "chat not found", "details": []}
        if path == "/v3/chat/history":
            return 200, self._ozon_history(market, chat, body)
        if path == "/v1/chat/send/message":
            text = str(body.get("text") or "")
            if not text.strip():
                return 400, {"code": 3, "message": "text is empty", "details": []}
            market.append(chat, "seller", text)
            return 200, {"result": "success"}
        if path == "/v2/chat/read":
            upto = int(body.get("from_message_id") or 0)
            with market.lock:
                market.read_upto[chat] = max(market.read_upto.get(chat, 0), upto)
            return 200, {"unread_count": self._ozon_unread(market, chat)[0]}
        return 404, {"code": 5, "message": "no such method", "details": []}

    def _ozon_unread(self, market: Market, chat: int) -> tuple[int, int]:
        """(unread buyer messages, the first one's id or 0)."""
        upto = market.read_upto.get(chat, 0)
        unread = [mid for mid, author, _text, _at in market.history(chat) if author == "customer" and mid > upto]
        return len(unread), (unread[0] if unread else 0)

    def _ozon_list(self, market: Market, body: dict) -> dict:
        limit = max(1, min(int(body.get("limit") or 30), 1000))
        offset = 0
        if body.get("cursor"):
            offset = int(json.loads(base64.b64decode(str(body["cursor"])))["offset"])
        chats = []
        for chat in range(offset, min(offset + limit, market.chats)):
            last = market.last(chat)
            if last is None:
                continue
            unread, first_unread = self._ozon_unread(market, chat)
            chats.append(
                {
                    "chat": {
                        "chat_id": market.chat_id(chat),
                        "chat_status": "Opened",
                        "chat_type": "Buyer_Seller",
                        "created_at": _iso(market.t0 + chat * market.step_s),
                    },
                    "first_unread_message_id": first_unread,
                    "last_message_id": last[0],
                    "unread_count": unread,
                }
            )
        end = min(offset + limit, market.chats)
        cursor = base64.b64encode(json.dumps({"offset": end}).encode()).decode()
        return {"chats": chats, "total_unread_count": 0, "cursor": cursor, "has_next": end < market.chats}

    def _ozon_history(self, market: Market, chat: int, body: dict) -> dict:
        limit = max(1, min(int(body.get("limit") or 50), 1000))
        rows = market.history(chat)
        upto = market.read_upto.get(chat, 0)
        from_id = body.get("from_message_id")
        if str(body.get("direction") or "Backward").lower() == "forward":
            start = int(from_id or 0)
            picked = [row for row in rows if row[0] >= start]
            page, has_next = picked[:limit], len(picked) > limit
        else:
            start = int(from_id) if from_id else None
            picked = [row for row in rows if start is None or row[0] <= start]
            page, has_next = picked[-limit:][::-1], len(picked) > limit
        messages = []
        for message_id, author, text, at in page:
            buyer = author == "customer"
            messages.append(
                {
                    "message_id": message_id,
                    "user": {"id": market.customer_id(chat) if buyer else "7", "type": author},
                    "created_at": _iso(at),
                    "is_read": not buyer or message_id <= upto,
                    "is_image": False,
                    "data": [text],
                    "context": {"sku": str(2_206_000 + chat % 50), "order_number": ""},
                }
            )
        return {"has_next": has_next, "messages": messages}

    # Wildberries ------------------------------------------------------------------

    def wildberries(self, market: Market, method: str, path: str, headers, query: dict, raw: bytes) -> tuple[int, dict]:
        if not headers.get("Authorization"):
            return 401, {"title": "unauthorized", "detail": "empty Authorization header", "status": 401}
        if path == "/api/v1/seller/events":
            return 200, self._wb_events(market, query)
        if path == "/api/v1/seller/chats":
            return 200, {"result": [self._wb_chat(market, chat) for chat in range(market.chats)], "errors": None}
        if path == "/api/v1/seller/message" and method == "POST":
            fields = _multipart_fields(headers.get("Content-Type", ""), raw)
            sign, text = fields.get("replySign", ""), fields.get("message", "")
            chat = market.chat_index(sign.rpartition(":")[0])
            if chat is None or sign != market.reply_sign(chat):
                return 400, {"title": "bad request", "detail": "unknown replySign", "status": 400}
            if not text.strip():
                return 400, {"title": "bad request", "detail": "message is empty", "status": 400}
            extra = market.append(chat, "seller", text)
            return 200, {"result": {"addTime": int(extra.at * 1000), "chatID": market.chat_id(chat)}, "errors": []}
        envelope = {"error": False, "errorText": "", "additionalErrors": None}
        if path == "/api/v1/new-feedbacks-questions":
            return 200, {"data": {"hasNewQuestions": False, "hasNewFeedbacks": False}, **envelope}
        if path == "/api/v1/questions":
            return 200, {"data": {"countUnanswered": 0, "countArchive": 0, "questions": []}, **envelope}
        if path == "/api/v1/feedbacks":
            return 200, {"data": {"countUnanswered": 0, "countArchive": 0, "feedbacks": []}, **envelope}
        return 404, {"title": "not found", "detail": path, "status": 404}

    def _wb_ms(self, market: Market, index: int) -> int:
        return round((market.t0 + index * market.step_s) * 1000)

    def _wb_events(self, market: Market, query: dict) -> dict:
        after = int((query.get("next") or ["0"])[0] or 0)
        events: list[dict] = []
        # Generated messages first (they are older than anything later), from the first one past `after`.
        if market.messages:
            step_ms = market.step_s * 1000
            index = max(0, int((after - self._wb_ms(market, 0)) // step_ms) - 1)
            while index < market.messages and len(events) < self.events_page:
                if self._wb_ms(market, index) > after:
                    events.append(self._wb_generated_event(market, index))
                index += 1
        if len(events) < self.events_page:
            with market.lock:
                start = bisect.bisect_right(market.timeline, after, key=lambda entry: entry[0])
                later = market.timeline[start : start + self.events_page - len(events)]
            events += [self._wb_later_event(market, ms, chat, extra) for ms, chat, extra in later]
        if not events:
            return {
                "result": {
                    "next": after,
                    "newestEventTime": "0001-01-01T00:00:00Z",
                    "oldestEventTime": "0001-01-01T00:00:00Z",
                    "totalEvents": 0,
                    "events": [],
                },
                "errors": None,
            }
        return {
            "result": {
                "next": events[-1]["addTimestamp"],
                "newestEventTime": events[-1]["addTime"],
                "oldestEventTime": events[0]["addTime"],
                "totalEvents": len(events),
                "events": events,
            },
            "errors": None,
        }

    def _wb_good_card(self, chat: int) -> dict:
        return {
            "nmID": 183_572_000 + chat % 50,
            "price": 899 + 100 * (chat % 7),
            "priceCurrency": "RUB",
            "rid": f"{uuid.UUID(int=(0x71D << 112) | chat).hex}.0.0",
            "size": "0",
        }

    def _wb_generated_event(self, market: Market, index: int) -> dict:
        chat = index % market.chats
        ms = self._wb_ms(market, index)
        new_chat = index < market.chats
        message: dict = {"text": buyer_text(index)}
        if new_chat:
            message["attachments"] = {"goodCard": self._wb_good_card(chat)}
        event = {
            "chatID": market.chat_id(chat),
            "eventID": str(uuid.UUID(int=(0xE0 << 120) | index)),
            "eventType": "message",
            "isNewChat": new_chat,
            "message": message,
            "source": ("android", "ios", "rusite")[index % 3],
            "addTimestamp": ms,
            "addTime": _iso(ms / 1000).replace(".000Z", "Z"),
            "sender": "client",
            "clientName": market.customer_name(chat),
        }
        if new_chat:
            event["replySign"] = market.reply_sign(chat)
        return event

    def _wb_later_event(self, market: Market, ms: int, chat: int, extra: Extra) -> dict:
        seller = extra.author == "seller"
        return {
            "chatID": market.chat_id(chat),
            "eventID": str(uuid.UUID(int=(0xE1 << 120) | extra.message_id - Market.LATER_BASE)),
            "eventType": "message",
            "isNewChat": False,
            "message": {"text": extra.text},
            "source": "seller-public-api" if seller else "android",
            "addTimestamp": ms,
            "addTime": _iso(ms / 1000),
            "sender": "seller" if seller else "client",
            "clientName": market.customer_name(chat),
        }

    def _wb_chat(self, market: Market, chat: int) -> dict:
        last = market.last(chat)
        text = ""
        if last is not None:
            text = next((row[2] for row in reversed(market.history(chat)) if row[0] == last[0]), "")
        return {
            "chatID": market.chat_id(chat),
            "replySign": market.reply_sign(chat),
            "clientName": market.customer_name(chat),
            "goodCard": self._wb_good_card(chat),
            "lastMessage": {"text": text, "addTimestamp": int((last[2] if last else market.t0) * 1000)},
        }

    # Yandex Market ---------------------------------------------------------------

    def yandex_market(self, market: Market, path: str, headers, query: dict, body: dict) -> tuple[int, dict]:
        if not headers.get("Api-Key"):
            return 401, {"status": "ERROR", "errors": [{"code": "UNAUTHORIZED", "message": "Api-Key token is invalid"}]}
        prefix = f"/v2/businesses/{YM_BUSINESS_ID}/"
        if not path.startswith(prefix):
            return 404, {"status": "ERROR", "errors": [{"code": "NOT_FOUND", "message": "no such business"}]}
        method = path[len(prefix) :]
        if method == "chats":
            return 200, self._ym_chats(market, query, body)
        chat = market.chat_index((query.get("chatId") or [""])[0])
        if chat is None:
            return 404, {"status": "ERROR", "errors": [{"code": "CHAT_NOT_FOUND", "message": "chat not found"}]}
        if method == "chats/history":
            return 200, self._ym_history(market, chat, query, body)
        if method == "chats/message":
            text = str(body.get("message") or "")
            if not 1 <= len(text) <= 4096:
                return 400, {"status": "ERROR", "errors": [{"code": "BAD_REQUEST", "message": "message length"}]}
            market.append(chat, "seller", text)
            return 200, {"status": "OK"}
        return 404, {"status": "ERROR", "errors": [{"code": "NOT_FOUND", "message": method}]}

    def _ym_context(self, market: Market, chat: int) -> dict:
        return {
            "type": "ORDER",
            "customer": {"name": market.customer_name(chat), "publicId": f"pub{market.customer_id(chat)}"},
            "campaignId": YM_CAMPAIGN_ID,
            "orderId": 51_000_000 + chat,
        }

    def _ym_status(self, market: Market, chat: int) -> str | None:
        last = market.last(chat)
        if last is None:
            return None
        return "WAITING_FOR_PARTNER" if last[1] == "customer" else "WAITING_FOR_CUSTOMER"

    def _ym_chats(self, market: Market, query: dict, body: dict) -> dict:
        limit = max(1, min(int((query.get("limit") or ["10"])[0]), 20))
        token = (query.get("page_token") or query.get("pageToken") or [""])[0]
        position = int(json.loads(base64.b64decode(token))["from"]) if token else 0
        wanted = set(body.get("statuses") or [])
        chats = []
        while position < market.chats and len(chats) < limit:
            status = self._ym_status(market, position)
            if status is not None and (not wanted or status in wanted):
                last = market.last(position)
                chats.append(
                    {
                        "chatId": int(market.chat_id(position)),
                        "orderId": 51_000_000 + position,
                        "context": self._ym_context(market, position),
                        "type": "CHAT",
                        "status": status,
                        "createdAt": _iso(market.t0 + position * market.step_s),
                        "updatedAt": _iso(last[2]),
                    }
                )
            position += 1
        paging = {}
        if position < market.chats:
            paging["nextPageToken"] = base64.b64encode(json.dumps({"from": position}).encode()).decode()
        return {"status": "OK", "result": {"chats": chats, "paging": paging}}

    def _ym_history(self, market: Market, chat: int, query: dict, body: dict) -> dict:
        limit = max(1, min(int((query.get("limit") or ["50"])[0]), 100))
        token = (query.get("page_token") or query.get("pageToken") or [""])[0]
        offset = int(json.loads(base64.b64decode(token))["offset"]) if token else 0
        start = int(body.get("messageIdFrom") or 0)
        rows = [row for row in market.history(chat) if row[0] >= start]
        page = rows[offset : offset + limit]
        senders = {"customer": "CUSTOMER", "seller": "PARTNER"}
        messages = [
            {"messageId": mid, "createdAt": _iso(at), "sender": senders[author], "message": text}
            for mid, author, text, at in page
        ]
        paging = {}
        if offset + limit < len(rows):
            paging["nextPageToken"] = base64.b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
        context = self._ym_context(market, chat)
        return {
            "status": "OK",
            "result": {"orderId": context["orderId"], "context": context, "messages": messages, "paging": paging},
        }


def _multipart_fields(content_type: str, raw: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (files are ignored)."""
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            fields[name] = part.get_payload(decode=True).decode("utf-8")
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the connectors' sessions reuse their connections
    # Headers and body go in two writes: without this, Nagle and delayed ACKs add 40 ms to each answer.
    disable_nagle_algorithm = True
    state: StandIns

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        try:
            status, answer = self._route(method, parts.path, query, raw)
        except Exception as exc:  # a stand-in bug must show, not hang the client
            status, answer = 500, {"error": f"{type(exc).__name__}: {exc}"}
        payload = json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, path: str, query: dict, raw: bytes) -> tuple[int, dict]:
        state = self.state
        if path.startswith("/_bench/"):
            answer = state.control(path, query)
            return (200, answer) if answer is not None else (404, {"error": path})
        for name, prefix in PREFIXES.items():
            if (path == prefix or path.startswith(prefix + "/")) and name in state.markets:
                market = state.markets[name]
                rest = path[len(prefix) :]
                with market.lock:
                    market.requests[f"{method} {_generic(rest)}"] += 1
                body = {}
                if raw and "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw)
                if name == OZON:
                    return state.ozon(market, rest, self.headers, body if method == "POST" else {})
                if name == WB:
                    return state.wildberries(market, method, rest, self.headers, query, raw)
                return state.yandex_market(market, rest, self.headers, query, body)
        return 404, {"error": f"no stand-in at {path}"}


def _generic(path: str) -> str:
    return path.replace(f"/businesses/{YM_BUSINESS_ID}/", "/businesses/{id}/")
