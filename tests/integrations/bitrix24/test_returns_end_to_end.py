"""Returns through the whole Bitrix24 path: the recorded ONIMBOTMESSAGEADD with a photo accepted by the
webhook, the worker (django-q2's sync mode), the assistant, the real Bitrix24 sender and client fetching the
file and telling staff, with Bitrix24's REST API stubbed by `responses`.

NOTES: fixtures/message_add_photo.txt is message_add_voice.txt with the text «Креветки пришли тухлые,
верните деньги» and one picture in data[PARAMS][FILES]: the entry Bitrix24's messenger gives a chat file
(CIMDisk::GetFileParams in the `im` module, keyed by the Drive file id) with type "image", the picture's
size as image[width] / image[height], the showImage preview and show urls an image gets and a viewer of
type "image"; data[PARAMS][PARAMS][FILE_ID] names it as CIMMessenger::Add passes it on. The bytes come as
for a voice message: disk.file.get's DOWNLOAD_URL on the portal (the webhook's way).
"""

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import responses
from django_q.conf import Conf

from conversations.models import Conversation
from integrations.bitrix24.sender import Bitrix24Sender
from orders.models import Order, ReturnRequest
from tests.factories import make_product
from tests.orders.conftest import place_order
from tests.orders.returns_support import JPEG, order_settings

pytestmark = pytest.mark.usefixtures("demo_store")

FIXTURES = Path(__file__).parent / "fixtures"
APP_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"
WEBHOOK = "https://portal.example/rest/1/secret123/"
DOWNLOAD_URL = "https://portal.example/rest/download.json?auth=dl0acc3ss0t0ken&token=disk%7CaWQ9MTc2MQ"
STAFF_DIALOG = "chat77"
CUSTOMER_DIALOG = "1269"


class FastSender(Bitrix24Sender):
    """The real sender, its client retrying without sleeping."""

    client_options = {"backoff": 0}


@pytest.fixture(autouse=True)
def bitrix(settings, monkeypatch, tmp_path):
    settings.B24_APPLICATION_TOKEN = APP_TOKEN
    settings.B24_WEBHOOK_URL = WEBHOOK
    settings.B24_RATE_LIMIT_PER_S = 0  # no waiting in tests
    settings.B24_OPERATOR_DIALOG_ID = STAFF_DIALOG
    settings.CHANNEL_SENDERS = {"bitrix24": f"{__name__}.FastSender"}
    settings.MEDIA_ROOT = tmp_path / "media"
    order_settings(settings)
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def portal():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{WEBHOOK}imbot.message.add.json", json={"result": 901})
        mock.post(
            f"{WEBHOOK}disk.file.get.json",
            json={"result": {"ID": 1761, "NAME": "IMG_20260226_153805.jpg", "DOWNLOAD_URL": DOWNLOAD_URL}},
        )
        mock.get(DOWNLOAD_URL, body=JPEG, content_type="image/jpeg")
        yield mock


@pytest.fixture
def delivered_order(client, portal):
    """The customer wrote to the bot once, ordered shrimps and caviar, and they were delivered."""
    post(client, event("message_add.txt", **{"data[PARAMS][MESSAGE]": "Здравствуйте"}))
    conversation = Conversation.objects.get()
    shrimp = make_product("Креветки тигровые 16/20", price=2190, quantity=5, unit="1 кг")
    caviar = make_product("Икра кеты", price=590, quantity=10, unit="100 г")
    order = place_order(conversation, [(shrimp, 1), (caviar, 2)])
    Order.objects.filter(pk=order.pk).update(state=Order.State.DELIVERED)
    portal.calls.reset()
    return order


def event(name: str, **fields) -> bytes:
    pairs = parse_qsl((FIXTURES / name).read_text().strip(), keep_blank_values=True)
    return urlencode([(k, fields.get(k, v)) for k, v in pairs]).encode()


def post(client, data: bytes):
    return client.post("/b24/imbot/events", data=data, content_type="application/x-www-form-urlencoded")


def messages_to(portal, dialog_id: str) -> list[str]:
    bodies = [json.loads(c.request.body) for c in portal.calls if c.request.url.endswith("/imbot.message.add.json")]
    return [b["MESSAGE"] for b in bodies if str(b["DIALOG_ID"]) == dialog_id]


def test_a_complaint_with_a_photo_becomes_a_return_request_of_the_lines_named(client, portal, delivered_order):
    response = post(client, event("message_add_photo.txt"))

    assert response.status_code == 200
    request = ReturnRequest.objects.get()
    assert (request.order, request.state) == (delivered_order, ReturnRequest.State.NEW)
    assert [line.title for line in request.lines.all()] == ["Креветки тигровые 16/20"]
    assert request.photos.get().file.read() == JPEG


def test_the_photo_is_fetched_by_its_drive_id(client, portal, delivered_order):
    post(client, event("message_add_photo.txt"))

    [asked] = [json.loads(c.request.body) for c in portal.calls if c.request.url.endswith("/disk.file.get.json")]
    assert asked["id"] == 1761


def test_the_customer_is_quoted_the_policy_and_handed_to_a_person(client, portal, delivered_order):
    post(client, event("message_add_photo.txt"))

    [reply] = messages_to(portal, CUSTOMER_DIALOG)
    request = ReturnRequest.objects.get()
    assert f"Заявка на возврат №{request.pk} по заказу №{delivered_order.number}" in reply
    assert "Условия возврата" in reply
    assert Conversation.objects.get().state == Conversation.State.OPERATOR


def test_staff_are_told_which_request_with_its_admin_link(client, portal, delivered_order):
    post(client, event("message_add_photo.txt"))

    [notice] = messages_to(portal, STAFF_DIALOG)
    request = ReturnRequest.objects.get()
    assert f"Заявка на возврат №{request.pk} по заказу №{delivered_order.number} (1 фото)" in notice
    assert f"/admin/orders/returnrequest/{request.pk}/change/" in notice


def test_the_same_event_twice_makes_one_request_and_one_photo(client, portal, delivered_order):
    post(client, event("message_add_photo.txt"))
    post(client, event("message_add_photo.txt"))

    assert ReturnRequest.objects.count() == 1
    assert ReturnRequest.objects.get().photos.count() == 1
    assert len(messages_to(portal, CUSTOMER_DIALOG)) == 1
