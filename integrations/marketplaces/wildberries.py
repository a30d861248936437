"""Wildberries: buyer chats (buyer-chat-api) and questions and reviews (feedbacks-api).

Two APIs, two keys: WB scopes a token by category, and a seller may give one
token with «Чат с покупателями» and another with «Вопросы и отзывы»
(`feedbacks_api_key`, falling back to `api_key`). Every request carries the
token as is in `Authorization` (no "Bearer").

Chat ("chat" stream): `GET /api/v1/seller/events` is one feed of every
chat's events, paged by `next` (a Unix time in milliseconds) until
`totalEvents` is 0. The cursor is {"next": <the last answer's next>}; an
answer with no events leaves it as it was, so a quiet poll changes nothing.
An answer goes out as multipart/form-data with the chat's `replySign`, which
WB gives only in the chat list and in a chat's first event
(`isNewChat: true`); the poller stores it per chat from
PolledItem.context["reply_sign"]. The chat list is read once per poll when
an event comes without a sign, so a chat the poller met before its sign was
known still gets one. `sender: "wb"` is Wildberries itself (SYSTEM).

Questions and reviews: `GET /api/v1/new-feedbacks-questions` says whether
there is anything the seller has not viewed; only then, or when the last full
listing is older than RELIST_AFTER_S (a question viewed in the cabinet but
left unanswered is no longer "new"), unanswered items are listed with
take/skip. Listing unanswered items is idempotent and the poller dedupes by
id, so the cursor only says when the last full listing ended:
{"listed_at": <unix seconds>}, {} before the first one. A question or review
is its own thread: thread_id and message_id are its id.

Errors: 401 and 403 stop the account (the key is wrong, expired, or lacks
the category: WB answers 401 for a token of another category too); 429 is
transient with `X-Ratelimit-Retry` (seconds) or `Retry-After`, and drains
our bucket; 5xx transient. A send is never repeated after a timeout, a lost
connection or a gateway timeout (504): SendOutcomeUnknown. Reads are retried
by the seam; sends only after a 429 (WB refused them before doing anything).

Limits (per seller account, docs of each method): chat 10 requests in 10 s,
burst 10; questions and reviews share 3 a second, burst 6. A "base" token
gets 1 chat request an hour and 5 feedbacks requests an hour.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterator

import requests

from integrations.http import ApiError, is_permanent_status, redact
from integrations.marketplaces.base import (
    CHAT,
    CUSTOMER,
    QUESTIONS,
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
from integrations.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

CHAT_API = "chat"
FEEDBACKS_API = "feedbacks"

# The categories as the seller's cabinet names them when a token is made.
SCOPE_NAMES = {CHAT_API: "«Чат с покупателями»", FEEDBACKS_API: "«Вопросы и отзывы»"}

# (rate per second, burst) per API; "base" tokens have their own, far lower, limits.
LIMITS = {CHAT_API: (1.0, 10), FEEDBACKS_API: (3.0, 6)}
BASE_TOKEN_LIMITS = {CHAT_API: (1 / 3600, 1), FEEDBACKS_API: (5 / 3600, 1)}

# A full listing of unanswered items at least this often, whatever the probe says.
RELIST_AFTER_S = 30 * 60
# WB's ceilings: questions take + skip <= 10,000; reviews take <= 5,000, skip <= 199,990.
MAX_QUESTIONS_OFFSET = 10_000
MAX_REVIEWS_SKIP = 199_990

SENDERS = {"client": CUSTOMER, "seller": SELLER, "wb": SYSTEM}
DESCRIPTION_CHARS = 300
_FRACTION = re.compile(r"(\.\d{6})\d+")


class WildberriesConnector(Connector):
    marketplace = "wildberries"
    streams = (CHAT, QUESTIONS, REVIEWS)
    max_text_chars = 1000
    # Items asked for per questions/reviews request.
    page_size = 500
    # Event pages read in one poll; the rest waits for the next one.
    max_event_pages = 50

    # Polling -------------------------------------------------------------------

    def pages(self, stream: str, cursor: dict) -> Iterator[Page]:
        if stream == CHAT:
            return self._chat_pages(dict(cursor or {}))
        if stream in (QUESTIONS, REVIEWS):
            return self._feedback_pages(stream, dict(cursor or {}))
        raise ValueError(f"Wildberries has no stream {stream!r}")

    def _chat_pages(self, cursor: dict) -> Iterator[Page]:
        chats: dict[str, dict] | None = None
        for _number in range(self.max_event_pages):
            params = {"next": cursor["next"]} if cursor.get("next") is not None else {}
            body = self._request(CHAT_API, "GET", "/api/v1/seller/events", what="events", params=params)
            result = body.get("result") if isinstance(body.get("result"), dict) else {}
            events = [event for event in result.get("events") or [] if isinstance(event, dict)]
            total = result.get("totalEvents")
            if not events or (total is not None and not _int(total)):
                # The end. What `next` an empty answer carries is not documented: the cursor stays
                # where the last events ended, and the poller dedupes anything read twice.
                yield Page(self._events(events, chats or {}), cursor, more=False)
                return
            if chats is None and any(not event.get("replySign") for event in events):
                chats = self._chats()
            new_next = result.get("next")
            # A `next` that does not move would read the same page forever.
            stalled = new_next is None or new_next == cursor.get("next")
            if new_next is not None:
                cursor = {"next": new_next}
            yield Page(self._events(events, chats or {}), cursor, more=not stalled)
            if stalled:
                return

    def _events(self, events: list[dict], chats: dict[str, dict]) -> list[PolledItem]:
        items = []
        for event in events:
            if event.get("eventType", "message") != "message":
                continue
            items.append(self._event_item(event, chats.get(str(event.get("chatID") or ""), {})))
        return items

    def _event_item(self, event: dict, chat: dict) -> PolledItem:
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        attachments = message.get("attachments") if isinstance(message.get("attachments"), dict) else {}
        author = SENDERS.get(str(event.get("sender") or ""), SYSTEM)
        context: dict = {}
        reply_sign = event.get("replySign") or chat.get("replySign")
        if reply_sign:
            context["reply_sign"] = str(reply_sign)
        if event.get("isNewChat"):
            context["is_new_chat"] = True
        card = attachments.get("goodCard") if isinstance(attachments.get("goodCard"), dict) else None
        card = card or (chat.get("goodCard") if isinstance(chat.get("goodCard"), dict) else {})
        if card.get("nmID") is not None:
            context["nm_id"] = str(card["nmID"])
        if card.get("rid"):
            context["order_number"] = str(card["rid"])
        if event.get("source"):
            context["source"] = str(event["source"])
        return PolledItem(
            thread_id=str(event.get("chatID") or ""),
            message_id=str(event.get("eventID") or ""),
            text=str(message.get("text") or ""),
            author=author,
            created_at=_from_timestamp(event.get("addTimestamp")) or _parse_datetime(event.get("addTime")),
            customer_name=str(event.get("clientName") or chat.get("clientName") or ""),
            customer_id=str(event.get("clientID") or chat.get("clientID") or ""),
            context=context,
            attachments=_chat_attachments(attachments),
            raw=event,
            needs_reply=author == CUSTOMER,
        )

    def _chats(self) -> dict[str, dict]:
        """The seller's chats by id: where reply signs and the product of a chat come from."""
        body = self._request(CHAT_API, "GET", "/api/v1/seller/chats", what="chats")
        result = body.get("result") if isinstance(body.get("result"), list) else []
        return {str(chat["chatID"]): chat for chat in result if isinstance(chat, dict) and chat.get("chatID")}

    def _feedback_pages(self, stream: str, cursor: dict) -> Iterator[Page]:
        body = self._request(FEEDBACKS_API, "GET", "/api/v1/new-feedbacks-questions", what="new-feedbacks-questions")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        has_new = bool(data.get("hasNewQuestions" if stream == QUESTIONS else "hasNewFeedbacks"))
        listed_at = cursor.get("listed_at")
        fresh = isinstance(listed_at, int | float) and self.http.clock() - listed_at < RELIST_AFTER_S
        if not has_new and fresh:
            yield Page([], cursor, more=False)
            return
        # Until a listing is complete the cursor stays: an interrupted one starts again from the top.
        yield Page([], cursor, more=True)
        path, key = ("/api/v1/questions", "questions") if stream == QUESTIONS else ("/api/v1/feedbacks", "feedbacks")
        take, skip = self.page_size, 0
        while True:
            params = {"isAnswered": "false", "take": take, "skip": skip, "order": "dateAsc"}
            body = self._request(FEEDBACKS_API, "GET", path, what=key, params=params)
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            raw_items = [item for item in data.get(key) or [] if isinstance(item, dict)]
            build = self._question_item if stream == QUESTIONS else self._review_item
            items = [build(item) for item in raw_items]
            skip += take
            room = skip + take <= MAX_QUESTIONS_OFFSET if stream == QUESTIONS else skip <= MAX_REVIEWS_SKIP
            more = len(raw_items) >= take and room
            if more:
                yield Page(items, cursor, more=True)
                continue
            yield Page(items, {"listed_at": self.http.clock()}, more=False)
            return

    def _question_item(self, question: dict) -> PolledItem:
        answer = question.get("answer") if isinstance(question.get("answer"), dict) else None
        return PolledItem(
            thread_id=str(question.get("id") or ""),
            message_id=str(question.get("id") or ""),
            text=str(question.get("text") or ""),
            created_at=_parse_datetime(question.get("createdDate")),
            customer_name=str(question.get("userName") or ""),
            context=_product_context(question),
            raw=question,
            # "none": the seller rejected the question, it is not shown to buyers.
            needs_reply=not (answer and answer.get("text")) and question.get("state") != "none",
        )

    def _review_item(self, review: dict) -> PolledItem:
        answer = review.get("answer") if isinstance(review.get("answer"), dict) else None
        context = _product_context(review)
        if review.get("productValuation") is not None:
            context["rating"] = _int(review["productValuation"])
        pros, cons = str(review.get("pros") or ""), str(review.get("cons") or "")
        context.update(pros=pros, cons=cons, review_text=str(review.get("text") or ""))
        # Buyers often leave the text empty and write in pros and cons: the answer must see them all.
        parts = [str(review.get("text") or "").strip()]
        if pros.strip():
            parts.append(f"Достоинства: {pros.strip()}")
        if cons.strip():
            parts.append(f"Недостатки: {cons.strip()}")
        return PolledItem(
            thread_id=str(review.get("id") or ""),
            message_id=str(review.get("id") or ""),
            text="\n".join(part for part in parts if part),
            created_at=_parse_datetime(review.get("createdDate")),
            customer_name=str(review.get("userName") or ""),
            context=context,
            attachments=_review_attachments(review),
            raw=review,
            needs_reply=not (answer and answer.get("text")),
        )

    # Answers -------------------------------------------------------------------

    def send(self, thread: Thread, text: str, *, files: list[tuple[str, bytes, str]] | None = None) -> str:
        """The answer; "" (WB gives no id for it). `files` (chat only): (name, bytes, content type) each."""
        if not text.strip() and not files:
            raise MarketplaceApiError("EMPTY_TEXT", "nothing to send", permanent=True)
        if len(text) > self.max_text_chars:
            raise MarketplaceApiError(
                "TEXT_TOO_LONG", f"{len(text)} characters, Wildberries takes {self.max_text_chars}", permanent=True
            )
        if thread.stream == CHAT:
            return self._send_chat(thread, text, files or [])
        if files:
            raise MarketplaceApiError("FILES_NOT_SUPPORTED", "files go to buyer chats only", permanent=True)
        if thread.stream == QUESTIONS:
            return self._answer_question(thread, text)
        if thread.stream == REVIEWS:
            self._request(
                FEEDBACKS_API,
                "POST",
                "/api/v1/feedbacks/answer",
                what="review answer",
                sending=True,
                json={"id": thread.thread_id, "text": text},
            )
            return ""
        raise ValueError(f"Wildberries has no stream {thread.stream!r}")

    def edit_answer(self, thread: Thread, text: str) -> None:
        """Replace the answer already given: WB allows it once, within 60 days of the answer."""
        if len(text) > self.max_text_chars or not text.strip():
            raise MarketplaceApiError("BAD_TEXT", "empty or too long", permanent=True)
        if thread.stream == REVIEWS:
            self._request(
                FEEDBACKS_API,
                "PATCH",
                "/api/v1/feedbacks/answer",
                what="review answer edit",
                sending=True,
                json={"id": thread.thread_id, "text": text},
            )
            return
        if thread.stream == QUESTIONS:
            # The same call answers and edits a question.
            self._answer_question(thread, text)
            return
        raise MarketplaceApiError("NOT_EDITABLE", "Wildberries chat messages cannot be edited", permanent=True)

    def _answer_question(self, thread: Thread, text: str) -> str:
        body = {"id": thread.thread_id, "answer": {"text": text}, "state": "wbRu"}
        self._request(FEEDBACKS_API, "PATCH", "/api/v1/questions", what="question answer", sending=True, json=body)
        return ""

    def _send_chat(self, thread: Thread, text: str, files: list[tuple[str, bytes, str]]) -> str:
        sign = str(thread.context.get("reply_sign") or "")
        if not sign:
            sign = str(self._chats().get(thread.thread_id, {}).get("replySign") or "")
        if not sign:
            # The chat id is not a sign: WB would refuse it, or worse, take it for another chat's.
            raise MarketplaceApiError(
                "NO_REPLY_SIGN",
                f"Wildberries gave no replySign for the chat {thread.thread_id}",
                permanent=True,
            )
        # Tuples with no file name make requests send multipart/form-data even without a file.
        parts: list[tuple[str, tuple]] = [("replySign", (None, sign))]
        if text:
            parts.append(("message", (None, text)))
        parts.extend(("file", (name, content, content_type)) for name, content, content_type in files)
        body = self._request(CHAT_API, "POST", "/api/v1/seller/message", what="message", sending=True, files=parts)
        result = body.get("result") if isinstance(body.get("result"), dict) else {}
        errors = [str(error) for error in body.get("errors") or []]
        if errors and not result:
            raise MarketplaceApiError("SEND_REJECTED", "; ".join(errors)[:DESCRIPTION_CHARS], permanent=True)
        if errors:
            # The text went; a file did not (the errors are file upload errors): sending again would repeat the text.
            logger.warning("wildberries message to chat %s: files refused: %s", thread.thread_id, "; ".join(errors))
        return ""

    # Key check -----------------------------------------------------------------

    def check_key(self) -> KeyCheck:
        checks = (
            (CHAT_API, "/api/v1/seller/chats", self.account.chat_mode),
            (FEEDBACKS_API, "/api/v1/new-feedbacks-questions", _feedbacks_mode(self.account)),
        )
        capabilities: dict[str, bool] = {}
        lines, ok = [], True
        for api, path, mode in checks:
            needed = mode != "off"
            scope = SCOPE_NAMES[api]
            if not self._token(api):
                capabilities[api] = False
                lines.append(f"{scope}: ключ не задан.")
                ok = ok and not needed
                continue
            try:
                self._request(api, "GET", path, what=f"{api} key check")
            except MarketplaceApiError as exc:
                if exc.stops_account:
                    capabilities[api] = False
                    lines.append(f"{scope}: {exc.description}")
                else:
                    lines.append(f"{scope}: проверить не удалось ({exc.code}), попробуйте позже.")
                ok = ok and not needed
                continue
            capabilities[api] = True
            lines.append(f"{scope}: ключ работает.")
        return KeyCheck(ok=ok, detail=" ".join(lines), capabilities=capabilities)

    # HTTP ----------------------------------------------------------------------

    def _token(self, api: str) -> str:
        if api == FEEDBACKS_API:
            return (self.account.feedbacks_api_key or self.account.api_key or "").strip()
        return (self.account.api_key or "").strip()

    def _base_url(self, api: str) -> str:
        return self.account.feedbacks_api_base_url if api == FEEDBACKS_API else self.account.api_base_url

    def _limit(self, api: str) -> TokenBucket:
        table = BASE_TOKEN_LIMITS if (self.account.token_type or "").lower() == "base" else LIMITS
        rate, burst = table[api]
        return self.http.limiter(f"wb:{self.account.pk}:{api}", rate=rate, burst=burst)

    def _request(self, api: str, method: str, path: str, *, what: str, sending: bool = False, **kwargs) -> dict:
        """The answer's JSON object ({} for none); MarketplaceApiError, or SendOutcomeUnknown on a send."""
        token = self._token(api)
        if not token:
            raise MarketplaceApiError(
                "NOT_CONFIGURED", f"нет ключа Wildberries для {SCOPE_NAMES[api]}", permanent=True, stops_account=True
            )
        url = self._base_url(api) + path
        bucket = self._limit(api)
        headers = {"Authorization": token}

        def attempt() -> dict:
            try:
                response = self.http.send(method, url, limits=[bucket], headers=headers, **kwargs)
            except ApiError as exc:
                if sending and exc.code in ("TIMEOUT", "CONNECTION_ERROR"):
                    raise SendOutcomeUnknown(f"wildberries {what}: {exc.code}") from None
                raise
            return self._answer(api, what, response, bucket, token, sending=sending)

        if sending:
            # A send tried again only after a 429: anything else may have reached the buyer already.
            return self.http.retrying(attempt, what=what, retry_if=lambda exc: exc.status == 429)
        return self.http.retrying(attempt, what=what)

    def _answer(
        self, api: str, what: str, response: requests.Response, bucket: TokenBucket, token: str, *, sending: bool
    ) -> dict:
        status = response.status_code
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if 200 <= status < 300:
            if body is None:
                if sending:
                    # It was taken; what it said cannot be read, and sending again would repeat it.
                    logger.warning("wildberries %s: HTTP %s, not JSON", what, status)
                    return {}
                raise MarketplaceApiError("BAD_RESPONSE", f"HTTP {status}, not JSON", status=status)
            if not isinstance(body, dict):
                return {}
            if body.get("error") is True:
                # The feedbacks API's envelope can say no with a 200.
                description = redact(str(body.get("errorText") or "error"), token)[:DESCRIPTION_CHARS]
                raise MarketplaceApiError("WB_ERROR", description, status=status, permanent=True)
            return body
        detail = redact(_detail(body), token)[:DESCRIPTION_CHARS]
        scope = SCOPE_NAMES[api]
        if status in (401, 403):
            reason = (
                f"Wildberries не принял ключ для {scope}: он неверен, просрочен или выпущен без этой категории"
                if status == 401
                else f"У ключа Wildberries нет доступа к {scope}: выпустите токен с этой категорией"
            )
            raise MarketplaceApiError(
                f"HTTP_{status}",
                reason + (f" ({detail})" if detail else ""),
                status=status,
                permanent=True,
                stops_account=True,
            )
        if status == 429:
            # Other processes share the account's limit: none of them should try before WB's time.
            bucket.drain()
            raise MarketplaceApiError(
                "HTTP_429", detail or "too many requests", status=status, retry_after=_retry_after(response)
            )
        if status == 504 and sending:
            raise SendOutcomeUnknown(f"wildberries {what}: HTTP 504")
        raise MarketplaceApiError(f"HTTP_{status}", detail, status=status, permanent=is_permanent_status(status))


