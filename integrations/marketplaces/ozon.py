"""The Ozon Seller API: buyer chats and reviews, on the shared HTTP seam (integrations/http.py).

Every call is `POST {api_base_url}<path>` with a JSON body and the account's
`Client-Id` and `Api-Key` headers; an error answer is Ozon's rpcStatus
({"code": 7, "message": "...", "details": []}). Where the shapes come from:
tests/integrations/marketplaces/fixtures/ozon/NOTES.md.

Chats ("chat"): `/v3/chat/list` pages through the chats with Ozon's opaque
`cursor`; only buyer chats (`chat_type` Buyer_Seller, any case) are read,
chats with seller support and notifications are skipped. A chat whose
`last_message_id` is past the id we recorded is read with `/v3/chat/history`
forward from that id, page by page; the chats that have nothing new are not
read at all. After reading, `/v2/chat/read` marks the chat read up to the
newest message. The stream's cursor:

    {"chats": {"<chat id>": "<id of the newest message recorded>"},
     "list_cursor": "<Ozon's cursor of the chat list page being worked>"}

`list_cursor` is only there while a pass over the chat list is unfinished, so
a poll that died midway goes on from the list page it was in. Each chat
history page is one `Page` whose cursor already counts that page: the poller
stores it once the page's items are committed, and a crash in between reads
the same page again (the poller dedupes). The first poll of an account
(a cursor without "chats") does not import old correspondence: chats with
nothing unread are only remembered where they stand, chats with unread
messages give those messages. A chat that appears later is read from its
latest page (up to HISTORY_PAGE messages).

Reviews ("reviews", Premium Plus): `/v1/review/list` oldest first, paged by
`last_id`, which is the stream's cursor ({"last_id": "..."}); answers go to
`/v1/review/comment/create`. A 403 there means no subscription: the error
(and check_key) carries {"reviews": False}.

Refusals, for the poller and the sender (MarketplaceApiError):
- 401 anywhere, 403 on reading chats: `stops_account`, permanent;
- 403 on a chat send: code OZON_PREMIUM_REQUIRED, permanent, capabilities
  {"chat_send": False}: polls go on, sends stop;
- 429: transient, `retry_after` from the Retry-After header (else backoff);
- 5xx, timeouts, lost connections: transient, retried by the seam on reads.
A send is different: one that timed out, lost its connection or got a 500,
502 or 504 may have reached the chat, so it raises SendOutcomeUnknown and is
never retried; only a 429 or 503 (Ozon took nothing) is tried again.

Ozon's user types arrive in several spellings, and its own samples write
«Сustomer» with a Cyrillic «С»: they are folded to Latin and compared
without case. Message ids arrive as numbers or strings: always `str` here.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import re
from collections.abc import Iterator

import requests

from integrations.http import USER_AGENT, is_permanent_status, redact
from integrations.marketplaces.base import (
    CHAT,
    CUSTOMER,
    REVIEWS,
    SELLER,
    SYSTEM,
    Connector,
    KeyCheck,
    MarketplaceApiError,
    Page,
    PolledItem,
    SendOutcomeUnknown,
    Thread,
)

logger = logging.getLogger(__name__)

CHAT_LIST_PATH = "/v3/chat/list"
CHAT_HISTORY_PATH = "/v3/chat/history"
CHAT_SEND_PATH = "/v1/chat/send/message"
CHAT_READ_PATH = "/v2/chat/read"
REVIEW_LIST_PATH = "/v1/review/list"
REVIEW_COMMENT_PATH = "/v1/review/comment/create"

CHAT_LIST_PAGE = 100  # Ozon allows up to 1000
HISTORY_PAGE = 100  # Ozon allows up to 1000
REVIEWS_PAGE = 100  # Ozon allows 20-100
# Our own messages looked up right after a send, to learn the id Ozon does not return.
SENT_LOOKBACK = 5
# An earlier answer with the same text is not ours: only messages this close to the send count (clock skew).
SENT_CLOCK_SKEW_S = 300
MAX_TEXT_CHARS = 1000
# Ozon answers buyers within 48 hours of their last message (FBO; FBS and rFBS also after delivery).
REPLY_WINDOW_HOURS = 48
# Ozon publishes no per-method chat limits; this stays well below its per-account ceiling.
RATE_PER_S = 5.0
BURST = 10
DESCRIPTION_CHARS = 300

BUYER_CHAT_TYPE = "BUYER_SELLER"
CHAT_PUSH_TYPES = frozenset({"TYPE_NEW_MESSAGE", "TYPE_UPDATE_MESSAGE", "TYPE_MESSAGE_READ", "TYPE_CHAT_CLOSED"})
PING_PUSH_TYPE = "TYPE_PING"
PUSH_SERVICE_NAME = "storebot"

KEY_REJECTED = "Ozon не принял ключ: проверьте Client-Id и Api-Key"
PREMIUM_REQUIRED = "Ozon не дал отправить сообщение: писать покупателям через API можно только с подпиской Premium Plus"
REVIEWS_UNAVAILABLE = "Отзывы Ozon недоступны: для работы с ними через API нужна подписка Premium Plus"
CHATS_FORBIDDEN = "Ozon не дал доступа к чатам: проверьте права ключа и подписку Premium Plus"

# Why a request is made: the same 403 means different things for each.
_READ_CHATS = "read_chats"
_SEND_CHAT = "send_chat"
_REVIEWS = "reviews"

# A send that got one of these may have reached the chat (the server failed after, or a gateway lost it).
_SEND_UNKNOWN_STATUSES = frozenset({500, 502, 504})
_SEND_UNKNOWN_CODES = frozenset({"TIMEOUT", "CONNECTION_ERROR"})

# Cyrillic letters that look like Latin ones: Ozon's samples spell «Сustomer» with a Cyrillic «С».
_LATIN_LOOKALIKES = str.maketrans("АВСЕНКМОРТХаеорсух", "ABCEHKMOPTXaeopcyx")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
_URL = re.compile(r"https?://\S+")


# Ozon's values in our terms ----------------------------------------------------


def latin_folded(value) -> str:
    return str(value or "").translate(_LATIN_LOOKALIKES).strip()


def author_of(user_type) -> str:
    """CUSTOMER, SELLER or SYSTEM (support, notifications, crm, courier...) for Ozon's `user.type`."""
    folded = latin_folded(user_type).lower()
    if folded == "customer":
        return CUSTOMER
    if folded == "seller":
        return SELLER
    return SYSTEM


