"""Orders and customers in admin: the lists, search by phone and number, the order page, state changes, CSV."""

import csv
import io

import pytest
from django.urls import reverse

from conversations.models import Channel, Message
from orders.models import Order, OrderStageText
from orders.push import push
from tests.factories import make_conversation
from tests.orders.conftest import place_order

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stage_texts")]

LIST = reverse("admin:orders_order_changelist")


@pytest.fixture
def order(conversation, caviar):
    return place_order(conversation, [(caviar, 2)], comment='=HYPERLINK("http://evil")')


def page(admin_client, url) -> str:
    response = admin_client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def change_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def test_the_list_shows_number_customer_total_state_and_push_state(admin_client, order):
    html = page(admin_client, LIST)

    assert str(order.number) in html
    assert "Анна" in html
    assert "1480" in html
    assert order.get_state_display() in html
    assert order.get_push_state_display() in html


@pytest.mark.parametrize("term", ["8 (912) 345-67-89", "+79123456789", "345-67-89", "1001", "№1001", "Анна"])
def test_an_order_is_found_by_phone_number_or_name(admin_client, order, conversation, caviar, term):
    other = make_conversation("telegram", customer_external_id="9", customer_name="Олег")
    place_order(other, [(caviar, 2)], phone="+79990001122")

    html = page(admin_client, f"{LIST}?q={term}")

    assert f">{order.number}<" in html
    assert "Олег" not in html


def test_a_search_that_matches_nothing_finds_nothing(admin_client, order):
    assert f">{order.number}<" not in page(admin_client, f"{LIST}?q=zzz")


def test_the_list_filters_by_push_state(admin_client, order):
    assert f">{order.number}<" not in page(admin_client, f"{LIST}?push_state__exact=failed")
    assert f">{order.number}<" in page(admin_client, f"{LIST}?push_state__exact=off")


def test_the_order_page_shows_its_lines_and_links_the_dialog(admin_client, order, conversation):
    html = page(admin_client, change_url(order))

    assert "Икра кеты" in html
    assert reverse("admin:conversations_conversation_change", args=[conversation.pk]) in html


def test_the_order_page_links_the_deal_in_bitrix24(admin_client, portal, order):
    push(order.pk)
    order.refresh_from_db()

    assert order.crm_deal_url in page(admin_client, change_url(order))


def test_the_order_page_shows_a_failed_push_and_why(admin_client, portal, order):
    portal.refuse("crm.deal.add", code="ACCESS_DENIED", status=403)
    push(order.pk)

    html = page(admin_client, change_url(order))

    assert "ACCESS_DENIED" in html


def change_state(admin_client, order, state):
    return admin_client.post(change_url(order), {"state": state, "_save": "1", **inline_management()}, follow=True)


def inline_management() -> dict:
    # The inlines' management forms, as the page posts them.
    data = {}
    for prefix in ("lines", "changes"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "0"})
    return data


def test_staff_change_the_state_and_the_customer_is_told(admin_client, order, conversation):
    response = change_state(admin_client, order, Order.State.PAID)

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    told = Message.objects.filter(conversation=conversation, direction=Message.Direction.OUT)
    assert list(told.values_list("text", flat=True)) == ["Оплата получена"]
    assert "Оплата получена" in response.content.decode()


def test_saving_the_page_unchanged_tells_nothing(admin_client, order, conversation):
    change_state(admin_client, order, Order.State.NEW)

    assert not Message.objects.filter(conversation=conversation, direction=Message.Direction.OUT).exists()


def test_orders_are_not_made_in_admin(admin_client):
    assert admin_client.get(reverse("admin:orders_order_add")).status_code == 403


def test_selected_orders_export_to_csv(admin_client, order):
    response = admin_client.post(LIST, {"action": "export_csv", "_selected_action": [order.pk]})

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 2
    header, row = rows
    assert row[header.index("номер")] == str(order.number)
    assert row[header.index("телефон")] == "'+79123456789"


def test_a_customers_text_does_not_run_as_a_formula_in_the_export(admin_client, order):
    response = admin_client.post(LIST, {"action": "export_csv", "_selected_action": [order.pk]})

    header, row = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert row[header.index("комментарий")].startswith("'=")


def test_a_failed_order_is_sent_again_from_the_list(admin_client, portal, order, monkeypatch):
    from django_q.conf import Conf

    portal.refuse("crm.deal.add", code="ACCESS_DENIED", status=403)
    push(order.pk)
    monkeypatch.setattr(Conf, "SYNC", True)

    admin_client.post(LIST, {"action": "push_again", "_selected_action": [order.pk]})

    order.refresh_from_db()
    assert order.push_state == Order.PushState.PUSHED
    assert len(portal.deals) == 1


def test_the_customers_list_counts_their_orders(admin_client, order):
    html = page(admin_client, reverse("admin:orders_customer_changelist"))

    assert "Анна" in html
    assert "+79123456789" in html


def test_a_customer_is_found_by_phone_written_otherwise(admin_client, order):
    html = page(admin_client, reverse("admin:orders_customer_changelist") + "?q=8 912 345 67 89")

    assert "Анна" in html


def test_the_customer_page_lists_their_orders_and_channels(admin_client, order, caviar):
    bitrix = make_conversation(Channel.BITRIX24, customer_external_id="77")
    place_order(bitrix, [(caviar, 2)])

    html = page(admin_client, reverse("admin:orders_customer_change", args=[order.customer_id]))

    assert f"№{order.number}" in html
    assert f"№{order.number + 1}" in html
    assert "Bitrix24" in html and "Telegram" in html


def test_the_customer_page_links_their_dialogs_in_every_channel(admin_client, order, caviar):
    bitrix = make_conversation(Channel.BITRIX24, customer_external_id="77")
    place_order(bitrix, [(caviar, 2)])
    stranger = make_conversation("telegram", customer_external_id="9999")

    html = page(admin_client, reverse("admin:orders_customer_change", args=[order.customer_id]))

    assert reverse("admin:conversations_conversation_change", args=[order.conversation_id]) in html
    assert reverse("admin:conversations_conversation_change", args=[bitrix.pk]) in html
    assert reverse("admin:conversations_conversation_change", args=[stranger.pk]) not in html


def test_stage_texts_are_edited_in_admin(admin_client):
    row = OrderStageText.objects.get(stage_id="PREPARATION")

    admin_client.post(
        reverse("admin:orders_orderstagetext_change", args=[row.pk]),
        {"stage_id": "PREPARATION", "state": "preparing", "text": "Собираем ваш заказ №{number}"},
    )

    row.refresh_from_db()
    assert row.text == "Собираем ваш заказ №{number}"
