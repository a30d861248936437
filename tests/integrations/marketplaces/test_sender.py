"""Answers going out to a marketplace: the marketplace's rules on every text, Ozon's 48-hour window,
stopped and read-only accounts (Ozon stubbed at the HTTP layer, fixtures/ozon/)."""

import contextlib
import datetime
import json
from pathlib import Path

import pytest
import responses
from django.utils import timezone

from conversations.channels import DeliveryError
from conversations.incoming import IncomingMessage
from conversations.models import ChannelAccount, Message
from conversations.services import accept_incoming, deliver, record_outgoing
from integrations.marketplaces.models import MarketplaceAccount
from integrations.marketplaces.sender import WINDOW_CLOSED

BASE = "https://ozon.test"
SEND_URL = f"{BASE}/v1/chat/send/message"
FIXTURES = Path(__file__).parent / "fixtures" / "ozon"

pytestmark = pytest.mark.django_db


@pytest.fixture
def ozon():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{BASE}/v3/chat/history", json={"messages": [], "has_next": False})
        yield mock


def ozon_account(**fields):
    channel_account = ChannelAccount.objects.create(channel="ozon", key="ozon-shop", name="Ozon")
    return MarketplaceAccount.objects.create(
        channel_account=channel_account,
        marketplace="ozon",
        client_id="1943218",
        api_key="6c2a4f1e-secret-api-key",
        base_url=BASE,
        **fields,
    )


def buyer_wrote(account, hours_ago: float = 1):
    message, _ = accept_incoming(
        IncomingMessage(
            channel="ozon",
            dialog_id="b646d975-0c9c-4872-9f41-8b1e57181063",
            message_id="3000000000817031942",
            text="Мидии варёные?",
            account_id=account.channel_account_id,
            channel_data={"stream": "chat", "thread_id": "b646d975-0c9c-4872-9f41-8b1e57181063", "context": {}},
        )
    )
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - datetime.timedelta(hours=hours_ago))
    return message.conversation


def answer(conversation, text="Да, варёно-мороженые."):
    reply = record_outgoing(conversation=conversation, text=text, author=Message.Author.OPERATOR)
    with contextlib.suppress(DeliveryError):  # the outcome is read from the row
        deliver(reply)
    reply.refresh_from_db()
    return reply


def sent_texts(ozon) -> list[str]:
    return [json.loads(c.request.body)["text"] for c in ozon.calls if c.request.url == SEND_URL]


def test_an_answer_within_the_window_goes_to_the_chat(ozon):
    ozon.post(SEND_URL, json={"result": "success"})
    conversation = buyer_wrote(ozon_account(), hours_ago=47)

    reply = answer(conversation)

    assert reply.delivery_state == Message.Delivery.SENT
    assert sent_texts(ozon) == ["Да, варёно-мороженые."]


def test_an_ozon_chat_past_its_48_hours_is_not_sent_to_and_is_flagged(ozon):
    conversation = buyer_wrote(ozon_account(), hours_ago=49)

    reply = answer(conversation)

    conversation.refresh_from_db()
    assert (reply.delivery_state, reply.delivery_error) == (Message.Delivery.FAILED, WINDOW_CLOSED)
    assert conversation.channel_data["reply_window_closed"] is True
    assert sent_texts(ozon) == []


def test_links_phones_and_emails_never_reach_the_buyer(ozon):
    ozon.post(SEND_URL, json={"result": "success"})
    conversation = buyer_wrote(ozon_account())

    reply = answer(conversation, "Мидии есть. Пишите на shop@example.ru или звоните +7 (495) 123-45-67. Ждём заказ!")

    (text,) = sent_texts(ozon)
    assert "@" not in text and "495" not in text
    assert text.startswith("Мидии есть.")
    assert reply.text == text


def test_a_send_refused_for_want_of_premium_makes_the_account_read_only(ozon):
    ozon.post(SEND_URL, json=json.loads((FIXTURES / "error_403.json").read_text()), status=403)
    account = ozon_account()
    conversation = buyer_wrote(account)

    first = answer(conversation)
    second = answer(conversation, "Ещё вопрос?")

    account.refresh_from_db()
    assert first.delivery_state == second.delivery_state == Message.Delivery.FAILED
    assert account.read_only_reason
    assert account.capabilities["chat_send"] is False
    assert len(sent_texts(ozon)) == 1


def test_a_stopped_account_sends_nothing(ozon):
    conversation = buyer_wrote(ozon_account(stopped_at=timezone.now(), stop_reason="Ozon не принял ключ"))

    reply = answer(conversation)

    assert reply.delivery_state == Message.Delivery.FAILED
    assert "Ozon не принял ключ" in reply.delivery_error
    assert sent_texts(ozon) == []
