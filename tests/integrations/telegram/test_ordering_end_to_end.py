"""An order placed in Telegram through the whole path: the webhook, the worker
(django-q2's sync mode), the assistant, the real TelegramSender and client,
with the Bot API stubbed at the HTTP layer by `responses`; the phone shared
with Telegram's contact button."""

import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.core.cache import cache
from django_q.conf import Conf

from orders.models import Customer, Order

pytestmark = pytest.mark.usefixtures("demo_store")

TOKEN = "6891234567:AAHk-order-SecretPartOfTheToken-xyz"
SECRET = "tg-order-webhook-secret-0123456789"
API = "https://api.telegram.test"
BOT = f"{API}/bot{TOKEN}"
FIXTURES = Path(__file__).parent / "fixtures"
CHAT = 384912765
ADDRESS = "Москва, ул. Лесная, д. 5, кв. 12"
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def telegram(settings, monkeypatch):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    settings.TELEGRAM_API_URL = API
    settings.TELEGRAM_RATE_PER_BOT_PER_S = 0
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 0
    settings.CHANNEL_SENDERS = {}
    settings.ORDER_MIN_TOTAL = Decimal("1500")
    settings.B24_CRM_ORDERS = False
    monkeypatch.setattr(Conf, "SYNC", True)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as stub:
        stub.post(f"{BOT}/sendMessage", json={"ok": True, "result": {"message_id": 3001, "chat": {"id": CHAT}}})
        yield stub


def numbered(payload: dict) -> dict:
    """The update with ids of its own: Telegram never sends two updates with one id."""
    n = next(_ids)
    payload["update_id"] = 815300000 + n
    payload["message"]["message_id"] = 5000 + n
    return payload


def say(client, text: str):
    payload = json.loads((FIXTURES / "message_text.json").read_text())
    payload["message"]["text"] = text
    return post(client, numbered(payload))


def share_contact(client):
    return post(client, numbered(json.loads((FIXTURES / "message_contact.json").read_text())))


def post(client, payload: dict):
    response = client.post(
        "/tg/webhook",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=SECRET,
    )
    assert response.status_code == 200
    return response


def last_sent(mock) -> dict:
    sent = [json.loads(c.request.body) for c in mock.calls if c.request.url == f"{BOT}/sendMessage"]
    return sent[-1]


def test_the_phone_question_comes_with_the_contact_button(mock, client):
    say(client, "хочу заказать икру кеты 500 г, 2 шт")

    say(client, "оформляем")

    sent = last_sent(mock)
    assert "номер телефона" in sent["text"]
    assert sent["reply_markup"]["keyboard"] == [[{"text": "Поделиться номером", "request_contact": True}]]
    assert sent["reply_markup"]["one_time_keyboard"] is True


def test_a_shared_contact_is_the_customers_phone_and_the_checkout_goes_on(mock, client):
    say(client, "хочу заказать икру кеты 500 г, 2 шт")
    say(client, "оформляем")

    share_contact(client)

    assert Customer.objects.get().phone == "+79161234567"
    assert "Доставка курьером или самовывоз?" in last_sent(mock)["text"]
    assert "inline_keyboard" in last_sent(mock)["reply_markup"]


def test_an_order_placed_in_telegram_is_told_its_number(mock, client):
    say(client, "хочу заказать икру кеты 500 г, 2 шт")
    say(client, "оформляем")
    share_contact(client)
    for text in ("доставка", ADDRESS, "завтра утром", "картой", "позвоните за час"):
        say(client, text)

    say(client, "подтверждаю")

    order = Order.objects.get()
    assert (order.channel, order.comment, order.payment) == ("telegram", "позвоните за час", "card")
    assert f"Заказ №{order.number} оформлен" in last_sent(mock)["text"]


def test_where_is_my_order_is_answered_from_the_customers_order(mock, client):
    say(client, "хочу заказать икру кеты 500 г, 2 шт")
    say(client, "оформляем")
    share_contact(client)
    for text in ("самовывоз", "завтра", "наличными", "нет", "подтверждаю"):
        say(client, text)
    number = Order.objects.get().number

    say(client, "где мой заказ?")

    answer = last_sent(mock)["text"]
    assert f"Заказ №{number}" in answer
    assert "принят" in answer
