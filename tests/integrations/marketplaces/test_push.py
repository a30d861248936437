"""Push notifications at an account's secret URL: answered as each marketplace expects, taken only as
"poll this stream now", repeats asking once (payloads from fixtures/ozon and fixtures/yandex_market)."""

import json
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone

from conversations.models import ChannelAccount
from integrations.marketplaces.models import MarketplaceAccount, PollCursor

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker(settings):
    cache.clear()
    # The poll a notification asks for is queued; it runs in no worker here.
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}


def account(marketplace: str):
    channel_account = ChannelAccount.objects.create(channel=marketplace, key=f"{marketplace}-shop")
    return MarketplaceAccount.objects.create(channel_account=channel_account, marketplace=marketplace, api_key="k" * 20)


def push(client, shop, payload, secret=None):
    return client.post(
        f"/mp/{shop.pk}/{secret or shop.push_secret}/", data=json.dumps(payload), content_type="application/json"
    )


def payload(path: str):
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def test_ozons_ping_gets_the_answer_ozon_requires(client):
    response = push(client, account("ozon"), payload("ozon/push_ping.json"))

    assert response.status_code == 200
    assert set(response.json()) == {"version", "name", "time"}


def test_a_new_ozon_message_asks_for_a_chat_poll(client):
    shop = account("ozon")

    response = push(client, shop, payload("ozon/push_new_message.json"))

    assert response.json() == {"result": True}
    assert PollCursor.objects.get(account=shop, stream="chat").poll_requested_at is not None


def test_a_wrong_secret_is_refused_and_asks_for_nothing(client):
    shop = account("ozon")

    response = push(client, shop, payload("ozon/push_new_message.json"), secret="forged-secret")

    assert response.status_code == 401
    assert not PollCursor.objects.filter(account=shop).exists()


def test_market_repeating_a_notification_asks_for_one_poll(client, monkeypatch):
    shop = account("yandex_market")
    queued = []
    monkeypatch.setattr("integrations.marketplaces.tasks.async_task", lambda *args, **kw: queued.append(args))

    for notification in payload("yandex_market/notifications_repeated.json"):
        assert push(client, shop, notification).status_code == 200

    assert queued == [("integrations.marketplaces.tasks.poll_stream", shop.pk, "chat")]


def test_a_body_that_is_not_json_is_a_400(client):
    shop = account("yandex_market")

    response = client.post(f"/mp/{shop.pk}/{shop.push_secret}/", data=b"{not json", content_type="application/json")

    assert response.status_code == 400
    assert timezone.now()
