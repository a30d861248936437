"""An order into Bitrix24 CRM exactly once, against a stub portal that keeps its deals (tests/orders/bitrix24_stub.py).

Bitrix24 has no idempotency key: a retried task, an add whose answer was lost
after Bitrix24 committed it, and two workers at once must each leave one deal.
"""

import logging
import threading

import pytest
from django.db import OperationalError, connection
from django_q.conf import Conf
from django_q.models import Schedule

from conversations.models import Channel, Message
from conversations.services import record_incoming
from orders import tasks
from orders.models import Order
from orders.push import push
from tests.factories import make_conversation, make_message
from tests.orders.conftest import WEBHOOK_SECRET, place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(portal, conversation, caviar, shrimp):
    """An order queued for Bitrix24 (its push task not run yet)."""
    make_message(conversation, "Хочу икру кеты, 2 банки")
    return place_order(conversation, [(caviar, 2), (shrimp, 1)], desired_time="завтра после 18", comment="Домофон 12")


def pushed(order) -> Order:
    push(order.pk)
    return Order.objects.get(pk=order.pk)


# One push ---------------------------------------------------------------------------


def test_an_order_becomes_one_deal_with_our_origin(portal, order):
    order = pushed(order)

    (deal,) = portal.deals.values()
    assert (deal["ORIGINATOR_ID"], deal["ORIGIN_ID"]) == ("storebot", str(order.uid))
    assert deal["TITLE"] == f"Заказ №{order.number}"
    assert order.push_state == Order.PushState.PUSHED


def test_the_deal_is_linked_from_the_order(portal, order):
    order = pushed(order)

    assert order.crm_deal_url == f"https://{order.crm_domain}/crm/deal/details/{order.crm_deal_id}/"
    assert order.crm_deal_id in portal.deals


def test_the_deal_gets_the_orders_total_and_details(portal, order):
    order = pushed(order)

    deal = portal.deal(order.crm_deal_id)
    assert deal["OPPORTUNITY"] == "3670.00"
    assert "Москва, ул. Лесная, 5" in deal["ADDITIONAL_INFO"]
    assert "завтра после 18" in deal["ADDITIONAL_INFO"]


def test_the_deal_gets_a_row_per_line_and_one_for_delivery(portal, order):
    order = pushed(order)

    rows = [(r["productName"], r["price"], r["quantity"]) for r in portal.rows[order.crm_deal_id]]
    assert rows == [
        ("Икра кеты (100 г)", 590.0, 2),
        ("Креветки тигровые 16/20 (1 кг)", 2190.0, 1),
        ("Доставка", 300.0, 1),
    ]


def test_a_new_contact_is_made_with_the_customers_phone(portal, order):
    order = pushed(order)

    (contact,) = portal.contacts.values()
    assert contact["PHONE"][0]["VALUE"] == "+79123456789"
    assert portal.deal(order.crm_deal_id)["CONTACT_ID"] == contact["ID"]


def test_a_contact_with_the_phone_already_is_used(portal, order):
    existing = portal.add_contact(name="Анна Петрова", phone="8 (912) 345-67-89")

    order = pushed(order)

    assert order.crm_contact_id == existing
    assert portal.called("crm.contact.add") == 0


def test_the_chat_goes_to_the_deals_timeline(portal, order):
    order = pushed(order)

    (comment,) = portal.comments.values()
    assert (comment["ENTITY_TYPE"], str(comment["ENTITY_ID"])) == ("deal", order.crm_deal_id)
    assert "Клиент: Хочу икру кеты, 2 банки" in comment["COMMENT"]
    assert order.crm_comment_id == comment["ID"]


def test_the_deals_first_stage_is_recorded_without_telling_the_customer(portal, order):
    order = pushed(order)

    assert order.crm_stage_id == "NEW"
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


def test_with_crm_off_nothing_is_sent(settings, portal, order):
    settings.B24_CRM_ORDERS = False

    push(order.pk)

    assert portal.calls == []


def test_an_order_made_with_crm_off_is_not_sent_later(portal, conversation, caviar, settings):
    settings.B24_CRM_ORDERS = False
    order = place_order(conversation, [(caviar, 2)])
    settings.B24_CRM_ORDERS = True

    push(order.pk)

    assert portal.calls == []


