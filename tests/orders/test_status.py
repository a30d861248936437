"""A deal's stage back to the customer: in Russian, in the channel the order came from, once per change."""

import pytest

from conversations.models import Message
from orders import tasks
from orders.models import Order, OrderChange, OrderStageText
from orders.push import apply_deal, sync_deal
from orders.services import set_state
from tests.orders.conftest import place_order

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stage_texts")]


@pytest.fixture
def order(pushed_order):
    return pushed_order


def told(conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, direction=Message.Direction.OUT).values_list(
            "text", flat=True
        )
    )


def test_a_new_stage_tells_the_customer_its_text(portal, order, conversation):
    portal.move(order.crm_deal_id, "PREPARATION")

    sync_deal(order.pk)

    assert told(conversation) == ["Собираем заказ"]


def test_the_order_takes_the_stages_state(portal, order):
    portal.move(order.crm_deal_id, "EXECUTING")

    sync_deal(order.pk)

    order.refresh_from_db()
    assert (order.state, order.crm_stage_id) == (Order.State.SHIPPED, "EXECUTING")


def test_the_message_goes_out_in_the_orders_channel(
    portal, order, conversation, locmem_channels, worker, django_capture_on_commit_callbacks
):
    portal.move(order.crm_deal_id, "EXECUTING")

    with django_capture_on_commit_callbacks(execute=True):
        sync_deal(order.pk)

    (sent,) = locmem_channels.outbox
    assert (sent.channel, sent.dialog, sent.text) == ("telegram", conversation.external_id, "Курьер уже в пути")


def test_an_unchanged_stage_sends_nothing(portal, order, conversation):
    portal.move(order.crm_deal_id, "PREPARATION")
    sync_deal(order.pk)

    sync_deal(order.pk)

    assert told(conversation) == ["Собираем заказ"]


def test_the_first_stage_seen_at_the_push_sends_nothing(portal, order, conversation):
    sync_deal(order.pk)

    assert told(conversation) == []


def test_each_change_is_told_once_even_back_and_forth(portal, order, conversation):
    for stage in ["PREPARATION", "EXECUTING", "PREPARATION"]:
        portal.move(order.crm_deal_id, stage)
        sync_deal(order.pk)
        sync_deal(order.pk)

    assert told(conversation) == ["Собираем заказ", "Курьер уже в пути", "Собираем заказ"]


def test_a_stage_of_another_pipeline_uses_the_text_of_its_kind(portal, order, conversation):
    portal.move(order.crm_deal_id, "C1:PREPARATION")

    sync_deal(order.pk)

    assert told(conversation) == ["Собираем заказ"]


def test_a_won_deal_closes_the_order(portal, order, conversation):
    portal.move(order.crm_deal_id, "WON", semantic="S")

    sync_deal(order.pk)

    order.refresh_from_db()
    assert order.state == Order.State.WON
    assert told(conversation) == ["Заказ закрыт, спасибо!"]


def test_a_lost_deal_says_why_from_its_comment(portal, order, conversation):
    portal.move(order.crm_deal_id, "LOSE", semantic="F", comments="[B]Нет курьера[/B] на этот адрес")

    sync_deal(order.pk)

    assert told(conversation) == ["Заказ отменён.\nПричина: Нет курьера на этот адрес"]


def test_a_lost_deal_without_a_reason_says_so_plainly(portal, order, conversation):
    portal.move(order.crm_deal_id, "LOSE", semantic="F")

    sync_deal(order.pk)

    order.refresh_from_db()
    assert order.state == Order.State.CANCELLED
    assert told(conversation) == ["Заказ отменён."]


def test_a_final_stage_staff_added_is_told_by_its_kind(portal, order, conversation):
    portal.move(order.crm_deal_id, "C1:UC_7QX2", semantic="F")

    sync_deal(order.pk)

    assert told(conversation) == ["Заказ отменён."]


