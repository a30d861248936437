import importlib
import uuid
from decimal import Decimal

import pytest
import responses
from django.apps import apps
from django_q.conf import Conf

from tests.factories import make_conversation, make_product
from tests.orders.bitrix24_stub import FakeBitrix24

WEBHOOK_SECRET = "crm-w3bh00k-s3cr3t"
ADDRESS = "Москва, ул. Лесная, 5, кв. 12"


@pytest.fixture(autouse=True)
def order_settings(settings):
    settings.ORDER_MIN_TOTAL = Decimal("1000")
    settings.ORDER_DELIVERY_COST = Decimal("300")
    settings.ORDER_FREE_DELIVERY_FROM = Decimal("5000")
    settings.ORDER_PUSH_MAX_ATTEMPTS = 8
    settings.B24_CRM_ORDERS = False
    settings.B24_WEBHOOK_URL = ""
    settings.B24_CLIENT_ID = ""
    settings.B24_APPLICATION_TOKEN = ""
    settings.B24_CRM_EVENTS_TOKEN = ""
    # A roomy rate limit: only the tests about it would wait.
    settings.B24_RATE_LIMIT_PER_S = 1000
    settings.B24_RATE_LIMIT_BURST = 1000
    return settings


@pytest.fixture
def portal(settings):
    """Bitrix24 CRM on, through an inbound webhook whose portal is the stateful stub."""
    # A host of its own per test: the rate limit is kept per host, in a cache that may outlive the test.
    url = f"https://t{uuid.uuid4().hex[:12]}.bitrix24.test/rest/1/{WEBHOOK_SECRET}/"
    settings.B24_WEBHOOK_URL = url
    settings.B24_CRM_ORDERS = True
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeBitrix24(mock, url)


@pytest.fixture
def caviar(db):
    return make_product("Икра кеты", price=590, quantity=10, unit="100 г")


@pytest.fixture
def shrimp(db):
    return make_product("Креветки тигровые 16/20", price=2190, quantity=3, unit="1 кг")


@pytest.fixture
def conversation(db):
    return make_conversation("telegram", customer_external_id="5001", customer_name="Анна")


def place_order(conversation, lines, **details):
    """An order as the dialog will place it: delivery to an address, the customer's phone given."""
    from orders.services import create_order

    details.setdefault("address", ADDRESS)
    details.setdefault("phone", "8 912 345-67-89")
    return create_order(conversation, lines, **details)


@pytest.fixture
def stage_texts(db):
    """The texts the data migration seeds (a transactional test elsewhere may have flushed them)."""
    importlib.import_module("orders.migrations.0002_seed_stage_texts").seed(apps, None)


@pytest.fixture
def worker(monkeypatch):
    """Queued tasks run at once."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def pushed_order(portal, conversation, caviar):
    """Two packs of caviar ordered and pushed to the stub portal as a deal."""
    from orders.models import Order
    from orders.push import push

    order = place_order(conversation, [(caviar, 2)])
    push(order.pk)
    return Order.objects.get(pk=order.pk)