def test_a_new_order_is_pushed_by_the_worker(
    portal, conversation, caviar, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", True)

    with django_capture_on_commit_callbacks(execute=True):
        order = place_order(conversation, [(caviar, 2)])

    order.refresh_from_db()
    assert order.push_state == Order.PushState.PUSHED
    assert len(portal.deals) == 1


# Exactly once -----------------------------------------------------------------------


def test_a_task_run_twice_leaves_one_deal(portal, order):
    tasks.push_order(order.pk)
    tasks.push_order(order.pk)

    assert len(portal.deals) == 1
    assert portal.called("crm.deal.add") == 1


def test_a_deal_committed_before_its_answer_was_lost_is_not_made_again(portal, order):
    portal.timeout_after("crm.deal.add")

    order = pushed(order)

    assert len(portal.deals) == 1
    assert order.push_state == Order.PushState.PUSHED


def test_a_lost_add_that_cannot_be_looked_up_at_once_is_found_by_the_retry(portal, order):
    portal.timeout_after("crm.deal.add")
    portal.refuse("crm.deal.list", skip=1)  # the lookup right after the lost add

    assert tasks.push_order(order.pk) == Order.PushState.PENDING
    assert tasks.push_order(order.pk) == Order.PushState.PUSHED

    assert len(portal.deals) == 1
    assert portal.called("crm.deal.add") == 1


def test_a_retry_after_the_database_lost_the_deal_id_uses_the_deal_it_made(portal, order):
    class LosesTheDealId:
        """The database goes away as the deal's id is saved: the transaction and its progress are lost."""

        def __call__(self, execute, sql, params, many, context):
            if sql.startswith("UPDATE") and '"crm_deal_id"' in sql:
                raise OperationalError("server closed the connection unexpectedly")
            return execute(sql, params, many, context)

    with pytest.raises(OperationalError), connection.execute_wrapper(LosesTheDealId()):
        push(order.pk)
    assert Order.objects.get(pk=order.pk).crm_deal_id == ""

    order = pushed(order)

    assert len(portal.deals) == 1
    assert order.crm_deal_id in portal.deals


def test_a_deal_left_by_a_worker_that_died_is_taken_up(portal, order):
    # A worker added the deal and died before saving anything.
    made = portal.add_deal(TITLE="Заказ", ORIGINATOR_ID="storebot", ORIGIN_ID=str(order.uid))

    order = pushed(order)

    assert order.crm_deal_id == made
    assert portal.called("crm.deal.add") == 0


def test_a_failed_step_is_retried_without_repeating_the_steps_before(portal, order):
    portal.refuse("crm.item.productrow.set")

    assert tasks.push_order(order.pk) == Order.PushState.PENDING
    assert tasks.push_order(order.pk) == Order.PushState.PUSHED

    assert (len(portal.contacts), len(portal.deals), len(portal.comments)) == (1, 1, 1)
    assert portal.called("crm.deal.add") == 1


def test_a_comment_whose_answer_was_lost_is_not_added_again(portal, order):
    portal.timeout_after("crm.timeline.comment.add")
    portal.refuse("crm.timeline.comment.list")  # the lookup right after the lost add

    assert tasks.push_order(order.pk) == Order.PushState.PENDING
    assert tasks.push_order(order.pk) == Order.PushState.PUSHED

    assert len(portal.comments) == 1


def test_a_contact_whose_answer_was_lost_is_found_by_phone(portal, order):
    portal.timeout_after("crm.contact.add")

    order = pushed(order)

    assert len(portal.contacts) == 1
    assert order.push_state == Order.PushState.PUSHED


@pytest.mark.django_db(transaction=True)
def test_two_workers_retrying_at_once_leave_one_deal(postgres_only, portal, conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])
    # A first try got the contact, then Bitrix24 refused the deal: the scheduled retry
    # and the pull's requeue may now run at once.
    portal.refuse("crm.deal.add")
    assert push(order.pk) == Order.PushState.PENDING
    # Both would look for the deal, find none and add one, were they not one at a time.
    portal.slow("crm.deal.list", 0.3)
    start = threading.Barrier(2)
    results = []

    def worker():
        start.wait()
        try:
            results.append(push(order.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [Order.PushState.PUSHED, Order.PushState.PUSHED]
    assert len(portal.deals) == 1
    assert len(portal.comments) == 1


# Failures ---------------------------------------------------------------------------


def test_a_refusal_for_now_is_retried_later_by_a_schedule(portal, order):
    portal.refuse("crm.deal.add")

    tasks.push_order(order.pk)

    order.refresh_from_db()
    assert order.push_state == Order.PushState.PENDING
    assert "OPERATION_TIME_LIMIT" in order.push_error
    retry = Schedule.objects.get(func="orders.tasks.push_order")
    assert retry.next_run >= order.push_retry_at


def test_a_permanent_refusal_shows_the_order_as_failed(portal, order):
    portal.refuse("crm.deal.add", code="ACCESS_DENIED", status=403)

    assert tasks.push_order(order.pk) == Order.PushState.FAILED

    order.refresh_from_db()
    assert "ACCESS_DENIED" in order.push_error
    assert not Schedule.objects.filter(func="orders.tasks.push_order").exists()


def test_retries_stop_after_the_last_attempt(portal, order, settings):
    settings.ORDER_PUSH_MAX_ATTEMPTS = 2
    portal.refuse("crm.deal.add", times=2)

    tasks.push_order(order.pk)
    assert tasks.push_order(order.pk) == Order.PushState.FAILED


def test_no_portal_configured_fails_the_push_saying_so(settings, portal, order):
    settings.B24_WEBHOOK_URL = ""

    assert push(order.pk) == Order.PushState.FAILED
    order.refresh_from_db()
    assert "NOT_CONFIGURED" in order.push_error


def test_the_webhook_secret_is_in_no_error_or_log(portal, order, caplog):
    portal.timeout_before("crm.duplicate.findbycomm", times=3)
    caplog.set_level(logging.DEBUG)

    push(order.pk)

    order.refresh_from_db()
    assert order.push_error
    assert WEBHOOK_SECRET not in order.push_error
    assert WEBHOOK_SECRET not in caplog.text


# An Open Lines chat linked to CRM ----------------------------------------------------


def open_lines_chat(portal, *, deal_fields=None):
    contact = portal.add_contact(name="Мария Котова", phone="+79995554433")
    deal = portal.add_deal(TITLE="Открытая линия", CONTACT_IDS=[int(contact)], **(deal_fields or {}))
    conversation = make_conversation(
        Channel.BITRIX24,
        customer_external_id="2045",
        channel_data={"member_id": "m-1", "chat_entity_type": "LINES", "chat_id": "2801"},
    )
    record_incoming(
        conversation=conversation,
        text="Хочу заказать",
        external_id="m-1:1",
        raw_payload={"data": {"PARAMS": {"CHAT_ENTITY_DATA_2": f"LEAD|0|COMPANY|0|CONTACT|{contact}|DEAL|{deal}"}}},
    )
    return conversation, contact, deal


def test_the_deal_of_an_open_lines_chat_is_used(portal, caviar):
    conversation, contact, deal = open_lines_chat(portal)
    order = pushed(place_order(conversation, [(caviar, 2)]))

    assert (order.crm_deal_id, order.crm_contact_id) == (deal, contact)
    assert len(portal.deals) == 1
    assert portal.deal(deal)["ORIGIN_ID"] == str(order.uid)


def test_a_chat_deal_another_order_has_is_not_used_again(portal, caviar):
    conversation, _contact, deal = open_lines_chat(portal)
    pushed(place_order(conversation, [(caviar, 2)]))

    second = pushed(place_order(conversation, [(caviar, 2)]))

    assert second.crm_deal_id != deal
    assert len(portal.deals) == 2


def test_a_closed_chat_deal_is_not_used(portal, caviar):
    conversation, _contact, deal = open_lines_chat(
        portal, deal_fields={"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "CLOSED": "Y"}
    )

    order = pushed(place_order(conversation, [(caviar, 2)]))

    assert order.crm_deal_id != deal


def test_the_portal_of_a_bitrix24_dialog_is_asked(portal, caviar):
    conversation, _contact, _deal = open_lines_chat(portal)

    order = pushed(place_order(conversation, [(caviar, 2)]))

    # No app installed for member m-1: the webhook's portal, as the chat bot does.
    assert order.crm_domain == portal.endpoint.split("/")[2]


def test_an_order_from_a_portal_the_app_is_installed_on_goes_to_that_portal(portal, settings, caviar):
    from integrations.bitrix24.models import Portal

    installed = Portal.objects.create(
        member_id="m-1", domain="seafood-shop.bitrix24.ru", client_endpoint=portal.endpoint, access_token="app-t0ken"
    )
    settings.B24_WEBHOOK_URL = ""
    conversation = make_conversation(Channel.BITRIX24, customer_external_id="2045", channel_data={"member_id": "m-1"})

    order = pushed(place_order(conversation, [(caviar, 2)]))

    assert (order.crm_member_id, order.crm_domain) == ("m-1", installed.domain)
    assert order.crm_deal_url.startswith("https://seafood-shop.bitrix24.ru/crm/deal/details/")
    assert all(params.get("auth") == "app-t0ken" for _method, params in portal.calls)
