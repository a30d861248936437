"""Bitrix24 REST: one client for both ways a bot is connected.

- an inbound webhook URL (`B24_WEBHOOK_URL`, https://<portal>/rest/<user>/<secret>/):
  the secret is in the URL, calls go to <url><method>.json;
- an OAuth application installed on a portal (Portal row): calls go to the
  portal's REST endpoint with `auth=<access token>`; an expired token is
  refreshed once, by one process at a time, and the call repeated.

HTTP goes through the project's one seam (integrations/http.py): its session
and User-Agent, a timeout on every request, the portal's shared rate limit
(integrations/ratelimit.py), the bounded retry loop with jittered backoff, and
transport errors without the URL. What is Bitrix24's own stays here: the one
mapping of an answer (REST, OAuth token, app.info) to a result or a
Bitrix24Error, OPERATION_TIME_LIMIT's reset time as `retry_after`, emptying
the limiter on QUERY_LIMIT_EXCEEDED, the token refresh, and the secrets (the
webhook URL, tokens, the client secret, a code) kept out of logs, reprs and
error messages.

Why not the official SDK (b24pysdk 1.3.2, read from its wheel): it offers typed
method wrappers, batch and list helpers, OAuth code exchange and refresh, masked
logs. But it retries HTTP 503 only (linear delay; not 429 OPERATION_TIME_LIMIT,
other 5xx, timeouts or connection errors), has no client-side rate limit, shared
or not, refreshes per token object with no cross-process lock, and keeps its
settings thread-local. Wrapping it would leave all that to us: we stay on `requests`.
"""

import logging
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote, quote_plus, urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from integrations.bitrix24.models import Portal
from integrations.http import ApiError, OutboundHttp, is_permanent_status, redact
from integrations.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

BATCH_LIMIT = 50  # commands per `batch`, Bitrix24's own limit
# Only one process refreshes a portal's tokens; the others wait for it this long.
# Its lock expires after this long at the least, and never before a refresh with all its retries is over.
REFRESH_LOCK_TTL_S = 30
REFRESH_WAIT_S = 15.0
REFRESH_POLL_S = 0.25
REFRESH_ERROR_PREFIX = "token refresh failed"