# Helpers -------------------------------------------------------------------------


def _feedbacks_mode(account) -> str:
    # The feedbacks key is needed while either of its streams is on.
    modes = {account.questions_mode, account.reviews_mode}
    return "off" if modes == {"off"} else "on"


def _detail(body) -> str:
    if not isinstance(body, dict):
        return ""
    for key in ("detail", "errorText", "error", "title", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(str(error) for error in errors)
    return ""


def _retry_after(response: requests.Response) -> float | None:
    for header in ("X-Ratelimit-Retry", "Retry-After"):
        value = (response.headers.get(header) or "").strip()
        try:
            seconds = float(value)
        except ValueError:
            continue
        return max(0.0, seconds)
    return None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _from_timestamp(value) -> datetime.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    # Events carry milliseconds; a value this small can only be seconds.
    seconds = value / 1000 if value > 10**11 else value
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _parse_datetime(value) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _product_context(item: dict) -> dict:
    product = item.get("productDetails") if isinstance(item.get("productDetails"), dict) else {}
    context = {}
    if product.get("nmId") is not None:
        context["nm_id"] = str(product["nmId"])
    if product.get("supplierArticle"):
        context["offer_id"] = str(product["supplierArticle"])
    if product.get("productName"):
        context["product_name"] = str(product["productName"])
    if product.get("brandName"):
        context["brand"] = str(product["brandName"])
    return context


def _chat_attachments(attachments: dict) -> list[dict]:
    found = []
    for image in attachments.get("images") or []:
        if isinstance(image, dict):
            found.append(
                {"kind": "photo", "file_id": str(image.get("downloadID") or ""), "url": str(image.get("url") or "")}
            )
    for file in attachments.get("files") or []:
        if isinstance(file, dict):
            found.append(
                {
                    "kind": "photo" if str(file.get("contentType") or "").startswith("image/") else "document",
                    "file_id": str(file.get("downloadID") or ""),
                    "mime_type": str(file.get("contentType") or ""),
                    "file_name": str(file.get("name") or ""),
                    "file_size": _int(file.get("size")),
                    "url": str(file.get("url") or ""),
                }
            )
    return found


def _review_attachments(review: dict) -> list[dict]:
    found = []
    for photo in review.get("photoLinks") or []:
        if isinstance(photo, dict) and photo.get("fullSize"):
            found.append({"kind": "photo", "file_id": str(photo["fullSize"]), "url": str(photo["fullSize"])})
    video = review.get("video")
    if isinstance(video, dict) and video.get("link"):
        found.append({"kind": "video", "file_id": str(video["link"]), "url": str(video["link"])})
    return found
