"""Recorded Bitrix24 events through the whole path: webhook, worker, the real
Bitrix24 sender and client, with Bitrix24's REST API stubbed by `responses`."""

import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import responses
from django.utils import timezone
from django_q.conf import Conf
from responses import registries

from conversations.models import Conversation, Message
from integrations.bitrix24.models import Portal
from integrations.tasks import sweep_unanswered

pytestmark = pytest.mark.usefixtures("demo_store")

FIXTURES = Path(__file__).parent / "fixtures"
APP_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"
MEMBER = "5f0c6a9e2b3d4c1a8e7f6d5c4b3a2918"
WEBHOOK = "https://portal.example/rest/1/secret123/"
PORTAL_REST = "https://seafood-shop.bitrix24.ru/rest/"


@pytest.fixture(autouse=True)
def bitrix(settings, monkeypatch):
    settings.B24_APPLICATION_TOKEN = APP_TOKEN
    settings.B24_WEBHOOK_URL = WEBHOOK
    settings.B24_RATE_LIMIT_PER_S = 0  # no waiting in tests
    settings.CHANNEL_SENDERS = {"bitrix24": "tests.integrations.bitrix24.test_end_to_end.FastSender"}
    monkeypatch.setattr(Conf, "SYNC", True)


from integrations.bitrix24.sender import Bitrix24Sender  # noqa: E402


class FastSender(Bitrix24Sender):
    """The real sender, its client retrying without sleeping."""

    client_options = {"backoff": 0}


def event(name: str, **fields) -> bytes:
    pairs = parse_qsl((FIXTURES / name).read_text().strip(), keep_blank_values=True)
    return urlencode([(k, fields.get(k, v)) for k, v in pairs]).encode()


def post(client, data: bytes):
    return client.post("/b24/imbot/events", data=data, content_type="application/x-www-form-urlencoded")


def sent(mock, method: str) -> list[dict]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url.split("?")[0].endswith(f"/{method}.json")]


def test_customer_question_gets_one_reply_with_product_cards(client):
    with responses.RequestsMock() as mock:
        mock.post(f"{WEBHOOK}imbot.message.add.json", json={"result": 555})

        response = post(client, event("message_add.txt", **{"data[PARAMS][MESSAGE]": "Какая икра есть в наличии?"}))

        [call] = sent(mock, "imbot.message.add")
    assert response.status_code == 200
    assert call["DIALOG_ID"] == "1269"
    assert "Икра" in call["MESSAGE"] and "[b]" in call["MESSAGE"]
    assert len(call["ATTACH"]) >= 3
    assert "Позвать оператора" in json.dumps(call["KEYBOARD"], ensure_ascii=False)
    reply = Message.objects.get(author=Message.Author.BOT)
    assert (reply.delivery_state, reply.external_id) == (Message.Delivery.SENT, "555")


def test_same_event_twice_gets_one_reply(client):
    with responses.RequestsMock() as mock:
        mock.post(f"{WEBHOOK}imbot.message.add.json", json={"result": 556})

        post(client, event("message_add.txt"))
        post(client, event("message_add.txt"))

        assert len(sent(mock, "imbot.message.add")) == 1


def test_rate_limited_send_is_retried_and_delivered(client):
    with responses.RequestsMock(registry=registries.OrderedRegistry) as mock:
        mock.post(
            f"{WEBHOOK}imbot.message.add.json",
            status=503,
            json={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"},
        )
        mock.post(f"{WEBHOOK}imbot.message.add.json", json={"result": 557})

        post(client, event("message_add.txt"))

        assert len(sent(mock, "imbot.message.add")) == 2
    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.SENT


def test_expired_token_is_refreshed_once_and_the_reply_delivered(client, settings):
    settings.B24_CLIENT_ID, settings.B24_CLIENT_SECRET = "local.app", "app-secret"
    Portal.objects.create(
        member_id=MEMBER,
        domain="seafood-shop.bitrix24.ru",
        client_endpoint=PORTAL_REST,
        application_token=APP_TOKEN,
        access_token="old-access",
        refresh_token="old-refresh",
    )
    with responses.RequestsMock(registry=registries.OrderedRegistry) as mock:
        mock.post(
            f"{PORTAL_REST}imbot.message.add.json",
            status=401,
            json={"error": "expired_token", "error_description": "The access token provided has expired."},
        )
        refresh = mock.get(
            settings.B24_OAUTH_TOKEN_URL,
            json={"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 3600},
        )
        mock.post(f"{PORTAL_REST}imbot.message.add.json", json={"result": 558})

        post(client, event("message_add.txt"))

        assert refresh.call_count == 1
        assert [c["auth"] for c in sent(mock, "imbot.message.add")] == ["old-access", "new-access"]
    assert Portal.objects.get().access_token == "new-access"
    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.SENT


def test_operator_request_in_open_lines_transfers_the_session(client):
    with responses.RequestsMock() as mock:
        mock.post(f"{WEBHOOK}imbot.message.add.json", json={"result": 559})
        mock.post(f"{WEBHOOK}imopenlines.bot.session.operator.json", json={"result": True})

        post(client, event("message_add_lines_customer.txt", **{"data[PARAMS][MESSAGE]": "позовите оператора"}))

        [transfer] = sent(mock, "imopenlines.bot.session.operator")
    conversation = Conversation.objects.get()
    assert conversation.state == Conversation.State.OPERATOR
    assert str(transfer["CHAT_ID"]) == str(conversation.channel_data["chat_id"])


def test_message_of_a_dead_worker_is_answered_by_the_sweep(client, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)  # the queued task is lost: no worker runs it
    with responses.RequestsMock() as mock:
        mock.post(f"{WEBHOOK}imbot.message.add.json", json={"result": 560})
        post(client, event("message_add.txt"))
        Message.objects.update(created_at=timezone.now() - timedelta(minutes=2))
        assert sent(mock, "imbot.message.add") == []
        monkeypatch.setattr(Conf, "SYNC", True)

        assert sweep_unanswered() == 1

        assert len(sent(mock, "imbot.message.add")) == 1
