"""The one client-side rate limiter of every outside API: token buckets kept in the cache.

Each bucket has a key and its own rate: a Bitrix24 portal (2 a second, bursts
up to 50, beyond which Bitrix24 answers 503 QUERY_LIMIT_EXCEEDED), a Telegram
bot (under 30 messages a second) and each of its chats (about one a second).
Every web and worker process talks to the same outside systems, so the
buckets have to be shared:

- with django-redis (REDIS_URL set) the bucket is a Redis hash updated by one
  Lua script, atomic across all processes and hosts;
- with any other cache (locmem in development and tests) it is read and written
  under a process-local lock: correct within one process only, a best effort
  across processes. Good enough where a single process talks to the outside.

A caller that finds the bucket empty reserves the next token (the count goes
below zero) and sleeps until it is due, so waiting callers are served in order
and nobody polls. A wait longer than the ceiling reserves nothing and raises
RateLimitTimeout instead. If Redis is unreachable the limit is skipped (with a
warning): the outside system's own limit answers (Bitrix24's 503, Telegram's
429 with retry_after), retried by the HTTP seam, still protect us.
"""

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_S = 30.0

# Refill and take one token; reserve it (tokens < 0) when the wait fits the
# ceiling. Returns the wait in seconds as a string: Redis would truncate a Lua
# number to an integer. `now` comes from the caller so tests can fix the clock;
# processes on different hosts rely on NTP-synchronised clocks.
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
  if wait <= max_wait then
    tokens = tokens - 1
  end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', ts))
