"""The Telegram Bot API: one client per bot, on the one HTTP seam (integrations/http.py).

Every method is `POST {api_url}/bot<token>/<method>` with a JSON body, and
every answer is the same envelope (https://core.telegram.org/bots/api#making-requests):
{"ok": true, "result": ...} or {"ok": false, "error_code": 429, "description":
"Too Many Requests: retry after 5", "parameters": {"retry_after": 5}}. It is
read once, here, into a result or a `TelegramError`:

- 429: transient, `retry_after` from `parameters.retry_after` (the seam waits
  that long, up to its ceiling, then hands the error to the caller);
- 5xx, timeouts, lost connections: transient, retried with backoff;
- any other 4xx: permanent (a blocked bot, a chat that is gone, a bad
  request); `blocked` tells the customer blocked the bot or left Telegram;
- `parameters.migrate_to_chat_id`: a group became a supergroup with a new
  id; kept on the error, so a caller can write to the new chat.

Rate limits (integrations/ratelimit.py, shared by every process): one bucket
per bot ("tg:<bot id>") on every call, and one per chat ("tg:<bot id>:<chat>")
on sends to a chat. Telegram asks for no more than about 30 messages a second
per bot and one a second per chat (bursts pass for a moment); staying under
them keeps its 429s, which block a bot for seconds, rare. The bot id is the
numeric part of the token before the colon: it names the bot, it is not the secret.

The token is in every URL, so it is kept out of every exception, log line,
repr and description: the seam keeps only class names of transport errors,
descriptions are redacted, and urllib3's DEBUG request lines are filtered.
A retried send after a read timeout may reach the chat twice (Telegram may
have taken the first one): rare, and better than a lost reply.
"""

import hashlib
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from integrations.http import ApiError, OutboundHttp, is_permanent_status, redact
from integrations.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

# Sends to one chat that may go at once before the per-chat rate applies:
# a reply of an album and two text parts goes out without waiting.
CHAT_BURST = 3
DOWNLOAD_CHUNK = 64 * 1024
DESCRIPTION_CHARS = 300

_METHOD = re.compile(r"^[A-Za-z]{1,64}$")
# What a bot token looks like (<bot id>:<35 characters>), wherever it turns up.
_TOKEN_LIKE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
# Methods that post into a chat, held to the per-chat limit.
_CHAT_SENDS = ("send", "copyMessage", "forwardMessage")
# Descriptions of a chat the bot may no longer write to because of the customer.
_BLOCKED = ("bot was blocked by the user", "user_is_blocked", "user is deactivated")
_RETRY_AFTER_TEXT = re.compile(r"retry after (\d+)", re.IGNORECASE)


class TelegramError(ApiError):
    """A Bot API call that failed; `code` is "HTTP_<error_code>" or one of the seam's
    ("TIMEOUT", "CONNECTION_ERROR", "RATE_LIMITED"), `error_code` Telegram's own number."""

    def __init__(self, code: str, description: str = "", *, migrate_to_chat_id: int | None = None, **kwargs):
        super().__init__(code, description, **kwargs)
        self.migrate_to_chat_id = migrate_to_chat_id

    @property
    def error_code(self) -> int | None:
        return self.status

    @property
    def blocked(self) -> bool:
        """The customer blocked the bot or deleted their account: nothing can reach them now."""
        text = self.description.lower()
        return self.status in (400, 403) and any(marker in text for marker in _BLOCKED)