_METHOD_RE = re.compile(r"^[A-Za-z0-9_.]+$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_EXPIRED_TOKEN_CODES = {"expired_token", "invalid_token"}


class Bitrix24Error(ApiError):
    """A Bitrix24 call that failed; `code` is Bitrix24's error code ("QUERY_LIMIT_EXCEEDED").

    `permanent` means retrying later will not help; `retry_after` (seconds), when
    known, is how long Bitrix24 asked us to stay away.
    """


def outbound_http(*, timeout: float | None = None, **options) -> OutboundHttp:
    """The seam for Bitrix24 and its OAuth server; `options` are OutboundHttp's (max_attempts, backoff,
    max_wait, sleep, clock, session)."""
    return OutboundHttp(
        system="bitrix24",
        timeout=settings.B24_TIMEOUT_S if timeout is None else timeout,
        error_class=Bitrix24Error,
        **options,
    )


@dataclass(repr=False)
class Bitrix24Client:
    """Use `for_webhook()`, `for_portal()` or `for_member()`; `call()` returns the method's `result`.

    The factories take the seam's options (integrations/http.py): `max_attempts`,
    `backoff` (seconds, 0 for none), `max_wait` (the longest single wait for the
    rate limit or a 429 reset), `sleep`, `clock`, `session`, `timeout`, e.g.
    `for_webhook(backoff=0, sleep=fake_sleep)`; and `limiter`, a TokenBucket of
    one's own instead of the portal's shared one.
    """

    endpoint: str  # ends with "/"; for a webhook it holds the secret
    portal: Portal | None = None
    http: OutboundHttp = field(default_factory=outbound_http)
    limiter: TokenBucket | None = None

    def __post_init__(self):
        if self.limiter is None:
            self.limiter = self.http.limiter(
                f"b24:{self._identity}", rate=settings.B24_RATE_LIMIT_PER_S, burst=settings.B24_RATE_LIMIT_BURST
            )

    def __repr__(self) -> str:
        # The endpoint of a webhook contains its secret: show its host only.
        if self.portal is not None:
            return f"Bitrix24Client(portal={self.portal.domain})"
        return f"Bitrix24Client(webhook={urlsplit(self.endpoint).hostname})"

    @property
    def _identity(self) -> str:
        """What the rate limit is keyed on: the portal's member id, else the webhook's host."""
        if self.portal is not None:
            return self.portal.member_id or self.portal.domain
        return urlsplit(self.endpoint).hostname or "webhook"

    @classmethod
    def for_webhook(cls, url: str | None = None, *, limiter: TokenBucket | None = None, **options) -> "Bitrix24Client":
        url = url or settings.B24_WEBHOOK_URL
        if not url:
            raise Bitrix24Error("NOT_CONFIGURED", "B24_WEBHOOK_URL is not set", permanent=True)
        return cls(endpoint=url.rstrip("/") + "/", http=outbound_http(**options), limiter=limiter)

    @classmethod
    def for_portal(cls, portal: Portal, *, limiter: TokenBucket | None = None, **options) -> "Bitrix24Client":
        return cls(endpoint=_portal_endpoint(portal), portal=portal, http=outbound_http(**options), limiter=limiter)

    @classmethod
    def for_member(cls, member_id: str = "", **options) -> "Bitrix24Client":
        """The client for a portal's events: its OAuth tokens when installed as an app, else the webhook."""
        portal = Portal.objects.filter(member_id=member_id).first() if member_id else None
        if portal is not None and portal.access_token:
            return cls.for_portal(portal, **options)
        return cls.for_webhook(**options)

    # Public calls ---------------------------------------------------------

    def call(self, method: str, params: dict | None = None):
        """POST one method with JSON parameters; its `result`, or Bitrix24Error."""
        body = self._request(method, params or {})
        return body.get("result")

    def batch(self, commands: Mapping[str, tuple[str, dict | None]]) -> dict:
        """Run up to 50 methods in one request (one token of the rate limit), not stopping at errors.

        `commands` maps a key to `(method, params)`. The answer keeps Bitrix24's
        shape: {"result": {key: ...}, "result_error": {key: {"error", "error_description"}},
        "result_total": {...}, "result_next": {...}}, each a dict (possibly empty).
        """
        if len(commands) > BATCH_LIMIT:
            raise ValueError(f"a batch takes at most {BATCH_LIMIT} commands, got {len(commands)}")
        for method, _ in commands.values():
            _check_method(method)
        parts = ("result", "result_error", "result_total", "result_next")
        if not commands:
            return {part: {} for part in parts}
        cmd = {str(key): f"{method}?{encode_params(params or {})}" for key, (method, params) in commands.items()}
        body = self._request("batch", {"halt": 0, "cmd": cmd})
        result = body.get("result") or {}
        return {part: _as_dict(result.get(part)) for part in parts}

    def iter_list(self, method: str, params: dict | None = None) -> Iterator:
        """Every item of a `*.list` method, page by page (50 a page), following `next` until it is gone."""
        params = dict(params or {})
        start = int(params.pop("start", 0) or 0)
        while True:
            body = self._request(method, {**params, "start": start})
            yield from _list_items(body.get("result"))
            next_start = body.get("next")
            # A `next` that does not move forward would loop for ever.
            if next_start is None or int(next_start) <= start:
                return
            start = int(next_start)

    # One request, with retries and the token refresh ------------------------

    def _request(self, method: str, params: dict) -> dict:
        _check_method(method)
        used_tokens = []

        def attempt() -> dict:
            token = self.portal.access_token if self.portal is not None else ""
            used_tokens.append(token)
            return self._send(method, params, token)

        def retrying() -> dict:
            return self.http.retrying(attempt, what=method, on_retry=self._on_retry)

        try:
            return retrying()
        except Bitrix24Error as exc:
            if not self._token_expired(exc):
                raise
            logger.info("bitrix24 %s: %s, refreshing the token", method, exc.code)
        # Refresh once and repeat, with attempts of its own; a second 401 is final.
        self._refresh_access_token(used_tokens[-1])
        return retrying()

    def _send(self, method: str, params: dict, token: str) -> dict:
        if self.portal is not None:
            params = {**params, "auth": token}
        response = self.http.send("POST", f"{self.endpoint}{method}.json", limits=[self.limiter], json=params)
        return _answer(response, secrets=self._secrets(), clock=self.http.clock)

    def _on_retry(self, exc: ApiError) -> None:
        if exc.code == "QUERY_LIMIT_EXCEEDED":
            # Bitrix24's counter is full (other apps of the portal count too): slow every process down.
            self.limiter.drain()

    def _token_expired(self, exc: Bitrix24Error) -> bool:
        return self.portal is not None and exc.status == 401 and exc.code.lower() in _EXPIRED_TOKEN_CODES

    def _secrets(self) -> tuple[str, ...]:
        if self.portal is not None:
            return (self.portal.access_token, self.portal.refresh_token)
        # A webhook's path is /rest/<user>/<secret>/.
        return tuple(urlsplit(self.endpoint).path.split("/"))

    # OAuth refresh, single-flight across processes -------------------------

    def _refresh_access_token(self, used_token: str) -> None:
        """Make `self.portal` hold a working access token: someone else's fresh one, or one we get.

        The lock is a cache key taken with `add` (atomic in Redis and locmem). Its
        holder re-reads the row first, since another process may have refreshed
        between our 401 and the lock; the others poll the row until the token changes.
        """
        portal = self.portal
        if portal.pk is None:
            raise Bitrix24Error("TOKEN_EXPIRED", "the portal is not saved, cannot refresh", status=401, permanent=True)
        lock_key = f"b24:token-refresh:{portal.member_id or portal.pk}"
        # The lock must outlive the refresh, every attempt and wait included: a second
        # refresh with the same refresh token would be refused (it is spent by the first).
        lock_ttl = max(REFRESH_LOCK_TTL_S, math.ceil(self.http.max_attempts * (self.http.timeout + self.http.max_wait)))
        deadline = self.http.clock() + REFRESH_WAIT_S
        while True:
            if self._reload_tokens(used_token):
                return
            owner = uuid.uuid4().hex
            if cache.add(lock_key, owner, lock_ttl):
                try:
                    if not self._reload_tokens(used_token):
                        self._refresh_with_oauth_server()
                finally:
                    # Not atomic, but the lock outlives any refresh (see lock_ttl).
                    if cache.get(lock_key) == owner:
                        cache.delete(lock_key)
                return
            if self.http.clock() >= deadline:
                raise Bitrix24Error("TOKEN_REFRESH_BUSY", "another process is refreshing the token", status=401)
            self.http.sleep(REFRESH_POLL_S)

    def _reload_tokens(self, used_token: str) -> bool:
        """Copy the row's tokens into `self.portal`; whether its access token differs from the one that failed."""
        fresh = Portal.objects.filter(pk=self.portal.pk).first()
        if fresh is None:
            raise Bitrix24Error("PORTAL_DELETED", "the portal was removed", status=401, permanent=True)
        for name in ("access_token", "refresh_token", "token_expires_at", "client_endpoint"):
            setattr(self.portal, name, getattr(fresh, name))
        self.endpoint = _portal_endpoint(self.portal)
        return bool(fresh.access_token) and fresh.access_token != used_token

    def _refresh_with_oauth_server(self) -> None:
        portal = self.portal
        try:
            if not portal.refresh_token:
                raise Bitrix24Error("NO_REFRESH_TOKEN", "the portal has no refresh token", permanent=True)
            # With this client's seam: its session, its retries (a worker may wait for them).
            payload = _oauth_token_request(
                {"grant_type": "refresh_token", "refresh_token": portal.refresh_token}, http=self.http
            )
        except Bitrix24Error as exc:
            portal.last_error = f"{REFRESH_ERROR_PREFIX} at {timezone.now():%Y-%m-%d %H:%M}: {exc.code}"
            if exc.description:
                portal.last_error += f" ({exc.description})"
            portal.save(update_fields=["last_error", "updated_at"])
            logger.warning("bitrix24 token refresh for portal %s failed: %s", portal.member_id, exc.code)
            # An answer from the OAuth server (invalid_grant, PAYMENT_REQUIRED...) needs a reinstall;
            # a network failure or its 5xx may pass.
            raise Bitrix24Error(
                exc.code,
                exc.description,
                status=exc.status or 401,
                permanent=exc.permanent,
                retry_after=exc.retry_after,
            ) from None
        portal.access_token = payload["access_token"]
        portal.refresh_token = payload.get("refresh_token") or portal.refresh_token
        portal.token_expires_at = timezone.now() + timedelta(seconds=_int(payload.get("expires_in"), 3600))
        # The payload's `domain` is the OAuth server's, not the portal's: not stored.
        portal.client_endpoint = payload.get("client_endpoint") or portal.client_endpoint
        fields = ["access_token", "refresh_token", "token_expires_at", "client_endpoint", "updated_at"]
        if portal.last_error.startswith(REFRESH_ERROR_PREFIX):
            portal.last_error = ""
            fields.append("last_error")
        portal.save(update_fields=fields)
        self.endpoint = _portal_endpoint(portal)
        logger.info("bitrix24 token refreshed for portal %s", portal.member_id)


# The OAuth server -----------------------------------------------------------
#
# exchange_code and check_access_token answer a request someone waits for (the
# OAuth callback in a browser, the ONAPPINSTALL event): by default one attempt
# and no sleeping; the caller answers 502 and is asked again. A token refresh
# uses its client's seam and retries.


def exchange_code(code: str, *, http: OutboundHttp | None = None) -> dict:
    """The token payload for an OAuth callback's `code` (access_token, refresh_token, expires_in,
    client_endpoint, member_id, scope...); Bitrix24Error when the server refuses it."""
    if not code:
        raise Bitrix24Error("INVALID_CODE", "no authorization code", permanent=True)
    return _oauth_token_request({"grant_type": "authorization_code", "code": code}, http=http or _waited_for_http())


def check_access_token(domain: str, access_token: str, *, http: OutboundHttp | None = None) -> dict:
    """Ask the OAuth server's `app.info` whether `access_token` is our app's, installed on `domain`.

    The trusted check for an ONAPPINSTALL event: the portal named in the event
    could be anyone's server, so the token is checked with the OAuth server
    (Bitrix24's own advice), not with the portal. Returns its `result`:
    {"client_id", "scope", "expires", "user_id", "install": {"installed", "domain",
    "member_id", "client_endpoint", "status", ...}}. Bitrix24Error (permanent)
    when the token is invalid or belongs to another app or portal.
    """
    domain = (domain or "").strip().lower()
    if not _DOMAIN_RE.match(domain):
        raise Bitrix24Error("INVALID_DOMAIN", "not a portal domain", permanent=True)
    if not access_token:
        raise Bitrix24Error("NO_AUTH_FOUND", "no access token", status=401, permanent=True)
    parts = urlsplit(settings.B24_OAUTH_TOKEN_URL)
    url = f"{parts.scheme}://{parts.netloc}/rest/app.info/"
    body = _get(http or _waited_for_http(), "app.info", url, {"auth": access_token}, secrets=(access_token,))
    result = body.get("result")
    if not isinstance(result, dict):
        raise Bitrix24Error("BAD_RESPONSE", "app.info without a result", permanent=True)
    install = result.get("install") if isinstance(result.get("install"), dict) else {}
    if str(install.get("domain") or "").lower() != domain:
        raise Bitrix24Error("WRONG_PORTAL", "the token belongs to another portal", permanent=True)
    if settings.B24_CLIENT_ID and result.get("client_id") != settings.B24_CLIENT_ID:
        raise Bitrix24Error("WRONG_CLIENT", "the token belongs to another application", permanent=True)
    return result


def _waited_for_http() -> OutboundHttp:
    return outbound_http(max_attempts=1)


def _oauth_token_request(params: dict, *, http: OutboundHttp) -> dict:
    # GET with the parameters in the query, as Bitrix24 documents it. The URL then
    # holds the client secret: the seam keeps it out of its errors, it is never
    # logged here, and urllib3's DEBUG log (which prints request lines) must stay
    # off in production.
    if not settings.B24_CLIENT_ID or not settings.B24_CLIENT_SECRET:
        raise Bitrix24Error("NOT_CONFIGURED", "B24_CLIENT_ID / B24_CLIENT_SECRET are not set", permanent=True)
    query = {"client_id": settings.B24_CLIENT_ID, "client_secret": settings.B24_CLIENT_SECRET, **params}
    secrets = (settings.B24_CLIENT_SECRET, params.get("refresh_token", ""), params.get("code", ""))
    body = _get(http, "oauth token", settings.B24_OAUTH_TOKEN_URL, query, secrets=secrets)
    if not body.get("access_token"):
        raise Bitrix24Error("BAD_RESPONSE", "no access_token in the answer", permanent=True)
    return body


def _get(http: OutboundHttp, what: str, url: str, params: dict, *, secrets: tuple[str, ...]) -> dict:
    def attempt() -> dict:
        return _answer(http.send("GET", url, params=params), secrets=secrets, clock=http.clock)

    return http.retrying(attempt, what=what)


# Answers ----------------------------------------------------------------------


def _answer(response: requests.Response, *, secrets: tuple[str, ...], clock: Callable[[], float]) -> dict:
    """The one mapping of an answer of Bitrix24 (REST) or its OAuth server (token, app.info):
    its JSON object, or Bitrix24Error.

    Whether trying again may help is the seam's one status mapping (a 4xx other than
    408/429 is permanent); `retry_after` is Bitrix24's OPERATION_TIME_LIMIT reset time,
    else a Retry-After header. The description is redacted of `secrets`.
    """
    status = response.status_code
    permanent = is_permanent_status(status)
    try:
        body = response.json()
    except ValueError:
        raise Bitrix24Error("BAD_RESPONSE", f"HTTP {status}, not JSON", status=status, permanent=permanent) from None
    if not isinstance(body, dict):
        raise Bitrix24Error("BAD_RESPONSE", "not a JSON object", status=status, permanent=permanent)
    if "error" in body or status >= 400:
        code = str(body.get("error") or f"HTTP_{status}")
        raise Bitrix24Error(
            code,
            redact(str(body.get("error_description") or ""), *secrets)[:300],
            status=status,
            permanent=permanent,
            retry_after=None if permanent else _retry_after(code, body, response, clock),
        )
    return body


def _retry_after(code: str, body: dict, response: requests.Response, clock: Callable[[], float]) -> float | None:
    """Seconds until Bitrix24 lets us in again, when the answer says.

    OPERATION_TIME_LIMIT blocks the method for this portal until its reset time;
    beyond the seam's ceiling the error goes to the caller at once, which may come
    back later.
    """
    if code == "OPERATION_TIME_LIMIT":
        times = body.get("time") if isinstance(body.get("time"), dict) else {}
        reset_at = times.get("operating_reset_at") or body.get("operating_reset_at")
        try:
            if reset_at:
                return max(0.0, float(reset_at) - clock())
        except (TypeError, ValueError):
            pass
    try:
        if response.headers.get("Retry-After"):
            return max(0.0, float(response.headers["Retry-After"]))
    except (TypeError, ValueError):
        pass  # an HTTP date: not worth parsing, the backoff will do
    return None


# Helpers ----------------------------------------------------------------------


def encode_params(params: Mapping, prefix: str = "") -> str:
    """A query string the way PHP's http_build_query writes it: {"FIELDS": {"NAME": "x"}} -> FIELDS[NAME]=x.

    Lists get numeric keys, True/False become 1/0, None is left out (as PHP does).
    Batch commands are such strings ("im.message.add?DIALOG_ID=1&MESSAGE=hi").
    """
    pairs = []
    for key, value in params.items():
        name = f"{prefix}[{quote(str(key), safe='')}]" if prefix else quote(str(key), safe="")
        if value is None:
            continue
        if isinstance(value, Mapping):
            nested = encode_params(value, name)
        elif isinstance(value, list | tuple):
            nested = encode_params(dict(enumerate(value)), name)
        else:
            if isinstance(value, bool):
                value = int(value)
            nested = f"{name}={quote_plus(str(value))}"
        if nested:
            pairs.append(nested)
    return "&".join(pairs)


def _portal_endpoint(portal: Portal) -> str:
    endpoint = portal.client_endpoint or f"https://{portal.domain}/rest/"
    return endpoint.rstrip("/") + "/"


def _check_method(method: str) -> None:
    # The name becomes part of the URL path.
    if not _METHOD_RE.match(method or ""):
        raise ValueError(f"not a Bitrix24 method name: {method!r}")


def _as_dict(value) -> dict:
    # PHP encodes an empty array, and one with keys 0..n, as a JSON list.
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    return {}


def _list_items(result) -> list:
    """The items of a list method's page: `result` itself, or its one list (crm.item.list: {"items": [...]})."""
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        lists = [value for value in result.values() if isinstance(value, list)]
        if len(lists) == 1:
            return lists[0]
        return list(result.values())
    return []


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
