"""What the marketplace tests share: rate-limit buckets fresh per test, a marketplace stubbed at the
HTTP layer, and the task worker run inline."""

import pytest
import responses
from django.core.cache import cache
from django_q.conf import Conf


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # The token buckets and concurrency slots live in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    """The marketplace's API, answering what a test registers (requests it does not expect fail)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def worker(monkeypatch):
    """Queued tasks (the answers a poll queues) run at once, in the test."""
    monkeypatch.setattr(Conf, "SYNC", True)
