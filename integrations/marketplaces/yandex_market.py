"""Yandex Market Partner API chats, as a marketplace connector (integrations/marketplaces/base.py).

What it calls (https://yandex.ru/dev/market/partner-api/doc/ru/reference/chats/,
shapes in tests/integrations/marketplaces/fixtures/yandex_market/NOTES.md):

- `POST /v2/businesses/{businessId}/chats` with the filter `statuses:
  [WAITING_FOR_PARTNER, NEW]`: the chats where the store has to answer, 20 a
  page, paged by `page_token` (the spec takes `pageToken` too);
- `POST /v2/businesses/{businessId}/chats/history?chatId=` with
  `{"messageIdFrom": N}`: a chat's messages from N on, paged the same way;
- `POST /v2/businesses/{businessId}/chats/message?chatId=` with
  `{"message": text}` (1-4096 characters): the answer. Market gives no id for it.

The key goes in the `Api-Key` header (Market's current tokens; the older
OAuth tokens, `Authorization: Bearer`, are not supported here).

Limits: Market lets four requests to one business be in flight at once and
answers 420 past that (and past a method's hourly quota). Every request holds
a slot of a ConcurrencyLimit keyed by business (shared by every process via
Redis) and a token of the business's bucket; a 420 or 429 is a back-off (the
seam waits for X-RateLimit-Resource-Until / Retry-After, or a default), and
401/403 stop the account.

The cursor of the "chat" stream is
{"chats": {"<chatId>": "<last messageId>"}, "updatedAt": {"<chatId>": "<chat's updatedAt>"}}:
the chats list is read on every poll (it is short: only chats waiting for us),
and each listed chat's history from its stored id on, unless the chat's
`updatedAt` (the time of its last message) is the one stored when its history
was last read to the end: a chat kept waiting (a draft for an operator, a
question not answered automatically) stays listed, and reading it on every
poll would spend the history method's hourly quota on nothing. An
`updatedAt` that moved, or one not stored (a cursor from before it was kept,
a chat never seen), means the history is read. A chat never seen is read
from its start; the poller's dedupe on (chat, message) makes a re-read
harmless, which is why the cursor may forget the oldest chats.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.http import USER_AGENT, ApiError, is_permanent_status, redact
from integrations.marketplaces.base import (
    CHAT,
    CUSTOMER,
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
from integrations.ratelimit import ConcurrencyLimit, ConcurrencyTimeout

logger = logging.getLogger(__name__)

MARKETPLACE = "yandex_market"
MAX_TEXT_CHARS = 4096
# Market's global limit: requests in flight at once per business (concepts/limits).
MAX_IN_FLIGHT = 4
# Our own pace per business, under the chats methods' hourly quotas (5,000 lists, 10,000 histories).
RATE_PER_S = 2.0
RATE_BURST = MAX_IN_FLIGHT
# A 420/429 with no hint of its own: a parallel-requests 420 passes within moments.
RATE_LIMIT_BACKOFF_S = 2.0
MIN_RETRY_AFTER_S = 0.5
CHATS_PAGE_LIMIT = 20  # the method's maximum
HISTORY_PAGE_LIMIT = 100  # the method's maximum
WAITING_STATUSES = ("WAITING_FOR_PARTNER", "NEW")
# Chats remembered in the cursor; the ones with the oldest last message go first.
MAX_CURSOR_CHATS = 2000
# Longer than any ISO date-time Market writes: anything else is not stored (the chat is read every poll).
MAX_UPDATED_AT_CHARS = 64
DESCRIPTION_CHARS = 300
CHAT_NOTIFICATIONS = frozenset(
    {"CHAT_CREATED", "CHAT_MESSAGE_SENT", "CHAT_ARBITRAGE_STARTED", "CHAT_ARBITRAGE_FINISHED"}
)
TRANSPORT_CODES = frozenset({"TIMEOUT", "CONNECTION_ERROR"})

AUTHORS = {"CUSTOMER": CUSTOMER, "PARTNER": SELLER}  # MARKET, SUPPORT and anything new: SYSTEM
_DIGITS = re.compile(r"^[1-9][0-9]{0,18}$")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".bmp")


class YandexMarketConnector(Connector):
    marketplace = MARKETPLACE
    streams = (CHAT,)
    max_text_chars = MAX_TEXT_CHARS

    # Configuration -------------------------------------------------------------

    @property
    def business_id(self) -> str:
        return str(getattr(self.account, "business_id", "") or "").strip()

    @property
    def base_url(self) -> str:
        base = getattr(self.account, "api_base_url", "") or "https://api.partner.market.yandex.ru"
        return base.rstrip("/")

    def _key(self) -> str:
        return str(getattr(self.account, "api_key", "") or "").strip()

    def _check_configured(self) -> None:
        if not self._key():
            raise MarketplaceApiError(
                "NOT_CONFIGURED", "не указан ключ API Маркета", permanent=True, stops_account=True
            )
        if not _DIGITS.match(self.business_id):
            # It goes into the URL's path: digits only, as Market issues it.
            raise MarketplaceApiError(
                "NOT_CONFIGURED",
                "не указан businessId кабинета Маркета (число из GET v2/campaigns)",
                permanent=True,
                stops_account=True,
            )

    @property
    def _identity(self) -> str:
        return f"ym:{self.business_id}"

    # Requests ------------------------------------------------------------------

    @contextmanager
    def _in_flight(self):
        # One slot per attempt, not per call: a retry's backoff sleep must not hold one.
        limit = ConcurrencyLimit(
            self._identity,
            MAX_IN_FLIGHT,
            # A holding outlives the request it guards (its timeout included), then counts as gone.
            ttl_s=self.http.timeout + 30.0,
            max_wait=self.http.max_wait,
            clock=self.http.clock,
            sleep=self.http.sleep,
        )
        try:
            limit.acquire()
        except ConcurrencyTimeout as exc:
            raise self.http.error_class(
                "RATE_LIMITED", "client-side concurrency limit: no request slot soon enough", retry_after=exc.wait
            ) from None
        try:
            yield
        finally:
            limit.release()

    def _call(
        self,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        what: str,
        retry_if: Callable[[ApiError], bool] | None = None,
    ) -> dict:
        """POST one method; its `result` ({} when there is none). `retry_if` narrows what the seam retries."""
        self._check_configured()
        url = f"{self.base_url}/v2/businesses/{self.business_id}/{path}"
        bucket = self.http.limiter(
            self._identity,
            rate=getattr(settings, "YANDEX_MARKET_RATE_PER_S", RATE_PER_S),
            burst=RATE_BURST,
        )
        headers = {"Api-Key": self._key(), "Accept": "application/json"}

        def attempt() -> dict:
            with self._in_flight():
                response = self.http.send("POST", url, limits=[bucket], params=params, json=body or {}, headers=headers)
            return self._answer(response)

        return self.http.retrying(attempt, what=what, retry_if=retry_if)

    def _answer(self, response: requests.Response) -> dict:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else None
        description = self._describe(body)
        if status in (420, 429):
            # Market's "Enhance Your Calm": a back-off, never permanent (is_permanent_status would say so).
            raise MarketplaceApiError(
                "RATE_LIMITED",
                description or f"HTTP {status}",
                status=status,
                retry_after=self._retry_after(response),
            )
        if status in (401, 403):
            what = "не принял ключ API" if status == 401 else "отказал в доступе по этому ключу"
            raise MarketplaceApiError(
                self._error_code(body) or f"HTTP_{status}",
                f"Маркет {what} (HTTP {status}): {description or 'без пояснений'}. "
                "Проверьте ключ, businessId и доступ «Общение с покупателями» (communication).",
                status=status,
                permanent=True,
                stops_account=True,
            )
        if status >= 400:
            raise MarketplaceApiError(
                self._error_code(body) or f"HTTP_{status}",
                description or f"HTTP {status}",
                status=status,
                permanent=status < 500 and is_permanent_status(status),
            )
        if body is None:
            raise MarketplaceApiError("BAD_RESPONSE", f"HTTP {status}, not a JSON object", status=status)
        if body.get("status") == "ERROR":
            raise MarketplaceApiError(self._error_code(body) or "ERROR", description, status=status)
        result = body.get("result")
        return result if isinstance(result, dict) else {}

    def _describe(self, body: dict | None) -> str:
        errors = (body or {}).get("errors")
        if not isinstance(errors, list):
            return ""
        parts = []
        for error in errors:
            if isinstance(error, dict):
                parts.append(": ".join(str(error[k]) for k in ("code", "message") if error.get(k)))
        return redact("; ".join(p for p in parts if p), self._key())[:DESCRIPTION_CHARS]

    @staticmethod
    def _error_code(body: dict | None) -> str:
        errors = (body or {}).get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code") or "")
            return code[:64] if re.fullmatch(r"[A-Za-z0-9_.-]+", code) else ""
        return ""

    def _retry_after(self, response: requests.Response) -> float:
        """Seconds until Market lets us in again: Retry-After, else X-RateLimit-Resource-Until, else a default."""
        now = self.http.clock()
        retry_after = (response.headers.get("Retry-After") or "").strip()
        if retry_after:
            try:
                return max(float(retry_after), MIN_RETRY_AFTER_S)
            except ValueError:
                until = _http_date(retry_after)
                if until is not None:
                    return max(until - now, MIN_RETRY_AFTER_S)
        until = _http_date(response.headers.get("X-RateLimit-Resource-Until") or "")
        if until is not None:
            return max(until - now, MIN_RETRY_AFTER_S)
        return RATE_LIMIT_BACKOFF_S

    # Polling -------------------------------------------------------------------

    def pages(self, stream: str, cursor: dict) -> Iterator[Page]:
        if stream != CHAT:
            raise ValueError(f"Yandex Market has no {stream!r} stream here")
        last_ids, seen = _load_cursor(cursor)
        done: set[str] = set()
        for chat in self._waiting_chats():
            chat_id = _id(chat.get("chatId"))
            if not chat_id or chat_id in done:
                # Chats move between pages while their status changes: each is read once a poll.
                continue
            done.add(chat_id)
            updated_at = _updated_at(chat.get("updatedAt"))
            if updated_at and seen.get(chat_id) == updated_at:
                # No message since its history was last read to the end.
                continue
            yield from self._chat_pages(chat_id, chat, last_ids, seen, updated_at)

    def _waiting_chats(self) -> Iterator[dict]:
        token = ""
        seen_tokens: set[str] = set()
        while True:
            params = {"limit": CHATS_PAGE_LIMIT}
            if token:
                params["page_token"] = token
            result = self._call("chats", params=params, body={"statuses": list(WAITING_STATUSES)}, what="chats")
            chats = result.get("chats") if isinstance(result.get("chats"), list) else []
            yield from (chat for chat in chats if isinstance(chat, dict))
            token = _next_token(result)
            # A token given twice would page forever.
            if not token or not chats or token in seen_tokens:
                return
            seen_tokens.add(token)

    def _chat_pages(
        self, chat_id: str, chat: dict, last_ids: dict[str, int], seen: dict[str, str], updated_at: str
    ) -> Iterator[Page]:
        """The chat's new messages; its `updatedAt` (as listed before the read) goes into the last page's cursor.

        A chat that gave nothing new still gets a page with no items when its
        `updatedAt` is new to the cursor, so that it is not read again next poll.
        """
        # Filter against where this poll started, not the advancing cursor, so
        # a history served newest-first still yields all its pages.
        from_id = last_ids.get(chat_id, 0)
        # Market reads "from" inclusively; the stored message coming back is dropped below.
        body = {"messageIdFrom": from_id} if from_id else {}
        token = ""
        seen_tokens: set[str] = set()
        while True:
            params = {"chatId": chat_id, "limit": HISTORY_PAGE_LIMIT}
            if token:
                params["page_token"] = token
            result = self._call("chats/history", params=params, body=body, what="chats/history")
            messages = result.get("messages") if isinstance(result.get("messages"), list) else []
            items = []
            for message in messages:
                number = _number(message.get("messageId")) if isinstance(message, dict) else None
                if number is None:
                    logger.warning("yandex_market chat %s: a message without a usable id, skipped", chat_id)
                    continue
                if number > from_id:
                    items.append((number, self._item(chat_id, chat, result, message)))
            token = _next_token(result)
            more = bool(token) and bool(messages) and token not in seen_tokens
            # Only a history read to its end makes the chat's updatedAt seen: a poll cut short reads it again.
            newly_seen = not more and bool(updated_at) and seen.get(chat_id) != updated_at
            if newly_seen:
                seen[chat_id] = updated_at
            if items:
                items.sort(key=lambda pair: pair[0])
                last_ids[chat_id] = max(last_ids.get(chat_id, 0), items[-1][0])
                yield Page([item for _, item in items], _dump_cursor(last_ids, seen), more=more)
            elif newly_seen:
                yield Page([], _dump_cursor(last_ids, seen), more=False)
            if not more:
                return
            seen_tokens.add(token)

    def _item(self, chat_id: str, chat: dict, result: dict, message: dict) -> PolledItem:
        context = _dict(result.get("context")) or _dict(chat.get("context"))
        customer = _dict(context.get("customer"))
        order_id = _id(context.get("orderId")) or _id(result.get("orderId")) or _id(chat.get("orderId"))
        item_context = {"chat_type": str(chat.get("type") or ""), "context_type": str(context.get("type") or "")}
        if order_id:
            item_context["order_number"] = order_id
        if _id(context.get("returnId")):
            item_context["return_id"] = _id(context.get("returnId"))
        if _id(context.get("campaignId")):
            item_context["campaign_id"] = _id(context.get("campaignId"))
        author = AUTHORS.get(str(message.get("sender") or ""), SYSTEM)
        created = message.get("createdAt")
        return PolledItem(
            thread_id=chat_id,
            message_id=_id(message.get("messageId")),
            text=str(message.get("message") or ""),
            author=author,
            created_at=parse_datetime(created) if isinstance(created, str) else None,
            customer_name=str(customer.get("name") or ""),
            customer_id=str(customer.get("publicId") or ""),
            context=item_context,
            attachments=_attachments(message.get("payload")),
            raw=message,
            # The store's own and Market's messages are history, not questions to answer.
            needs_reply=author == CUSTOMER,
        )

    # Sending -------------------------------------------------------------------

    def send(self, thread: Thread, text: str) -> str:
        if thread.stream != CHAT:
            raise ValueError(f"Yandex Market has no {thread.stream!r} stream here")
        chat_id = str(thread.thread_id or "")
        if not _DIGITS.match(chat_id):
            raise MarketplaceApiError("BAD_THREAD", f"not a Market chat id: {chat_id[:40]!r}", permanent=True)
        if not text or not text.strip():
            raise MarketplaceApiError("EMPTY_TEXT", "nothing to send", permanent=True)
        if len(text) > self.max_text_chars:
            raise MarketplaceApiError(
                "TEXT_TOO_LONG", f"{len(text)} characters, Market takes {self.max_text_chars}", permanent=True
            )
        try:
            result = self._call(
                "chats/message",
                params={"chatId": chat_id},
                body={"message": text},
                what="chats/message",
                # Only a refusal before the message was taken (420/429, our own limits) is safe to repeat.
                retry_if=lambda exc: exc.code == "RATE_LIMITED",
            )
        except MarketplaceApiError as exc:
            if exc.code in TRANSPORT_CODES:
                raise SendOutcomeUnknown(f"yandex_market chats/message: {exc.code} ({exc.description})") from exc
            raise
        # The documented answer is {"status": "OK"}; an id is taken if Market ever adds one.
        return _id(result.get("messageId"))

    # Key check -----------------------------------------------------------------

    def check_key(self) -> KeyCheck:
        try:
            result = self._call("chats", params={"limit": 1}, body={}, what="check key")
        except MarketplaceApiError as exc:
            return KeyCheck(ok=False, detail=_key_check_detail(exc, self.business_id))
        count = len(result.get("chats") or []) if isinstance(result.get("chats"), list) else 0
        detail = f"Ключ работает: чаты кабинета {self.business_id} доступны"
        return KeyCheck(ok=True, detail=detail + ("." if count else ", чатов пока нет."))

    # Notifications -------------------------------------------------------------

    def poll_hint(self, payload: dict) -> list[str]:
        """Market may repeat a notification: a repeat asks for the same poll, which finds nothing new."""
        if isinstance(payload, dict) and payload.get("notificationType") in CHAT_NOTIFICATIONS:
            return [CHAT]
        return []


def notification_answer(payload: dict | None = None, *, now: datetime.datetime | None = None) -> dict:
    """The 200 body Market expects for every notification, PING included: {"version", "name", "time"}.

    The answer is the same whatever the notification; `time` is when we started
    processing, in UTC. Market waits 1 second for a PING's answer and 10 for
    others, so the webhook answers first and polls later (poll_hint).
    """
    name, _slash, version = USER_AGENT.partition("/")
    moment = (now or timezone.now()).astimezone(datetime.UTC)
    return {"version": version or "1", "name": name, "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


# Helpers -----------------------------------------------------------------------------


def _key_check_detail(exc: MarketplaceApiError, business_id: str) -> str:
    if exc.code == "NOT_CONFIGURED":
        return f"Не настроено: {exc.description}."
    if exc.stops_account:
        return exc.description
    if exc.status == 404:
        return f"Маркет не нашёл кабинет {business_id}: проверьте businessId (GET v2/campaigns)."
    if exc.code == "RATE_LIMITED":
        return "Маркет просит сделать паузу (лимит запросов): проверьте ключ чуть позже."
    if exc.code in TRANSPORT_CODES or (exc.status or 0) >= 500:
        return f"Маркет сейчас не отвечает ({exc.code}): ключ не проверен, попробуйте позже."
    return f"Маркет ответил ошибкой {exc.code}: {exc.description}"[:DESCRIPTION_CHARS]


def _load_cursor(cursor: dict | None) -> tuple[dict[str, int], dict[str, str]]:
    """(last message id, updatedAt seen) by chat. A cursor without "updatedAt" (the older format) has none seen."""
    cursor = cursor if isinstance(cursor, dict) else {}
    chats = cursor.get("chats")
    last_ids: dict[str, int] = {}
    if isinstance(chats, dict):
        for chat_id, last in chats.items():
            number = _number(last)
            if number is not None:
                last_ids[str(chat_id)] = number
    updated = cursor.get("updatedAt")
    seen: dict[str, str] = {}
    if isinstance(updated, dict):
        for chat_id, value in updated.items():
            value = _updated_at(value)
            if value:
                seen[str(chat_id)] = value
    return last_ids, seen


def _dump_cursor(last_ids: dict[str, int], seen: dict[str, str]) -> dict:
    # One bound for both maps: a chat is kept (its last id and updatedAt) or forgotten whole;
    # one with no message id yet counts as the oldest.
    chat_ids = sorted(set(last_ids) | set(seen), key=lambda chat_id: (last_ids.get(chat_id, 0), chat_id), reverse=True)
    kept = sorted(chat_ids[:MAX_CURSOR_CHATS])
    cursor = {"chats": {chat_id: str(last_ids[chat_id]) for chat_id in kept if chat_id in last_ids}}
    updated = {chat_id: seen[chat_id] for chat_id in kept if chat_id in seen}
    if updated:
        cursor["updatedAt"] = updated
    return cursor


def _updated_at(value) -> str:
    """A chat's `updatedAt` as Market wrote it, compared as text: any change of it means "read again"."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return value if len(value) <= MAX_UPDATED_AT_CHARS else ""


def _next_token(result: dict) -> str:
    token = _dict(result.get("paging")).get("nextPageToken")
    return token if isinstance(token, str) else ""


def _number(value) -> int | None:
    """Market's int64 ids (numbers, or strings in notifications) as ints for ordering."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def _id(value) -> str:
    number = _number(value)
    return str(number) if number is not None else ""


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _attachments(payload) -> list[dict]:
    files = []
    for entry in payload if isinstance(payload, list) else []:
        if not isinstance(entry, dict) or not entry.get("url"):
            continue
        name = str(entry.get("name") or "")
        kind = "photo" if name.lower().endswith(_IMAGE_EXTENSIONS) else "document"
        attachment = {"kind": kind, "file_id": str(entry["url"]), "url": str(entry["url"]), "file_name": name}
        if isinstance(entry.get("size"), int):
            attachment["file_size"] = entry["size"]
        files.append(attachment)
    return files


def _http_date(value: str) -> float | None:
    """An RFC 822 date (Market's X-RateLimit-Resource-Until, an HTTP Retry-After) as a Unix time."""
    if not value or not value.strip():
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    timestamp = moment.timestamp()
    return timestamp if math.isfinite(timestamp) else None