class TelegramClient:
    """One bot's Bot API. `TelegramClient.for_account(account)`, or `TelegramClient(token)`.

    Options go to the seam (`OutboundHttp`): `timeout`, `session`,
    `max_attempts`, `backoff`, `max_wait`, `sleep`, `clock`, e.g.
    `TelegramClient(token, backoff=0, sleep=fake_sleep)`.
    """

    def __init__(self, token: str, api_url: str | None = None, **options):
        token = (token or "").strip()
        if not token:
            raise TelegramError("NOT_CONFIGURED", "no bot token", permanent=True)
        if not re.fullmatch(r"[^\s/?#]+", token):
            # It goes into the URL's path; and the message must not quote it.
            raise TelegramError("BAD_TOKEN", "the bot token has characters a token cannot have", permanent=True)
        self._token = token
        self.api_url = (api_url or settings.TELEGRAM_API_URL).rstrip("/")
        options.setdefault("timeout", settings.TELEGRAM_TIMEOUT_S)
        self.http = OutboundHttp(system="telegram", error_class=TelegramError, **options)

    @classmethod
    def for_account(cls, account, **options) -> "TelegramClient":
        """The client of a channel account: its own token; the default account falls back to TELEGRAM_BOT_TOKEN."""
        from conversations.models import ChannelAccount

        token = account.token
        if not token and account.key == ChannelAccount.DEFAULT_KEY:
            token = settings.TELEGRAM_BOT_TOKEN
        if not token:
            raise TelegramError("NOT_CONFIGURED", f"no bot token for the account {account.key!r}", permanent=True)
        return cls(token, **options)

    def __repr__(self) -> str:
        return f"TelegramClient(bot={self.bot_id})"

    @property
    def bot_id(self) -> str:
        """The bot's id, the token's part before the colon: it names the bot and is not the secret."""
        prefix, colon, _secret = self._token.partition(":")
        if colon and prefix.isdigit():
            return prefix
        # Not a token Telegram issues (a test's, a proxy's): a digest names it, never the token itself.
        return "h" + hashlib.sha256(self._token.encode()).hexdigest()[:12]

    # Calls ---------------------------------------------------------------------

    def call(self, method: str, params: dict | None = None) -> Any:
        """POST one method with JSON parameters (None values left out); its `result`, or TelegramError."""
        return self._request(method, params)

    def _request(self, method: str, params: dict | None, *, timeout: float | None = None, secrets=()) -> Any:
        if not _METHOD.match(method or ""):
            raise ValueError(f"not a Bot API method name: {method!r}")
        params = {key: value for key, value in (params or {}).items() if value is not None}
        limits = [self._bot_limit()]
        if method.startswith(_CHAT_SENDS) and params.get("chat_id") not in (None, ""):
            limits.append(self.chat_limit(params["chat_id"]))
        url = f"{self.api_url}/bot{self._token}/{method}"
        kwargs = {"json": params}
        if timeout is not None:
            kwargs["timeout"] = timeout

        def attempt():
            response = self.http.send("POST", url, limits=limits, **kwargs)
            return self._answer(method, response, secrets)

        return self.http.retrying(attempt, what=method)

    def get_me(self) -> dict:
        return self.call("getMe")

    def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        parse_mode: str | None = "HTML",
        reply_markup: dict | None = None,
        disable_link_preview: bool = False,
        **extra,
    ) -> dict:
        """The sent Message. `text` is 1-4096 characters after entities parsing (formatting.split_message)."""
        params = {"chat_id": chat_id, "text": text, "parse_mode": parse_mode, "reply_markup": reply_markup, **extra}
        if disable_link_preview:
            params["link_preview_options"] = {"is_disabled": True}
        return self.call("sendMessage", params)

    def send_photo(
        self,
        chat_id: int | str,
        photo: str,
        *,
        caption: str = "",
        parse_mode: str | None = "HTML",
        reply_markup: dict | None = None,
        **extra,
    ) -> dict:
        """The sent Message. `photo` is a file_id or an http(s) URL Telegram fetches itself."""
        params = {"chat_id": chat_id, "photo": photo, "reply_markup": reply_markup, **extra}
        if caption:
            params.update(caption=caption, parse_mode=parse_mode)
        return self.call("sendPhoto", params)

    def send_media_group(self, chat_id: int | str, media: list[dict], **extra) -> list[dict]:
        """The sent Messages of an album of 2-10 InputMedia (formatting.album); it takes no reply_markup."""
        return self.call("sendMediaGroup", {"chat_id": chat_id, "media": media, **extra})

    def answer_callback_query(
        self, callback_query_id: str, text: str = "", *, show_alert: bool = False, **extra
    ) -> bool:
        """Stop the button's spinner; `text` shows as a notice at the top of the chat (0-200 characters)."""
        params = {"callback_query_id": callback_query_id, **extra}
        if text:
            params["text"] = text
        if show_alert:
            params["show_alert"] = True
        return self.call("answerCallbackQuery", params)

    def set_webhook(
        self,
        url: str,
        *,
        secret_token: str = "",
        allowed_updates: Iterable[str] | None = None,
        drop_pending_updates: bool = False,
        max_connections: int | None = None,
    ) -> bool:
        """Have Telegram post updates to `url`, with `secret_token` in X-Telegram-Bot-Api-Secret-Token."""
        params = {
            "url": url,
            "secret_token": secret_token or None,
            "allowed_updates": list(allowed_updates) if allowed_updates is not None else None,
            "drop_pending_updates": drop_pending_updates or None,
            "max_connections": max_connections,
        }
        # Telegram does not echo the secret in its errors; should it ever, it goes no further.
        return self._request("setWebhook", params, secrets=(secret_token,))

    def delete_webhook(self, *, drop_pending_updates: bool = False) -> bool:
        return self.call("deleteWebhook", {"drop_pending_updates": drop_pending_updates or None})

    def get_webhook_info(self) -> dict:
        return self.call("getWebhookInfo")

    def get_updates(
        self, offset: int | None = None, timeout: int = 0, allowed_updates: Iterable[str] | None = None
    ) -> list[dict]:
        """Long polling (no webhook set): updates after `offset`, waiting up to `timeout` seconds for one.

        The request's own timeout is the poll's plus the usual one: Telegram
        holds the connection open for the whole poll.
        """
        params = {
            "offset": offset,
            "timeout": timeout or None,
            "allowed_updates": list(allowed_updates) if allowed_updates is not None else None,
        }
        return self._request("getUpdates", params, timeout=max(0, timeout) + self.http.timeout)

    def get_file(self, file_id: str) -> dict:
        """A File: file_id, file_unique_id, file_size, file_path (absent for files over 20 MB)."""
        return self.call("getFile", {"file_id": file_id})

    def download_file(self, file_path: str, max_bytes: int) -> bytes:
        """A file's bytes from {api}/file/bot<token>/<file_path>, streamed.

        Past `max_bytes` (the Content-Length said so, or the bytes read so far)
        the download stops: TelegramError FILE_TOO_LARGE, permanent. At most
        `max_bytes` and one chunk are ever held.
        """
        if not file_path:
            raise TelegramError("NO_FILE_PATH", "Telegram gave no file path", permanent=True)
        url = f"{self.api_url}/file/bot{self._token}/{quote(file_path.lstrip('/'), safe='/')}"
        return self.http.retrying(lambda: self._download(url, max_bytes), what="file download")

    # Answers -------------------------------------------------------------------

    def _answer(self, method: str, response: requests.Response, secrets=()) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            raise TelegramError(
                "BAD_RESPONSE", f"HTTP {status}, not JSON", status=status, permanent=is_permanent_status(status)
            ) from None
        if not isinstance(body, dict):
            raise TelegramError(
                "BAD_RESPONSE", "not a JSON object", status=status, permanent=is_permanent_status(status)
            )
        if body.get("ok") is True and status < 400:
            return body.get("result")
        error_code = body.get("error_code")
        if not isinstance(error_code, int) or isinstance(error_code, bool):
            error_code = status if status >= 400 else 500
        description = self._redact(str(body.get("description") or ""), *secrets)[:DESCRIPTION_CHARS]
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        retry_after = _seconds(parameters.get("retry_after"))
        if retry_after is None and error_code == 429:
            match = _RETRY_AFTER_TEXT.search(description)
            retry_after = float(match.group(1)) if match else None
        migrate_to = parameters.get("migrate_to_chat_id")
        migrate_to = migrate_to if isinstance(migrate_to, int) and not isinstance(migrate_to, bool) else None
        if migrate_to is not None:
            logger.warning("telegram %s: the group chat is now the supergroup %s", method, migrate_to)
        raise TelegramError(
            f"HTTP_{error_code}",
            description,
            status=error_code,
            permanent=is_permanent_status(error_code),
            retry_after=retry_after,
            migrate_to_chat_id=migrate_to,
        )

    def _download(self, url: str, max_bytes: int) -> bytes:
        response = self.http.send("GET", url, stream=True)
        with response:
            status = response.status_code
            if status != 200:
                raise TelegramError(
                    f"HTTP_{status}", "file download failed", status=status, permanent=is_permanent_status(status)
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes)
            chunks, total = [], 0
            try:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise _too_large(max_bytes)
                    chunks.append(chunk)
            except requests.RequestException as exc:
                # Its text may quote the URL, and so the token: the class name only.
                raise TelegramError("CONNECTION_ERROR", type(exc).__name__) from None
            return b"".join(chunks)

    # Limits and secrets --------------------------------------------------------

    def _bot_limit(self) -> TokenBucket:
        rate = settings.TELEGRAM_RATE_PER_BOT_PER_S
        return self.http.limiter(f"tg:{self.bot_id}", rate=rate, burst=max(1, int(rate)))

    def chat_limit(self, chat_id: int | str) -> TokenBucket:
        """The bucket of sends to one chat of this bot, shared by every client and process of the bot."""
        return self.http.limiter(
            f"tg:{self.bot_id}:{chat_id}", rate=settings.TELEGRAM_RATE_PER_CHAT_PER_S, burst=CHAT_BURST
        )

    def _redact(self, text: str, *secrets: str) -> str:
        _prefix, _colon, secret = self._token.partition(":")
        return redact_tokens(redact(text, self._token, secret, *secrets))


def redact_tokens(text: str) -> str:
    """Any bot token in `text` (in a URL or not) replaced by ***."""
    return _TOKEN_LIKE.sub("***", text)


def _too_large(max_bytes: int) -> TelegramError:
    return TelegramError("FILE_TOO_LARGE", f"file too large (over {max_bytes} bytes)", permanent=True)


def _seconds(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0.0, float(value))


class RedactTokens(logging.Filter):
    """Bot tokens out of a logger's records: urllib3 logs each request line, URL and all, at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_tokens(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(RedactTokens())
