"""The contract every channel with a webhook keeps, run over the channel registry.

For each channel: a recorded fixture in the channel's real shape is posted →
200 → one incoming message → one queued task → one reply in the locmem
outbox; the same delivery again stores and sends nothing more; a forged
secret → 401 and nothing stored. A channel added to the registry without a
case here fails `test_every_channel_with_a_webhook_has_a_contract_case`.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django_q.conf import Conf

from conversations.channels import registry
from conversations.models import Message

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")

FIXTURES = Path(__file__).parent
B24_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"
TG_SECRET = "tg-contract-secret-0123456789"


@dataclass
class Case:
    url: str
    body: bytes
    content_type: str
    headers: dict
    forged_body: bytes
    forged_headers: dict


def bitrix24_case() -> Case:
    body = (FIXTURES / "bitrix24/fixtures/message_add.txt").read_bytes().strip()
    return Case(
        url="/b24/imbot/events",
        body=body,
        content_type="application/x-www-form-urlencoded",
        headers={},
        forged_body=body.replace(B24_TOKEN.encode(), b"0" * len(B24_TOKEN)),
        forged_headers={},
    )


def telegram_case() -> Case:
    body = (FIXTURES / "telegram/fixtures/message_text.json").read_bytes()
    return Case(
        url="/tg/webhook",
        body=body,
        content_type="application/json",
        headers={"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": TG_SECRET},
        forged_body=body,
        forged_headers={"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": "forged-" + TG_SECRET},
    )


CASES = {"bitrix24": bitrix24_case, "telegram": telegram_case}
# A polled channel's webhook only asks for a poll (tests/integrations/marketplaces/test_push.py).
WEBHOOK_CHANNELS = [entry.code for entry in registry() if entry.urls and not entry.polled]


@pytest.fixture(autouse=True)
def configured(settings):
    settings.B24_APPLICATION_TOKEN = B24_TOKEN
    settings.TELEGRAM_BOT_TOKEN = "6891234567:AAHk-contract-token"
    settings.TELEGRAM_WEBHOOK_SECRET = TG_SECRET


def post(client, case: Case, *, forged: bool = False):
    return client.post(
        case.url,
        data=case.forged_body if forged else case.body,
        content_type=case.content_type,
        **(case.forged_headers if forged else case.headers),
    )


def test_every_channel_with_a_webhook_has_a_contract_case():
    assert sorted(WEBHOOK_CHANNELS) == sorted(CASES)


@pytest.mark.parametrize("channel", WEBHOOK_CHANNELS)
def test_a_message_is_acknowledged_recorded_once_and_queued_once(client, channel, queue):
    case = CASES[channel]()

    response = post(client, case)

    assert response.status_code == 200
    [message] = Message.objects.filter(direction=Message.Direction.IN)
    assert (message.channel, message.author) == (channel, Message.Author.CUSTOMER)
    assert queue.queue_size() == 1  # the answer, not run yet: the webhook did no slow work
    assert not Message.objects.filter(author=Message.Author.BOT).exists()


@pytest.mark.parametrize("channel", WEBHOOK_CHANNELS)
def test_the_queued_task_sends_one_reply(client, channel, locmem_channels, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)

    post(client, CASES[channel]())

    [sent] = locmem_channels.outbox
    assert sent.channel == channel
    assert sent.author == Message.Author.BOT


@pytest.mark.parametrize("channel", WEBHOOK_CHANNELS)
def test_a_repeated_delivery_stores_and_queues_nothing_more(client, channel, queue):
    case = CASES[channel]()
    post(client, case)

    response = post(client, case)

    assert response.status_code == 200
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1
    assert queue.queue_size() == 1


@pytest.mark.parametrize("channel", WEBHOOK_CHANNELS)
def test_a_forged_secret_is_401_and_nothing_is_stored(client, channel, queue):
    response = post(client, CASES[channel](), forged=True)

    assert response.status_code == 401
    assert json.loads(response.content)["error"]
    assert Message.objects.count() == 0
    assert queue.queue_size() == 0
