"""Returns through the whole Telegram path: the webhook, the worker (django-q2's sync mode), the assistant,
the real TelegramSender and client, with the Bot API stubbed at the HTTP layer by `responses`.

NOTES: fixtures/message_photo_spoiled.json (a photo in three sizes with the caption «пришла испорченная
икра») and fixtures/message_photo_only.json (a photo, no caption) are `Update` objects with `Message.photo`
an array of `PhotoSize` (file_id, file_unique_id, width, height, file_size), as the Bot API reference
(https://core.telegram.org/bots/api#photosize) gives them; the file is fetched as the reference says:
`getFile` answers a `File` (file_id, file_unique_id, file_size, file_path), and the bytes are at
{api}/file/bot<token>/<file_path>. Ids are made up, like the other fixtures here.
"""

import json
from pathlib import Path

import pytest
import responses
from django.core.cache import cache
from django_q.conf import Conf

from conversations.models import Conversation
from integrations.telegram.sender import TelegramSender
from orders.models import Order, ReturnRequest
from tests.factories import make_product
from tests.orders.conftest import place_order
from tests.orders.returns_support import JPEG, order_settings

pytestmark = pytest.mark.usefixtures("demo_store")

TOKEN = "6891234567:AAHk-returns-SecretPartOfTheToken"
SECRET = "tg-returns-webhook-secret-0123456"
API = "https://api.telegram.test"
BOT = f"{API}/bot{TOKEN}"
FIXTURES = Path(__file__).parent / "fixtures"
CHAT = 384912765
OPERATORS = "-1001234567890"


class NoWaitSender(TelegramSender):
    """The real sender; its client does not sleep between retries."""

    client_options = {"sleep": lambda _seconds: None, "backoff": 0}


@pytest.fixture(autouse=True)
def telegram(settings, monkeypatch, tmp_path):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    settings.TELEGRAM_API_URL = API
    settings.TELEGRAM_OPERATOR_CHAT_ID = OPERATORS
    settings.TELEGRAM_RATE_PER_BOT_PER_S = 0
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 0
    settings.CHANNEL_SENDERS = {"telegram": f"{__name__}.NoWaitSender"}
    settings.MEDIA_ROOT = tmp_path / "media"
    order_settings(settings)
    monkeypatch.setattr(Conf, "SYNC", True)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def mock():
    """The Bot API, stubbed; unregistered URLs fail as a refused connection would."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as stub:
        stub.post(f"{BOT}/sendMessage", json={"ok": True, "result": {"message_id": 2001, "chat": {"id": CHAT}}})
        stub.post(f"{BOT}/sendMediaGroup", json={"ok": True, "result": [{"message_id": 2000}]})
        yield stub


@pytest.fixture
def delivered_order(client, mock):
    """The customer wrote to the bot once, ordered two packs of caviar, and they were delivered."""
    post(client, update("message_text.json", text="Здравствуйте"))
    conversation = Conversation.objects.get()
    caviar = make_product("Икра кеты", price=590, quantity=10, unit="100 г")
    order = place_order(conversation, [(caviar, 2)])
    Order.objects.filter(pk=order.pk).update(state=Order.State.DELIVERED)
    mock.calls.reset()
    return order


def update(name: str, text: str | None = None, message_id: int | None = None) -> dict:
    payload = json.loads((FIXTURES / name).read_text())
    if text is not None:
        payload["message"]["text"] = text
    if message_id is not None:
        payload["update_id"] += message_id
        payload["message"]["message_id"] = message_id
    return payload


def post(client, payload: dict):
    return client.post(
        "/tg/webhook",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=SECRET,
    )


def largest_photo(name: str) -> str:
    return update(name)["message"]["photo"][-1]["file_id"]


def photo_on_telegram(mock, file_id: str, file_path: str) -> None:
    file = {"file_id": file_id, "file_unique_id": "AQADwNsxG2vRSUt-", "file_size": len(JPEG), "file_path": file_path}
    mock.post(f"{BOT}/getFile", json={"ok": True, "result": file})
    mock.get(f"{API}/file/bot{TOKEN}/{file_path}", body=JPEG, content_type="image/jpeg")


def sent(mock, method: str, chat_id) -> list[dict]:
    bodies = [json.loads(c.request.body) for c in mock.calls if c.request.url == f"{BOT}/{method}"]
    return [b for b in bodies if str(b.get("chat_id")) == str(chat_id)]


def test_a_photo_with_a_complaint_becomes_a_return_request_holding_the_photo(client, mock, delivered_order):
    photo_on_telegram(mock, largest_photo("message_photo_spoiled.json"), "photos/file_31.jpg")

    post(client, update("message_photo_spoiled.json"))

    request = ReturnRequest.objects.get()
    assert (request.order, request.state) == (delivered_order, ReturnRequest.State.NEW)
    assert request.photos.get().file.read() == JPEG
    [asked] = [json.loads(c.request.body) for c in mock.calls if c.request.url == f"{BOT}/getFile"]
    assert asked["file_id"] == largest_photo("message_photo_spoiled.json")


def test_the_customer_gets_the_policy_and_a_person(client, mock, delivered_order):
    photo_on_telegram(mock, largest_photo("message_photo_spoiled.json"), "photos/file_31.jpg")

    post(client, update("message_photo_spoiled.json"))

    [reply] = sent(mock, "sendMessage", CHAT)
    request = ReturnRequest.objects.get()
    assert f"Заявка на возврат №{request.pk} по заказу №{delivered_order.number}" in reply["text"]
    assert "Условия возврата" in reply["text"] and "в течение 24 часов" in reply["text"]
    assert "Передаю заявку менеджеру" in reply["text"]
    assert Conversation.objects.get().state == Conversation.State.OPERATOR


def test_the_operators_are_told_which_request_and_where_it_is(client, mock, delivered_order):
    photo_on_telegram(mock, largest_photo("message_photo_spoiled.json"), "photos/file_31.jpg")

    post(client, update("message_photo_spoiled.json"))

    [notice] = sent(mock, "sendMessage", OPERATORS)
    request = ReturnRequest.objects.get()
    assert f"Заявка на возврат №{request.pk} по заказу №{delivered_order.number} (1 фото)" in notice["text"]
    assert f"/admin/orders/returnrequest/{request.pk}/change/" in notice["text"]


def test_a_photo_sent_alone_after_the_bot_asked_for_one_reaches_the_request(client, mock, delivered_order):
    photo_on_telegram(mock, largest_photo("message_photo_only.json"), "photos/file_34.jpg")
    post(client, update("message_text.json", text="хочу вернуть икру", message_id=1302))
    [asked] = sent(mock, "sendMessage", CHAT)
    assert "Пришлите, пожалуйста, фото" in asked["text"]
    mock.calls.reset()

    post(client, update("message_photo_only.json"))

    request = ReturnRequest.objects.get()
    assert (request.state, request.photos.count()) == (ReturnRequest.State.NEW, 1)
    [reply] = sent(mock, "sendMessage", CHAT)
    assert "Фото получил" in reply["text"]
    assert sent(mock, "sendMessage", OPERATORS)


def test_the_same_update_twice_makes_one_request_one_photo_and_one_reply(client, mock, delivered_order):
    photo_on_telegram(mock, largest_photo("message_photo_spoiled.json"), "photos/file_31.jpg")

    post(client, update("message_photo_spoiled.json"))
    post(client, update("message_photo_spoiled.json"))

    assert ReturnRequest.objects.count() == 1
    assert ReturnRequest.objects.get().photos.count() == 1
    assert len(sent(mock, "sendMessage", CHAT)) == 1
