"""The one HTTP seam of every outside API client (Bitrix24, Telegram, STT downloads...).

`OutboundHttp` owns what every client needs and none should write again:
a session with our User-Agent, a timeout on every request, the shared rate
limiter (integrations/ratelimit.py: one bucket per key, e.g. a portal, a bot
and a chat), a bounded retry loop with jittered backoff that honours a
server's "retry after", and secrets kept out of every error and log line
(request exceptions quote the URL, and a Bitrix24 webhook URL or a Telegram
file URL holds a secret: only their class names are kept).

A system's client turns each answer into a result or an `ApiError` (its own
subclass, with the system's error code); the seam decides whether and when to
try again:
- `permanent`: trying again will not help (a 4xx other than 408/429);
- `retry_after`: the server said how long to stay away; beyond `max_wait` the
  error goes to the caller at once, which may come back later (the worker's
  own retry schedule);
- otherwise a transient failure (5xx, timeouts, lost connections): backoff.
"""

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import requests

from conversations.channels import count_outbound_request
from integrations.ratelimit import DEFAULT_MAX_WAIT_S, RateLimitTimeout, TokenBucket

logger = logging.getLogger(__name__)

USER_AGENT = "storebot/0.1"
MAX_ATTEMPTS = 3  # requests per call, the first one included
BACKOFF_S = 1.0  # first retry delay; doubles each time (with jitter)
# Client errors that pass on a retry: a timeout on the server's side, a rate limit.
TRANSIENT_4XX = frozenset({408, 429})

T = TypeVar("T")


class ApiError(Exception):
    """A call to an outside API that failed; `code` is the system's own ("QUERY_LIMIT_EXCEEDED", "HTTP_403").

    The message never holds a secret: clients build it from codes and
    redacted descriptions only.
    """

    def __init__(
        self,
        code: str,
        description: str = "",
        *,
        status: int | None = None,
        permanent: bool = False,
        retry_after: float | None = None,
    ):
        self.code = code
        self.description = description
        self.status = status
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(f"{code}: {description}" if description else code)


def is_permanent_status(status: int) -> bool:
    """The one mapping of an HTTP status to "retrying later will not help"."""
    return 400 <= status < 500 and status not in TRANSIENT_4XX


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass(repr=False)
class OutboundHttp:
    """HTTP to one outside system. `system` names it in logs ("bitrix24", "telegram")."""

    system: str
    timeout: float = 10.0
    session: requests.Session = field(default_factory=new_session)
    max_attempts: int = MAX_ATTEMPTS
    backoff: float = BACKOFF_S
    max_wait: float = DEFAULT_MAX_WAIT_S
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    error_class: type[ApiError] = ApiError

    def __post_init__(self):
        self.session.headers.setdefault("User-Agent", USER_AGENT)

    def __repr__(self) -> str:
        return f"OutboundHttp({self.system})"

    def limiter(self, identity: str, *, rate: float, burst: int = 1) -> TokenBucket:
        """A shared bucket for `identity` (never a secret), waiting with this seam's clock and sleep."""
        return TokenBucket(identity, rate=rate, burst=burst, max_wait=self.max_wait, clock=self.clock, sleep=self.sleep)

    def send(self, method: str, url: str, *, limits: Iterable[TokenBucket] = (), **kwargs) -> requests.Response:
        """One request after a token of each limit; transport failures as the system's ApiError."""
        for bucket in limits:
            try:
                bucket.acquire()
            except RateLimitTimeout as exc:
                raise self.error_class(
                    "RATE_LIMITED", "client-side rate limit: no request slot soon enough", retry_after=exc.wait
                ) from None
        kwargs.setdefault("timeout", self.timeout)
        count_outbound_request()
        try:
            return self.session.request(method, url, **kwargs)
        except requests.Timeout as exc:
            raise self.error_class("TIMEOUT", type(exc).__name__) from None
        except requests.RequestException as exc:
            # The exception's text holds the URL, and so any secret in it: its class name only.
            raise self.error_class("CONNECTION_ERROR", type(exc).__name__) from None

    def retrying(
        self,
        attempt: Callable[[], T],
        *,
        what: str,
        on_retry: Callable[[ApiError], None] | None = None,
        retry_if: Callable[[ApiError], bool] | None = None,
    ) -> T:
        """Run `attempt` until it returns, retrying what may pass; `what` names the call in logs.

        `retry_if` narrows what is retried: a send that may have reached the
        other side is only tried again for errors that say it did not (a 429).
        """
        number = 0
        while True:
            number += 1
            try:
                return attempt()
            except ApiError as exc:
                delay = self.retry_delay(exc, number)
                if retry_if is not None and not retry_if(exc):
                    delay = None
                if delay is None or number >= self.max_attempts:
                    logger.warning("%s %s failed: %s (HTTP %s)", self.system, what, exc.code, exc.status)
                    raise
                if on_retry is not None:
                    on_retry(exc)
                logger.warning(
                    "%s %s: %s, retry %d of %d in %.1fs",
                    self.system,
                    what,
                    exc.code,
                    number,
                    self.max_attempts - 1,
                    delay,
                )
                if delay > 0:
                    self.sleep(delay)

    def retry_delay(self, exc: ApiError, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when retrying now cannot help."""
        if exc.permanent:
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self.max_wait else None
        return self.backoff_delay(attempt)

    def backoff_delay(self, attempt: int) -> float:
        # Jitter keeps processes that failed together from retrying together.
        return min(self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0), self.max_wait)
