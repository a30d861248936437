"""The shared concurrency limit (integrations.ratelimit.ConcurrencyLimit) on locmem and on Redis.

The Redis tests point the default cache at 127.0.0.1:6379/1 with a key prefix
of their own, and skip when nothing answers there.
"""

import threading
import time
import uuid

import pytest
import redis

from integrations.ratelimit import ConcurrencyLimit, ConcurrencyTimeout
from tests.outages import cache_outage

LIMIT = 4
REDIS_URL = "redis://127.0.0.1:6379/1"


def identity() -> str:
    return f"test-{uuid.uuid4().hex}"


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def use_redis(settings) -> None:
    if not redis_reachable():
        pytest.skip("needs Redis at 127.0.0.1:6379")
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"storebot-test-{uuid.uuid4().hex[:8]}",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }


@pytest.fixture(params=["locmem", "redis"])
def backend(request, settings):
    if request.param == "redis":
        use_redis(settings)
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    return request.param


@pytest.fixture
def redis_backend(settings):
    use_redis(settings)


def test_never_more_than_the_limit_hold_at_once(backend):
    key = identity()
    inside, peak, lock = [0], [0], threading.Lock()
    errors = []

    def work():
        try:
            with ConcurrencyLimit(key, LIMIT, ttl_s=30, poll_s=0.01):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.05)
                with lock:
                    inside[0] -= 1
        except Exception as exc:  # the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(LIMIT * 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert (errors, peak[0]) == ([], LIMIT)


def test_a_fifth_holder_waits_until_the_ceiling_then_gets_a_retry_hint(backend):
    key = identity()
    held = [ConcurrencyLimit(key, LIMIT) for _ in range(LIMIT)]
    for limit in held:
        limit.acquire()
    try:
        with pytest.raises(ConcurrencyTimeout) as caught:
            ConcurrencyLimit(key, LIMIT, max_wait=0.1, poll_s=0.02).acquire()
    finally:
        for limit in held:
            limit.release()

    assert caught.value.wait > 0


def test_a_released_slot_lets_the_next_holder_in(backend):
    key = identity()
    held = [ConcurrencyLimit(key, LIMIT) for _ in range(LIMIT)]
    for limit in held:
        limit.acquire()
    held.pop().release()

    with ConcurrencyLimit(key, LIMIT, max_wait=0.1, poll_s=0.02):
        pass

    for limit in held:
        limit.release()


def test_other_keys_have_their_own_slots(backend):
    busy = ConcurrencyLimit(identity(), 1)
    busy.acquire()
    try:
        with ConcurrencyLimit(identity(), 1, max_wait=0.1, poll_s=0.02):
            pass
    finally:
        busy.release()


def test_on_redis_a_holder_that_died_frees_its_slot_after_the_ttl(redis_backend):
    key = identity()
    now = [1_000_000.0]
    for _ in range(LIMIT):
        # Never released: the process holding them is gone.
        ConcurrencyLimit(key, LIMIT, ttl_s=10, clock=lambda: now[0]).acquire()
    now[0] += 11

    with ConcurrencyLimit(key, LIMIT, ttl_s=10, clock=lambda: now[0], max_wait=0.1, poll_s=0.02):
        pass


def test_on_redis_the_wait_ends_even_with_a_sleep_that_returns_at_once(redis_backend):
    key = identity()
    held = [ConcurrencyLimit(key, 1)]
    held[0].acquire()
    sleeps = []
    try:
        with pytest.raises(ConcurrencyTimeout):
            ConcurrencyLimit(key, 1, max_wait=1.0, poll_s=0.25, sleep=sleeps.append).acquire()
    finally:
        held[0].release()

    assert sleeps == [0.25] * 4


def test_on_redis_the_slots_are_a_sorted_set_of_holders(redis_backend):
    from django_redis import get_redis_connection

    limit = ConcurrencyLimit(identity(), LIMIT, ttl_s=30)
    with limit:
        assert get_redis_connection("default").zcard(limit._key) == 1

    assert get_redis_connection("default").zcard(limit._key) == 0


def test_with_redis_unreachable_the_limit_is_skipped():
    key = identity()
    with cache_outage():
        with ConcurrencyLimit(key, 1, max_wait=0.1):
            with ConcurrencyLimit(key, 1, max_wait=0.1):
                pass