redis.call('EXPIRE', KEYS[1], ttl)
return string.format('%.6f', wait)
"""

_DRAIN_LUA = """
redis.call('HSET', KEYS[1], 'tokens', '0', 'ts', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

_local_lock = threading.Lock()


class RateLimitTimeout(Exception):
    """The next token is further away than the caller is willing to wait."""

    def __init__(self, wait: float):
        self.wait = wait
        super().__init__(f"rate limit: next request slot in {wait:.1f}s")


def _refill(tokens: float, ts: float, now: float, rate: float, burst: float) -> tuple[float, float]:
    if now > ts:
        return min(burst, tokens + (now - ts) * rate), now
    return tokens, ts


class TokenBucket:
    """`acquire()` before each request; `drain()` when the outside system says we went too fast."""

    def __init__(
        self,
        identity: str,
        *,
        rate: float,
        burst: int = 1,
        max_wait: float = DEFAULT_MAX_WAIT_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        cache_alias: str = "default",
    ):
        # `identity` names what is limited ("b24:<member id>", "tg:<bot id>:<chat>"),
        # never a secret: it ends up in a cache key.
        self.identity = identity
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self.max_wait = max_wait
        # Wall-clock time, not monotonic: the timestamp is shared between processes.
        self.clock = clock
        self.sleep = sleep
        self.cache_alias = cache_alias

    def __repr__(self) -> str:
        return f"TokenBucket({self.identity!r}, rate={self.rate}, burst={self.burst})"

    @property
    def enabled(self) -> bool:
        # A rate of 0 (B24_RATE_LIMIT_PER_S=0...) turns the client-side limit off.
        return self.rate > 0

    @property
    def _key(self) -> str:
        return caches[self.cache_alias].make_key(f"ratelimit:{self.identity}")

    @property
    def _ttl(self) -> int:
        # After this long untouched the bucket would be full again anyway.
        return math.ceil(self.burst / self.rate) + 60

    @property
    def _uses_redis(self) -> bool:
        return settings.CACHES[self.cache_alias]["BACKEND"].startswith("django_redis.")

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; the seconds slept. RateLimitTimeout past the ceiling."""
        if not self.enabled:
            return 0.0
        wait = self._take(self.clock())
        if wait > self.max_wait:
            raise RateLimitTimeout(wait)
        if wait > 0:
            self.sleep(wait)
        return wait

    def drain(self) -> None:
        """Empty the bucket: the other side's own counter is full (other apps of a portal share it)."""
        if not self.enabled:
            return
        now = self.clock()
        if self._uses_redis:
            try:
                self._redis().eval(_DRAIN_LUA, 1, self._key, f"{now:.6f}", self._ttl)
            except (RedisError, OSError) as exc:  # skip the limit, see the module docstring
                logger.warning("rate limit: Redis unavailable (%s), skipped", type(exc).__name__)
            return
        cache = caches[self.cache_alias]
        with _local_lock:
            tokens, ts = cache.get(self._key) or (self.burst, now)
            cache.set(self._key, (min(tokens, 0.0), max(ts, now)), self._ttl)

    def _take(self, now: float) -> float:
        if self._uses_redis:
            return self._take_redis(now)
        cache = caches[self.cache_alias]
        with _local_lock:
            tokens, ts = cache.get(self._key) or (self.burst, now)
            tokens, ts = _refill(tokens, ts, now, self.rate, self.burst)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
                if wait <= self.max_wait:
                    tokens -= 1
            cache.set(self._key, (tokens, ts), self._ttl)
            return wait

    def _take_redis(self, now: float) -> float:
        try:
            script = self._redis().register_script(_TAKE_LUA)
            result = script(keys=[self._key], args=[self.rate, self.burst, f"{now:.6f}", self.max_wait, self._ttl])
        except (RedisError, OSError) as exc:  # skip the limit, see the module docstring
            logger.warning("rate limit: Redis unavailable (%s), skipped", type(exc).__name__)
            return 0.0
        return float(result.decode() if isinstance(result, bytes) else result)

    def _redis(self):
        from django_redis import get_redis_connection

        return get_redis_connection(self.cache_alias)


# Concurrency limits -------------------------------------------------------------
#
# Some APIs cap requests in flight rather than requests per second (Yandex
# Market: four at once per business, beyond which it answers 420). A
# ConcurrencyLimit holds one of N slots for the duration of a block. With
# django-redis the slots are a sorted set of holder ids scored by when each
# holding expires, so a process that dies holding a slot frees it after
# `ttl_s` instead of shrinking the pool for good; with any other cache they are
# a process-local semaphore. As with the buckets, an unreachable Redis skips the
# limit (the API's own 420, retried by the seam, still protects us).

# Drop expired holders, then take a slot if one is free. 1 when taken, 0 when full.
_SLOT_TAKE_LUA = """
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local expires = tonumber(ARGV[3])
local ttl = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], expires, ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
"""

CONCURRENCY_POLL_S = 0.05  # between tries for a Redis slot: nothing wakes a waiter there
CONCURRENCY_RETRY_HINT_S = 1.0

_local_semaphores: dict[tuple[str, str, int], threading.BoundedSemaphore] = {}


class ConcurrencyTimeout(RateLimitTimeout):
    """No slot came free within the wait ceiling; `wait` is a hint for when to try again."""

    def __init__(self, wait: float):
        self.wait = wait
        Exception.__init__(self, f"concurrency limit: no free slot, try again in {wait:.1f}s")


class ConcurrencyLimit:
    """`with ConcurrencyLimit("ym:<business>", 4, ttl_s=60):` around one request; ConcurrencyTimeout past max_wait.

    On Redis a waiter tries again every `poll_s` (with the injected `sleep`);
    the process-local semaphore wakes a waiter as soon as a slot frees, in
    real time. One instance is one holding: make a new one per request.
    """

    def __init__(
        self,
        identity: str,
        limit: int,
        ttl_s: float = 60.0,
        *,
        max_wait: float = DEFAULT_MAX_WAIT_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = CONCURRENCY_POLL_S,
        cache_alias: str = "default",
    ):
        # `identity` ends up in a cache key: never a secret.
        self.identity = identity
        self.limit = max(1, int(limit))
        # Longer than any request it guards (timeout included): past it, a holder counts as gone.
        self.ttl_s = float(ttl_s)
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self.poll_s = poll_s
        self.cache_alias = cache_alias
        self._holder: str | None = None
        self._semaphore: threading.BoundedSemaphore | None = None

    def __repr__(self) -> str:
        return f"ConcurrencyLimit({self.identity!r}, limit={self.limit})"

    @property
    def _key(self) -> str:
        return caches[self.cache_alias].make_key(f"concurrency:{self.identity}")

    @property
    def _uses_redis(self) -> bool:
        return settings.CACHES[self.cache_alias]["BACKEND"].startswith("django_redis.")

    def __enter__(self) -> "ConcurrencyLimit":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        if self._holder is not None or self._semaphore is not None:
            raise RuntimeError(f"{self!r} is already held: one holding per instance")
        if self._uses_redis:
            self._acquire_redis()
        else:
            self._acquire_local()

    def release(self) -> None:
        if self._semaphore is not None:
            semaphore, self._semaphore = self._semaphore, None
            semaphore.release()
        if self._holder is not None:
            holder, self._holder = self._holder, None
            try:
                self._redis().zrem(self._key, holder)
            except (RedisError, OSError) as exc:  # the holding expires by itself after ttl_s
                logger.warning("concurrency limit: Redis unavailable (%s) on release", type(exc).__name__)

    def _acquire_local(self) -> None:
        # The limit is part of the key so two callers configured differently never share a pool wrongly sized.
        key = (self.cache_alias, self.identity, self.limit)
        with _local_lock:
            semaphore = _local_semaphores.get(key)
            if semaphore is None:
                semaphore = _local_semaphores[key] = threading.BoundedSemaphore(self.limit)
        if not semaphore.acquire(timeout=max(self.max_wait, 0.0)):
            raise ConcurrencyTimeout(CONCURRENCY_RETRY_HINT_S)
        self._semaphore = semaphore

    def _acquire_redis(self) -> None:
        holder = uuid.uuid4().hex
        # Waiting is counted in requested sleeps, not by the clock, so an injected
        # sleep that returns at once still ends the wait.
        waited = 0.0
        while True:
            try:
                taken = self._take_slot(holder)
            except (RedisError, OSError) as exc:  # skip the limit, see the comment above
                logger.warning("concurrency limit: Redis unavailable (%s), skipped", type(exc).__name__)
                return
            if taken:
                self._holder = holder
                return
            if waited + self.poll_s > self.max_wait:
                raise ConcurrencyTimeout(CONCURRENCY_RETRY_HINT_S)
            self.sleep(self.poll_s)
            waited += self.poll_s

    def _take_slot(self, holder: str) -> bool:
        now = self.clock()
        script = self._redis().register_script(_SLOT_TAKE_LUA)
        result = script(
            keys=[self._key],
            args=[self.limit, f"{now:.6f}", f"{now + self.ttl_s:.6f}", holder, math.ceil(self.ttl_s) + 1],
        )
        return int(result) == 1

    def _redis(self):
        from django_redis import get_redis_connection

        return get_redis_connection(self.cache_alias)
