"""A deal's product rows refer to the portal's own products when the catalog was imported from Bitrix24."""

import pytest

from catalog.models import Source
from orders.models import Order
from orders.push import push
from tests.factories import make_product
from tests.orders.conftest import place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def crab(db):
    """A product imported from the portal's catalog: its external id is the Bitrix24 product id."""
    return make_product("Краб камчатский, фаланги", price=3900, quantity=4, source=Source.BITRIX24, external_id="1245")


def sent_rows(portal) -> list[dict]:
    (params,) = [params for method, params in portal.calls if method == "crm.item.productrow.set"]
    return params["productRows"]


def test_a_bitrix24_product_goes_to_the_deal_with_its_product_id(portal, conversation, crab, caviar):
    order = place_order(conversation, [(crab, 1), (caviar, 1)])

    assert push(order.pk) == Order.PushState.PUSHED

    rows = {row["productName"]: row for row in sent_rows(portal)}
    assert rows["Краб камчатский, фаланги"]["productId"] == 1245
    # A product of another source (and the delivery) stays a row by name only.
    assert "productId" not in rows["Икра кеты (100 г)"]
    assert "productId" not in rows["Доставка"]
    order.refresh_from_db()
    stored = {row["productName"]: row["productId"] for row in portal.rows[order.crm_deal_id]}
    assert stored["Краб камчатский, фаланги"] == 1245


def test_a_line_whose_product_was_deleted_is_sent_by_name(portal, conversation, crab):
    order = place_order(conversation, [(crab, 1)])
    crab.delete()

    push(order.pk)

    assert all("productId" not in row for row in sent_rows(portal))