def is_buyer_chat(chat_type) -> bool:
    return latin_folded(chat_type).upper().startswith(BUYER_CHAT_TYPE)


def normalized_id(value) -> str:
    """Ozon's id, a number or a string, as a string ("" for none)."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _id_number(message_id: str) -> int | None:
    return int(message_id) if message_id.isdigit() else None


def _is_after(candidate: str, reference: str) -> bool:
    """Whether message `candidate` is newer than `reference`: Ozon's message ids grow."""
    candidate_number, reference_number = _id_number(candidate), _id_number(reference)
    if candidate_number is not None and reference_number is not None:
        return candidate_number > reference_number
    return candidate != reference


def _wire_id(message_id: str):
    # Ozon's schema takes message ids as uint64 numbers in requests.
    number = _id_number(message_id)
    return number if number is not None else message_id


def parse_time(value) -> datetime.datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment


def message_text_and_attachments(message: dict) -> tuple[str, list[dict]]:
    """The text of Ozon's `data` (Markdown lines) and the images it links when `is_image`."""
    lines = [str(line) for line in message.get("data") or [] if line not in (None, "")]
    if not message.get("is_image"):
        return "\n".join(lines).strip(), []
    attachments, text_lines = [], []
    for line in lines:
        urls = _MARKDOWN_IMAGE.findall(line) or _URL.findall(line)
        attachments += [{"kind": "photo", "file_id": url, "url": url} for url in urls]
        rest = _URL.sub("", _MARKDOWN_IMAGE.sub("", line)).strip()
        if rest:
            text_lines.append(rest)
    return "\n".join(text_lines).strip(), attachments


def message_context(message: dict) -> dict:
    """Ozon's product and order context of a message, in the shared keys."""
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    shared = {}
    for key in ("sku", "offer_id", "order_number", "product_name"):
        value = normalized_id(context.get(key))
        if value and value != "0":
            shared[key] = value
    return shared


# Push notifications ---------------------------------------------------------------


def push_type(payload) -> str:
    return str(payload.get("message_type") or "").strip().upper() if isinstance(payload, dict) else ""


