import pytest
from django.db import connection


@pytest.fixture
def postgres_only(db):
    """For behaviour that only the PostgreSQL search has (stemming, trigrams)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Admin pages render without a collectstatic manifest in tests."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True)
def _no_llm_from_the_shell(settings):
    """A key exported in a developer's shell must not switch tests to a real LLM: each test that wants one sets it."""
    settings.LLM_PROVIDER = ""
    settings.OPENAI_API_KEY = ""
    settings.GIGACHAT_AUTH_KEY = ""


@pytest.fixture
def demo_store(db):
    """The demo seafood catalog and FAQ that ship with the repository."""
    from catalog.demo import load_demo_store

    load_demo_store()


@pytest.fixture
def locmem_channels(settings):
    """Every channel delivers into conversations.channels.outbox."""
    from conversations import channels

    settings.CHANNEL_SENDERS = {"*": "conversations.channels.LocmemSender"}
    channels.outbox.clear()
    channels.handoffs.clear()
    yield channels
    channels.outbox.clear()
    channels.handoffs.clear()


@pytest.fixture(autouse=True)
def _fresh_account_ids():
    """Each test's rolled-back database has its own channel accounts; the process cache must not outlive it."""
    from conversations import services
    from integrations.telegram import services as telegram

    services._account_ids.clear()
    telegram.forget_credentials()
    yield
    services._account_ids.clear()
    telegram.forget_credentials()


@pytest.fixture
def stt_server():
    """A local OpenAI-compatible transcription server: script replies with .reply_*(), read .requests."""
    from tests.bots.stt_server import STTServer

    server = STTServer().start()
    yield server
    server.close()


@pytest.fixture
def queue(monkeypatch):
    """The real task queue (no inline worker), emptied before and after."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


@pytest.fixture(autouse=True)
def _spool_per_test(settings, tmp_path):
    """Each test keeps webhook events in its own spool, and catches up inline (no background thread)."""
    from integrations import tasks

    settings.SPOOL_DIR = str(tmp_path / "spool")
    settings.OUTAGE_CATCH_UP_THREAD = False
    tasks._left_behind.clear()
    yield
    tasks._left_behind.clear()


@pytest.fixture
def database_outage(db):
    """Start an outage of the default database; `.end()` brings it back (also at teardown)."""
    from tests.outages import DatabaseOutage

    outages = []

    def start() -> DatabaseOutage:
        outages.append(DatabaseOutage())
        return outages[-1]

    yield start
    for outage in reversed(outages):
        outage.end()


@pytest.fixture
def operators_on_duty(db):
    """Operators work around the clock: a hand-off reply without the off-duty note, whatever the hour."""
    from datetime import time

    from inbox.models import Holiday, WorkingHours

    Holiday.objects.all().delete()
    WorkingHours.objects.update(is_closed=False, opens_at=time.min, closes_at=time.max)
