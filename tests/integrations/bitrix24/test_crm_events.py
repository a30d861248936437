"""POST /b24/crm/events: ONCRMDEALUPDATE as Bitrix24 posts it (fixtures/crm/deal_update_*.txt), verified by its token.

The portal behind the deals is the stateful stub of tests/orders; an order is
pushed to it first, and the recorded event is replayed with that deal's id.
"""

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from conversations.models import Message
from integrations.bitrix24.events import parse_form
from orders.models import Order
from tests.orders import conftest as orders_fixtures

# The orders tests' fixtures: their settings, the stub portal, a product and a dialog.
order_settings = orders_fixtures.order_settings
portal = orders_fixtures.portal
caviar = orders_fixtures.caviar
conversation = orders_fixtures.conversation
stage_texts = orders_fixtures.stage_texts
worker = orders_fixtures.worker
pushed_order = orders_fixtures.pushed_order

URL = "/b24/crm/events"
FIXTURES = Path(__file__).parent / "fixtures" / "crm"
OUTGOING_WEBHOOK_TOKEN = "9d41c7e2a0b84f3c8e1a6b5d4c3f2e10"  # deal_update_webhook.txt
APP_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"  # deal_update_app.txt, as the chat bot's events


@pytest.fixture(autouse=True)
def event_tokens(settings, order_settings):  # after order_settings, which clears them
    settings.B24_CRM_EVENTS_TOKEN = OUTGOING_WEBHOOK_TOKEN
    settings.B24_APPLICATION_TOKEN = APP_TOKEN


@pytest.fixture(autouse=True)
def _stage_texts(stage_texts):
    pass


@pytest.fixture
def order(pushed_order):
    return pushed_order


def event(name: str, order: Order | None = None, **fields) -> bytes:
    """A recorded event, about `order`'s deal on its portal, with some fields replaced (None drops one)."""
    text = (FIXTURES / name).read_text().strip()
    if order is not None:
        fields = {"data[FIELDS][ID]": order.crm_deal_id, "auth[domain]": order.crm_domain, **fields}
    pairs = [(k, fields.get(k, v)) for k, v in parse_qsl(text, keep_blank_values=True)]
    return urlencode([(k, v) for k, v in pairs if v is not None]).encode()


def post(client, body: bytes, *, as_json: bool = False):
    if as_json:
        return client.post(URL, data=json.dumps(parse_form(body)), content_type="application/json")
    return client.post(URL, data=body, content_type="application/x-www-form-urlencoded")


def told(order) -> list[str]:
    messages = Message.objects.filter(conversation=order.conversation_id, direction=Message.Direction.OUT)
    return list(messages.values_list("text", flat=True))


@pytest.mark.usefixtures("worker")
def test_a_stage_change_from_an_outgoing_webhook_is_told_to_the_customer(client, portal, order):
    portal.move(order.crm_deal_id, "PREPARATION")

    response = post(client, event("deal_update_webhook.txt", order))

    assert (response.status_code, response.json()) == (200, {"status": "queued"})
    assert told(order) == ["Собираем заказ"]


@pytest.mark.usefixtures("worker")
def test_an_apps_event_is_taken_with_the_chat_bots_token(client, portal, order):
    portal.move(order.crm_deal_id, "EXECUTING")

    response = post(client, event("deal_update_app.txt", order))

    assert response.status_code == 200
    assert told(order) == ["Курьер уже в пути"]


@pytest.mark.usefixtures("worker")
def test_a_json_event_is_read_too(client, portal, order):
    portal.move(order.crm_deal_id, "PREPARATION")

    assert post(client, event("deal_update_webhook.txt", order), as_json=True).status_code == 200
    assert told(order) == ["Собираем заказ"]


@pytest.mark.usefixtures("worker")
def test_the_same_event_twice_tells_once(client, portal, order):
    portal.move(order.crm_deal_id, "PREPARATION")
    body = event("deal_update_webhook.txt", order)

    post(client, body)
    post(client, body)

    assert told(order) == ["Собираем заказ"]


@pytest.mark.usefixtures("worker")
def test_a_forged_event_is_refused_and_changes_nothing(client, portal, order):
    portal.move(order.crm_deal_id, "PREPARATION")
    calls_before = len(portal.calls)

    response = post(client, event("deal_update_webhook.txt", order, **{"auth[application_token]": "f" * 32}))

    assert response.status_code == 401
    assert len(portal.calls) == calls_before
    order.refresh_from_db()
    assert (order.crm_stage_id, told(order)) == ("NEW", [])


def test_an_event_without_a_token_is_refused(client, portal, order):
    response = post(client, event("deal_update_webhook.txt", order, **{"auth[application_token]": None}))

    assert response.status_code == 401


def test_nothing_is_asked_of_bitrix24_while_it_waits(client, portal, order, queue):
    calls_before = len(portal.calls)

    response = post(client, event("deal_update_webhook.txt", order))

    assert response.status_code == 200
    assert len(portal.calls) == calls_before
    assert queue.queue_size() == 1


def test_a_deal_that_is_not_an_orders_is_ignored(client, portal, order, queue):
    response = post(client, event("deal_update_webhook.txt", order, **{"data[FIELDS][ID]": "777"}))

    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert queue.queue_size() == 0


def test_a_deal_of_another_portal_is_ignored(client, portal, order, queue):
    body = event("deal_update_webhook.txt", order, **{"auth[domain]": "other-shop.bitrix24.ru"})

    assert post(client, body).json() == {"status": "ignored"}


def test_another_crm_event_is_ignored(client, portal, order):
    body = event("deal_update_webhook.txt", order, event="ONCRMLEADUPDATE")

    assert post(client, body).json() == {"status": "ignored"}


@pytest.mark.parametrize("deal_id", [None, "", "abc", "0", "-5", "1" * 40])
def test_an_event_without_a_deal_id_is_a_bad_request(client, portal, order, deal_id):
    response = post(client, event("deal_update_webhook.txt", order, **{"data[FIELDS][ID]": deal_id}))

    assert response.status_code == 400
    assert "data[FIELDS][ID]" in response.json()["error"]


def test_a_body_that_is_not_an_event_is_a_bad_request(client, db):
    assert post(client, b"hello").status_code == 400


def test_only_post_is_answered(client, db):
    assert client.get(URL).status_code == 405
