"""GET /api/orders/ and /api/orders/<number>/ for staff and the API token; errors as JSON, never a 500."""

import pytest
from django.contrib.auth import get_user_model

from orders.models import Order
from tests.orders.conftest import place_order

pytestmark = pytest.mark.django_db

TOKEN = "orders-api-token-for-tests"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.API_TOKEN = TOKEN


@pytest.fixture
def order(conversation, caviar):
    return place_order(conversation, [(caviar, 2)], desired_time="завтра к 10")


def test_the_list_gives_orders_with_their_customer_and_lines(client, order):
    response = client.get("/api/orders/", **AUTH)

    assert response.status_code == 200
    (found,) = response.json()["results"]
    assert (found["number"], found["state"], found["total"]) == (order.number, "new", "1480.00")
    assert found["customer"]["phone"] == "+79123456789"
    assert [(line["title"], line["quantity"]) for line in found["lines"]] == [("Икра кеты", 2)]


def test_the_list_is_newest_first_and_counts_them_all(client, conversation, caviar):
    first = place_order(conversation, [(caviar, 2)])
    second = place_order(conversation, [(caviar, 2)])

    body = client.get("/api/orders/?limit=1", **AUTH).json()

    assert body["count"] == 2
    assert [o["number"] for o in body["results"]] == [second.number]
    assert client.get("/api/orders/?limit=1&offset=1", **AUTH).json()["results"][0]["number"] == first.number


def test_the_list_filters_by_state(client, order):
    Order.objects.filter(pk=order.pk).update(state=Order.State.PAID)

    assert client.get("/api/orders/?state=new", **AUTH).json()["count"] == 0
    assert client.get("/api/orders/?state=paid", **AUTH).json()["count"] == 1


@pytest.mark.parametrize("query", ["state=lost", "limit=0", "limit=101", "limit=", "offset=-1", "limit=abc"])
def test_bad_list_parameters_are_400_naming_them(client, order, query):
    response = client.get(f"/api/orders/?{query}", **AUTH)

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["fields"]


def test_an_order_by_its_number(client, order):
    response = client.get(f"/api/orders/{order.number}/", **AUTH)

    assert response.status_code == 200
    body = response.json()
    assert (body["desired_time"], body["push_state"], body["crm_deal_url"]) == ("завтра к 10", "off", None)


@pytest.mark.parametrize("number", [999, 2_147_483_648, 10**30])
def test_no_such_order_is_404(client, order, number):
    response = client.get(f"/api/orders/{number}/", **AUTH)

    assert response.status_code == 404
    assert response.json()["error"]


def test_without_credentials_it_is_401(client, order):
    response = client.get("/api/orders/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_wrong_token_is_401(client, order):
    assert client.get(f"/api/orders/{order.number}/", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_a_signed_in_user_who_is_not_staff_is_403(client, order):
    user = get_user_model().objects.create_user("buyer", password="a-long-password-1")
    client.force_login(user)

    assert client.get("/api/orders/").status_code == 403


def test_staff_signed_in_may_read_orders(admin_client, order):
    assert admin_client.get(f"/api/orders/{order.number}/").status_code == 200


def test_the_orders_api_is_in_the_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    assert {"/api/orders/", "/api/orders/{number}/"} <= set(paths)
