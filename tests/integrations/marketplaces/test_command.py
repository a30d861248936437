"""manage.py marketplace_account: keys from the environment, never printed; check records the answer."""

import io

import pytest
import responses
from django.core.cache import cache
from django.core.management import CommandError, call_command

from conversations.models import ChannelAccount
from integrations.marketplaces.models import MarketplaceAccount

pytestmark = pytest.mark.django_db

API_KEY = "6c2a4f1e-0b7d-4c11-secret-api-key"
OZON = "https://ozon.test"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def ozon():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run(*args, stdin: str = "") -> str:
    out = io.StringIO()
    call_command("marketplace_account", *args, stdout=out, stderr=io.StringIO(), stdin=io.StringIO(stdin))
    return out.getvalue()


def add_ozon(monkeypatch, *args) -> str:
    monkeypatch.setenv("OZON_TEST_KEY", API_KEY)
    return run(
        "add", "ozon", "--name", "Морской магазин", "--client-id", "1943218", "--base-url", OZON,
        "--api-key-env", "OZON_TEST_KEY", *args,
    )  # fmt: skip


def test_add_reads_the_key_from_the_environment_variable(monkeypatch):
    out = add_ozon(monkeypatch)

    account = MarketplaceAccount.objects.get()
    assert (account.marketplace, account.client_id, account.api_key) == ("ozon", "1943218", API_KEY)
    assert account.channel_account.key == "morskoy-magazin"
    assert API_KEY not in out


def test_add_reads_the_key_from_stdin():
    run("add", "wildberries", "--name", "WB", "--api-key-stdin", stdin=f"{API_KEY}\n")

    assert MarketplaceAccount.objects.get().api_key == API_KEY


def test_add_takes_market_campaigns_and_modes():
    run(
        "add", "yandex_market", "--name", "Маркет", "--business-id", "7701",
        "--campaign-id", "21", "--campaign-id", "22", "--chat-mode", "auto",
    )  # fmt: skip

    account = MarketplaceAccount.objects.get()
    assert (account.business_id, account.campaign_ids, account.chat_mode) == ("7701", ["21", "22"], "auto")


def test_add_refuses_an_ozon_account_without_a_client_id():
    with pytest.raises(CommandError, match="client_id"):
        run("add", "ozon", "--name", "Ozon")


def test_list_shows_the_accounts_without_their_keys(monkeypatch):
    add_ozon(monkeypatch)
    account = MarketplaceAccount.objects.get()

    out = run("list")

    assert "morskoy-magazin" in out
    assert "API key set" in out
    assert API_KEY not in out
    assert account.push_secret not in out


def test_check_records_a_working_key(monkeypatch, ozon):
    add_ozon(monkeypatch)
    account = MarketplaceAccount.objects.get()
    ozon.post(f"{OZON}/v3/chat/list", json={"chats": [], "total_unread_count": 0})
    ozon.post(f"{OZON}/v1/review/list", json={"reviews": [], "has_next": False})

    out = run("check", str(account.pk))

    account.refresh_from_db()
    assert "Ключ работает" in out
    assert account.key_checked_at is not None
    assert account.capabilities["chat_read"] is True


def test_check_fails_on_a_refused_key_and_stops_the_account(monkeypatch, ozon):
    add_ozon(monkeypatch)
    account = MarketplaceAccount.objects.get()
    ozon.post(f"{OZON}/v3/chat/list", status=401, json={"code": 16, "message": "Invalid Api-Key"})

    with pytest.raises(CommandError, match="Ozon не принял ключ"):
        run("check", str(account.pk))

    account.refresh_from_db()
    assert account.stopped_at is not None


def test_remove_takes_the_channel_account_with_it(monkeypatch):
    add_ozon(monkeypatch)
    account = MarketplaceAccount.objects.get()

    run("remove", str(account.pk))

    assert not MarketplaceAccount.objects.exists()
    assert not ChannelAccount.objects.filter(pk=account.channel_account_id).exists()
