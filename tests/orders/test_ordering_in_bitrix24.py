"""An order placed in a Bitrix24 chat, end to end: the bot's webhook events,
the worker (django-q2's sync mode), the ordering dialog, the order's push to
the portal's CRM; Bitrix24's REST stubbed at the HTTP layer (the stateful
tests.orders.bitrix24_stub for the CRM, `responses` for the chat)."""

import itertools
import json
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import responses
from django_q.conf import Conf

from orders.models import Order
from orders.tasks import sync_deal
from tests.orders.bitrix24_stub import FakeBitrix24

pytestmark = pytest.mark.usefixtures("demo_store")

FIXTURES = Path(__file__).parents[1] / "integrations" / "bitrix24" / "fixtures"
APP_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"  # the fixtures' application_token
ADDRESS = "Москва, ул. Лесная, д. 5, кв. 12"
_ids = itertools.count(40000)


@pytest.fixture
def crm(settings, monkeypatch):
    url = f"https://t{uuid.uuid4().hex[:12]}.bitrix24.test/rest/1/crm-secret/"
    settings.B24_WEBHOOK_URL = url
    settings.B24_APPLICATION_TOKEN = APP_TOKEN
    settings.B24_CRM_ORDERS = True
    settings.ORDER_MIN_TOTAL = Decimal("1500")
    settings.CHANNEL_SENDERS = {}
    monkeypatch.setattr(Conf, "SYNC", True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        portal = FakeBitrix24(mock, url)
        portal.said = []

        def bot_message(request):
            portal.said.append(json.loads(request.body)["MESSAGE"])
            return 200, {}, json.dumps({"result": len(portal.said)})

        mock.add_callback(responses.POST, f"{url}imbot.message.add.json", callback=bot_message)
        yield portal


def say(client, text: str, *, fixture: str = "message_add.txt", **fields):
    pairs = parse_qsl((FIXTURES / fixture).read_text().strip(), keep_blank_values=True)
    fields = {"data[PARAMS][MESSAGE]": text, "data[PARAMS][MESSAGE_ID]": str(next(_ids)), **fields}
    body = urlencode([(k, fields.get(k, v)) for k, v in pairs]).encode()
    response = client.post("/b24/imbot/events", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200


def order_in_chat(client, **fields):
    for text in (
        "хочу заказать икру кеты 500 г, 2 шт",
        "добавь ещё креветки тигровые",
        "оформляем",
        "8 (999) 555-44-33",
        "доставка",
        ADDRESS,
        "завтра после 18",
        "наличными",
        "нет",
        "подтверждаю",
    ):
        say(client, text, **fields)


def test_an_order_from_the_chat_is_one_deal_with_the_contact_and_product_rows(
    crm, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order_in_chat(client)

    order = Order.objects.get()
    assert f"Заказ №{order.number} оформлен" in crm.said[-1]
    assert order.push_state == Order.PushState.PUSHED
    [deal] = crm.deals.values()
    assert deal["ORIGIN_ID"] == str(order.uid)
    [contact] = crm.contacts.values()
    assert contact["PHONE"][0]["VALUE"] == "+79995554433"
    rows = crm.rows[order.crm_deal_id]
    assert [(r["productName"], r["quantity"]) for r in rows] == [
        ("Икра кеты зернистая, 500 г", 2),
        ("Креветки тигровые 16/20 в/м (1 кг)", 1),
    ]


def test_an_open_lines_chat_linked_to_a_deal_orders_into_that_deal(crm, client, django_capture_on_commit_callbacks):
    contact = crm.add_contact(name="Мария Котова", phone="+79995554433")
    deal = crm.add_deal(TITLE="Открытая линия", CONTACT_IDS=[int(contact)])
    linked = {"data[PARAMS][CHAT_ENTITY_DATA_2]": f"LEAD|0|COMPANY|0|CONTACT|{contact}|DEAL|{deal}"}

    with django_capture_on_commit_callbacks(execute=True):
        order_in_chat(client, fixture="message_add_lines_customer.txt", **linked)

    order = Order.objects.get()
    assert (order.crm_deal_id, order.crm_contact_id) == (deal, contact)
    assert len(crm.deals) == 1


def test_where_is_my_order_tells_the_stage_the_deal_was_moved_to(crm, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order_in_chat(client)
    order = Order.objects.get()
    crm.move(order.crm_deal_id, "EXECUTING")
    sync_deal(order.pk)
    said_before = len(crm.said)

    say(client, "что с моим заказом?")

    assert len(crm.said) == said_before + 1
    assert f"Заказ №{order.number}" in crm.said[-1]