def ping_answer(payload: dict | None = None, *, now: datetime.datetime | None = None) -> dict:
    """What Ozon wants back for TYPE_PING, the check that the push URL works: our name, version, UTC time."""
    moment = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    return {
        "version": USER_AGENT.partition("/")[2],
        "name": PUSH_SERVICE_NAME,
        "time": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def push_answer(payload: dict, *, now: datetime.datetime | None = None) -> dict:
    """The body of our 200 to any Ozon notification: the ping's own answer, else {"result": true}."""
    if push_type(payload) == PING_PUSH_TYPE:
        return ping_answer(payload, now=now)
    return {"result": True}


# The connector --------------------------------------------------------------------


class OzonConnector(Connector):
    marketplace = "ozon"
    streams = (CHAT, REVIEWS)
    max_text_chars = MAX_TEXT_CHARS

    def __init__(self, account, http=None):
        super().__init__(account, http)
        self.limit = self.http.limiter(f"ozon:{account.pk}", rate=RATE_PER_S, burst=BURST)

    def __repr__(self) -> str:
        return f"OzonConnector(account={self.account.pk})"

    # Streams ------------------------------------------------------------------

    def pages(self, stream: str, cursor: dict) -> Iterator[Page]:
        if stream == CHAT:
            yield from self._chat_pages(dict(cursor or {}))
        elif stream == REVIEWS:
            yield from self._review_pages(dict(cursor or {}))
        else:
            raise ValueError(f"Ozon has no stream {stream!r}")

    def _chat_pages(self, cursor: dict) -> Iterator[Page]:
        first_poll = "chats" not in cursor
        known = {str(chat_id): normalized_id(last_id) for chat_id, last_id in (cursor.get("chats") or {}).items()}
        list_cursor = str(cursor.get("list_cursor") or "")
        stored = _chat_cursor(known, list_cursor)
        while True:
            listing, list_cursor = self._chat_list_page(list_cursor)
            for info in _unread_first(listing.get("chats")):
                chat = info.get("chat") if isinstance(info.get("chat"), dict) else {}
                chat_id = normalized_id(chat.get("chat_id"))
                last_id = normalized_id(info.get("last_message_id"))
                if not chat_id or not last_id or not is_buyer_chat(chat.get("chat_type")):
                    continue
                recorded = known.get(chat_id)
                if recorded and not _is_after(last_id, recorded):
                    continue
                if recorded is None and first_poll and not _unread_count(info):
                    # Old correspondence is not imported: the chat is remembered where it stands.
                    known[chat_id] = last_id
                    continue
                yield from self._chat_history_pages(chat_id, info, known, list_cursor, first_poll)
            next_cursor = str(listing.get("cursor") or "")
            if not listing.get("has_next") or not next_cursor or next_cursor == list_cursor:
                break
            list_cursor = next_cursor
        final = _chat_cursor(known, "")
        if final != stored:
            yield Page([], final)

    def _chat_list_page(self, list_cursor: str) -> tuple[dict, str]:
        body = {"filter": {"chat_status": "All", "unread_only": False}, "limit": CHAT_LIST_PAGE}
        if list_cursor:
            body["cursor"] = list_cursor
        try:
            return self._read(CHAT_LIST_PATH, body), list_cursor
        except MarketplaceApiError as exc:
            if not list_cursor or exc.status != 400:
                raise
            # A pass interrupted long ago may hold a cursor Ozon no longer knows: start the list over.
            logger.warning(
                "ozon account %s: chat list cursor refused (%s), listing from the start", self.account.pk, exc.code
            )
            del body["cursor"]
            return self._read(CHAT_LIST_PATH, body), ""

    def _chat_history_pages(
        self, chat_id: str, info: dict, known: dict, list_cursor: str, first_poll: bool
    ) -> Iterator[Page]:
        recorded = known.get(chat_id)
        saw_customer = False
        if not recorded:
            # A chat new to us: its latest page, oldest first.
            answer = self._read(CHAT_HISTORY_PATH, {"chat_id": chat_id, "direction": "Backward", "limit": HISTORY_PAGE})
            messages = _chronological(answer.get("messages"))
            first_unread = normalized_id(info.get("first_unread_message_id"))
            if messages:
                known[chat_id] = normalized_id(messages[-1].get("message_id"))
            if first_poll and first_unread:
                messages = [m for m in messages if not _is_after(first_unread, normalized_id(m.get("message_id")))]
            items = [self._chat_item(chat_id, message) for message in messages]
            saw_customer = any(item.author == CUSTOMER for item in items)
            yield Page(items, _chat_cursor(known, list_cursor))
        else:
            while True:
                body = {
                    "chat_id": chat_id,
                    "direction": "Forward",
                    "from_message_id": _wire_id(recorded),
                    "limit": HISTORY_PAGE,
                }
                answer = self._read(CHAT_HISTORY_PATH, body)
                # Whether Ozon includes `from_message_id` itself is not documented: only newer ones count.
                messages = [
                    m
                    for m in _chronological(answer.get("messages"))
                    if _is_after(normalized_id(m.get("message_id")), recorded)
                ]
                if messages:
                    known[chat_id] = normalized_id(messages[-1].get("message_id"))
                items = [self._chat_item(chat_id, message) for message in messages]
                saw_customer = saw_customer or any(item.author == CUSTOMER for item in items)
                more = bool(answer.get("has_next")) and bool(messages)
                yield Page(items, _chat_cursor(known, list_cursor), more=more)
                if not more:
                    break
                recorded = known[chat_id]
        if saw_customer and known.get(chat_id):
            self._mark_read(chat_id, known[chat_id])

    def _chat_item(self, chat_id: str, message: dict) -> PolledItem:
        user = message.get("user") if isinstance(message.get("user"), dict) else {}
        author = author_of(user.get("type"))
        created_at = parse_time(message.get("created_at"))
        text, attachments = message_text_and_attachments(message)
        context = message_context(message)
        if author == CUSTOMER and created_at is not None:
            # What the sender needs to keep to Ozon's answering window.
            context["customer_message_at"] = created_at.isoformat()
            context["reply_window_hours"] = REPLY_WINDOW_HOURS
        return PolledItem(
            thread_id=chat_id,
            message_id=normalized_id(message.get("message_id")),
            text=text,
            author=author,
            created_at=created_at,
            customer_id=normalized_id(user.get("id")) if author == CUSTOMER else "",
            context=context,
            attachments=attachments,
            raw=dict(message),
            needs_reply=author == CUSTOMER,
        )

    def _mark_read(self, chat_id: str, message_id: str) -> None:
        try:
            self._read(CHAT_READ_PATH, {"chat_id": chat_id, "from_message_id": _wire_id(message_id)})
        except MarketplaceApiError as exc:
            if exc.stops_account:
                raise
            # The messages are recorded already; an unread mark in the cabinet is only cosmetic.
            logger.warning("ozon account %s: marking chat read failed: %s", self.account.pk, exc.code)

    def _review_pages(self, cursor: dict) -> Iterator[Page]:
        last_id = normalized_id(cursor.get("last_id"))
        while True:
            body = {"limit": REVIEWS_PAGE, "sort_dir": "ASC", "status": "ALL"}
            if last_id:
                body["last_id"] = last_id
            answer = self._read(REVIEW_LIST_PATH, body, purpose=_REVIEWS)
            reviews = [r for r in answer.get("reviews") or [] if isinstance(r, dict) and normalized_id(r.get("id"))]
            next_id = normalized_id(answer.get("last_id")) or (normalized_id(reviews[-1]["id"]) if reviews else last_id)
            more = bool(answer.get("has_next")) and bool(next_id) and next_id != last_id
            if reviews or next_id != last_id:
                yield Page([_review_item(review) for review in reviews], {"last_id": next_id}, more=more)
            if not more:
                break
            last_id = next_id

    # Sending ------------------------------------------------------------------

    def send(self, thread: Thread, text: str) -> str:
        if not (text or "").strip():
            raise MarketplaceApiError("EMPTY_TEXT", "пустой ответ не отправляется", permanent=True)
        if len(text) > self.max_text_chars:
            raise MarketplaceApiError(
                "OZON_TEXT_TOO_LONG", f"Ozon принимает не больше {self.max_text_chars} символов", permanent=True
            )
        if thread.stream == REVIEWS:
            body = {"review_id": thread.thread_id, "text": text, "mark_review_as_processed": True}
            answer = self._send(REVIEW_COMMENT_PATH, body, purpose=_REVIEWS)
            return normalized_id(answer.get("comment_id"))
        if thread.stream != CHAT:
            raise ValueError(f"Ozon has no stream {thread.stream!r}")
        sent_at = self.http.clock()
        answer = self._send(CHAT_SEND_PATH, {"chat_id": thread.thread_id, "text": text}, purpose=_SEND_CHAT)
        if str(answer.get("result") or "").lower() not in ("success", "ok", "true"):
            logger.warning("ozon account %s: send answered %r", self.account.pk, answer.get("result"))
        return self._sent_message_id(thread.thread_id, text, sent_at)

    def _send(self, path: str, body: dict, *, purpose: str) -> dict:
        def attempt():
            try:
                return self._post(path, body, purpose=purpose)
            except MarketplaceApiError as exc:
                if exc.code in _SEND_UNKNOWN_CODES or exc.status in _SEND_UNKNOWN_STATUSES:
                    # Not an ApiError, so the seam does not retry it: a second copy could reach the buyer.
                    raise SendOutcomeUnknown(f"ozon {path}: {exc.code}") from None
                raise

        # Retried only for what Ozon surely did not take: a 429, a 503, our own rate limit.
        return self.http.retrying(attempt, what=path)

    def _sent_message_id(self, chat_id: str, text: str, sent_at: float) -> str:
        """Ozon answers a send with {"result": "success"} only: the id is our newest message with that text."""
        body = {"chat_id": chat_id, "direction": "Backward", "limit": SENT_LOOKBACK}
        try:
            answer = self._post(CHAT_HISTORY_PATH, body, purpose=_READ_CHATS)
        except MarketplaceApiError as exc:
            logger.info("ozon account %s: sent message id not found (%s)", self.account.pk, exc.code)
            return ""
        for message in reversed(_chronological(answer.get("messages"))):
            user = message.get("user") if isinstance(message.get("user"), dict) else {}
            created_at = parse_time(message.get("created_at"))
            if (
                author_of(user.get("type")) == SELLER
                and created_at is not None
                and created_at.timestamp() >= sent_at - SENT_CLOCK_SKEW_S
                and message_text_and_attachments(message)[0] == text.strip()
            ):
                return normalized_id(message.get("message_id"))
        return ""

    # Key check ----------------------------------------------------------------

    def check_key(self) -> KeyCheck:
        if not str(self.account.client_id or "").strip() or not str(self.account.api_key or "").strip():
            return KeyCheck(False, "Укажите Client-Id и Api-Key")
        try:
            self._post(CHAT_LIST_PATH, {"filter": {"chat_status": "All"}, "limit": 1}, purpose=_READ_CHATS)
        except MarketplaceApiError as exc:
            return KeyCheck(False, _key_check_failure(exc), capabilities=exc.capabilities)
        capabilities = {"chat_read": True}
        detail = "Ключ работает"
        try:
            self._post(REVIEW_LIST_PATH, {"limit": 20, "sort_dir": "DESC", "status": "ALL"}, purpose=_REVIEWS)
        except MarketplaceApiError as exc:
            if exc.capabilities.get("reviews") is False:
                capabilities["reviews"] = False
                detail += "; отзывы недоступны: нужна подписка Premium Plus"
        else:
            capabilities["reviews"] = True
            detail += "; отзывы доступны"
        return KeyCheck(True, detail, capabilities=capabilities)

    # Push notifications -------------------------------------------------------

    def poll_hint(self, payload: dict) -> list[str]:
        kind = push_type(payload)
        if kind not in CHAT_PUSH_TYPES:
            return []  # a ping, or news of postings and products: nothing to read
        chat_type = payload.get("chat_type")
        if chat_type and not is_buyer_chat(chat_type):
            return []
        return [CHAT]

    # HTTP ---------------------------------------------------------------------

    def _headers(self) -> dict:
        return {
            "Client-Id": str(self.account.client_id or "").strip(),
            "Api-Key": str(self.account.api_key or "").strip(),
        }

    def _read(self, path: str, body: dict, *, purpose: str = _READ_CHATS) -> dict:
        return self.http.retrying(lambda: self._post(path, body, purpose=purpose), what=path)

    def _post(self, path: str, body: dict, *, purpose: str) -> dict:
        response = self.http.send(
            "POST", f"{self.account.api_base_url}{path}", limits=[self.limit], json=body, headers=self._headers()
        )
        return self._answer(response, purpose)

    def _answer(self, response: requests.Response, purpose: str) -> dict:
        """Ozon's answer as its JSON object, or the MarketplaceApiError that says what to do about it."""
        status = response.status_code
        if 200 <= status < 300:
            try:
                body = response.json()
            except ValueError:
                raise MarketplaceApiError("BAD_RESPONSE", f"HTTP {status}, not JSON", status=status) from None
            if not isinstance(body, dict):
                raise MarketplaceApiError("BAD_RESPONSE", "not a JSON object", status=status)
            return body
        description = self._error_description(response)
        if status == 401:
            raise MarketplaceApiError(
                "OZON_UNAUTHORIZED",
                _joined(KEY_REJECTED, description),
                status=status,
                permanent=True,
                stops_account=True,
            )
        if status == 403 and purpose == _SEND_CHAT:
            raise MarketplaceApiError(
                "OZON_PREMIUM_REQUIRED",
                _joined(PREMIUM_REQUIRED, description),
                status=status,
                permanent=True,
                capabilities={"chat_send": False},
            )
        if status == 403 and purpose == _REVIEWS:
            raise MarketplaceApiError(
                "OZON_REVIEWS_UNAVAILABLE",
                _joined(REVIEWS_UNAVAILABLE, description),
                status=status,
                permanent=True,
                capabilities={"reviews": False},
            )
        if status == 403:
            raise MarketplaceApiError(
                "OZON_FORBIDDEN",
                _joined(CHATS_FORBIDDEN, description),
                status=status,
                permanent=True,
                stops_account=True,
            )
        raise MarketplaceApiError(
            f"HTTP_{status}",
            description,
            status=status,
            permanent=is_permanent_status(status),
            retry_after=self._retry_after(response) if status == 429 else None,
        )

    def _error_description(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
        return redact(message, str(self.account.api_key or ""))[:DESCRIPTION_CHARS]

    def _retry_after(self, response: requests.Response) -> float | None:
        value = (response.headers.get("Retry-After") or "").strip()
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - self.http.clock())


def _chat_cursor(known: dict, list_cursor: str) -> dict:
    cursor = {"chats": dict(known)}
    if list_cursor:
        cursor["list_cursor"] = list_cursor
    return cursor


def _unread_count(info: dict) -> int:
    count = info.get("unread_count")
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def _unread_first(chats) -> list[dict]:
    chats = [info for info in chats or [] if isinstance(info, dict)]
    return sorted(chats, key=lambda info: _unread_count(info) == 0)


def _chronological(messages) -> list[dict]:
    """Messages with an id, oldest first, whichever `direction` they came in."""
    messages = [m for m in messages or [] if isinstance(m, dict) and normalized_id(m.get("message_id"))]
    numbers = [_id_number(normalized_id(m.get("message_id"))) for m in messages]
    if all(number is not None for number in numbers):
        return [m for _number, m in sorted(zip(numbers, messages, strict=True), key=lambda pair: pair[0])]
    return sorted(
        messages, key=lambda m: parse_time(m.get("created_at")) or datetime.datetime.min.replace(tzinfo=datetime.UTC)
    )


def _review_item(review: dict) -> PolledItem:
    context = {}
    sku = normalized_id(review.get("sku"))
    if sku and sku != "0":
        context["sku"] = sku
    rating = review.get("rating")
    if isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 5:
        context["rating"] = rating
    review_id = normalized_id(review.get("id"))
    return PolledItem(
        thread_id=review_id,
        message_id=review_id,
        text=str(review.get("text") or "").strip(),
        created_at=parse_time(review.get("published_at")),
        context=context,
        raw=dict(review),
        # Processed in the cabinet (answered or dismissed there): recorded, not answered.
        needs_reply=str(review.get("status") or "").upper() != "PROCESSED",
    )


def _key_check_failure(exc: MarketplaceApiError) -> str:
    if exc.status == 401:
        return KEY_REJECTED
    if exc.status == 403:
        return "Ozon принял ключ, но не дал доступа к чатам: проверьте права ключа"
    if exc.status == 429:
        return "Ozon ограничил частоту запросов: проверьте ключ через минуту"
    if exc.permanent:
        return _joined(f"Ozon ответил ошибкой {exc.code}", exc.description)
    return f"Ozon не ответил ({exc.code}): попробуйте позже"


def _joined(reason: str, ozon_message: str) -> str:
    return f"{reason} (Ozon: {ozon_message})" if ozon_message else reason