def test_a_stage_without_a_text_is_recorded_silently(portal, order, conversation):
    portal.move(order.crm_deal_id, "PREPAYMENT_INVOICE")

    sync_deal(order.pk)

    order.refresh_from_db()
    assert order.crm_stage_id == "PREPAYMENT_INVOICE"
    assert told(conversation) == []


def test_a_text_edited_in_admin_is_the_one_sent(portal, order, conversation):
    OrderStageText.objects.filter(stage_id="PREPARATION").update(text="Заказ №{number} собирают")
    portal.move(order.crm_deal_id, "PREPARATION")

    sync_deal(order.pk)

    assert told(conversation) == [f"Заказ №{order.number} собирают"]


def test_a_stage_change_is_kept_in_the_orders_history(portal, order):
    portal.move(order.crm_deal_id, "PREPARATION")

    sync_deal(order.pk)

    (change,) = OrderChange.objects.filter(order=order)
    assert (change.source, change.stage_id, change.state) == ("crm", "PREPARATION", "preparing")
    assert change.message.text == "Собираем заказ"


def test_an_order_whose_dialog_is_gone_changes_without_a_message(portal, order, conversation):
    Order.objects.filter(pk=order.pk).update(conversation=None)
    portal.move(order.crm_deal_id, "PREPARATION")

    sync_deal(order.pk)

    order.refresh_from_db()
    assert order.state == Order.State.PREPARING
    assert told(conversation) == []


def test_a_deal_of_another_order_is_not_applied(portal, order, conversation):
    from integrations.bitrix24.crm import Deal

    assert apply_deal(order, Deal(id="99999", stage_id="WON")) == "not this deal"
    assert told(conversation) == []


def test_a_deal_that_cannot_be_read_is_left_to_the_pull(portal, order, conversation):
    portal.refuse("crm.deal.get")

    assert tasks.sync_deal(order.pk) == "failed"
    assert told(conversation) == []


# The pull ----------------------------------------------------------------------------


def test_the_pull_tells_a_change_whose_event_was_missed(portal, order, conversation):
    portal.move(order.crm_deal_id, "EXECUTING")

    tasks.pull()

    assert told(conversation) == ["Курьер уже в пути"]


def test_the_pull_and_an_event_together_tell_once(portal, order, conversation):
    portal.move(order.crm_deal_id, "EXECUTING")

    sync_deal(order.pk)
    tasks.pull()

    assert told(conversation) == ["Курьер уже в пути"]


def test_the_pull_asks_only_for_our_deals_changed_lately(portal, order):
    tasks.pull()

    (list_params,) = [params for name, params in portal.calls if name == "crm.deal.list"][-1:]
    assert list_params["filter"]["=ORIGINATOR_ID"] == "storebot"
    assert ">DATE_MODIFY" in list_params["filter"]


def test_the_pull_queues_a_push_whose_task_was_lost(portal, conversation, caviar, worker):
    lost = place_order(conversation, [(caviar, 2)])  # its task never ran: no on_commit here
    Order.objects.filter(pk=lost.pk).update(created_at=lost.created_at.replace(year=lost.created_at.year - 1))

    tasks.pull()

    lost.refresh_from_db()
    assert lost.push_state == Order.PushState.PUSHED


def test_with_crm_off_the_pull_does_nothing(settings, portal, order):
    settings.B24_CRM_ORDERS = False
    calls_before = len(portal.calls)

    assert tasks.pull() == {"off": True}
    assert len(portal.calls) == calls_before


# Staff in admin -------------------------------------------------------------------------


def test_a_state_set_by_staff_is_told_to_the_customer(order, conversation):
    set_state(order=order, state=Order.State.PAID)

    assert told(conversation) == ["Оплата получена"]


def test_setting_the_same_state_again_tells_nothing(order, conversation):
    set_state(order=order, state=Order.State.DELIVERED)

    assert set_state(order=order, state=Order.State.DELIVERED) is None
    assert told(conversation) == ["Заказ доставлен"]
