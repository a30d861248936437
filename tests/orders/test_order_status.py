"""One customer's orders and returns as the dialog reads them (orders.selectors), and an order's state in the
customer's words (bots.after_sale.status_text)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bots.after_sale import status_text
from conversations.channels import MediaFile
from conversations.models import Message
from conversations.services import record_incoming
from orders import returns, selectors
from orders.models import Order, ReturnRequest
from orders.services import customer_for
from tests.factories import make_conversation
from tests.orders.conftest import ADDRESS, place_order
from tests.orders.returns_support import JPEG, photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def stranger(db):
    return make_conversation("telegram", customer_external_id="9001", customer_name="Олег")


def in_state(order: Order, state: str) -> Order:
    Order.objects.filter(pk=order.pk).update(state=state)
    order.refresh_from_db()
    return order


def says(conversation, text="хочу вернуть", attachments=None) -> Message:
    message, _ = record_incoming(conversation=conversation, text=text, attachments=attachments)
    return message


def open_return(message, order, **options) -> ReturnRequest:
    options.setdefault("has_photos", False)
    return returns.open_request(
        conversation=message.conversation, message=message, order=order, lines=[], reason=message.text, **options
    )


# Orders ---------------------------------------------------------------------------


def test_an_order_number_finds_only_the_customers_own_order(conversation, stranger, caviar):
    mine = place_order(conversation, [(caviar, 2)])
    theirs = place_order(stranger, [(caviar, 2)], phone="+79990001122")
    customer = customer_for(conversation)

    assert selectors.customer_order(customer, mine.number) == mine
    assert selectors.customer_order(customer, theirs.number) is None


@pytest.mark.parametrize("number", [0, -5, 2**31, 10**12])
def test_a_number_no_order_can_have_finds_nothing(conversation, number):
    assert selectors.customer_order(customer_for(conversation), number) is None


def test_the_customers_orders_are_newest_first(conversation, caviar):
    older = place_order(conversation, [(caviar, 2)])
    newer = place_order(conversation, [(caviar, 3)])

    assert list(selectors.customer_orders(customer_for(conversation))) == [newer, older]


def test_the_order_to_return_is_the_latest_that_came(conversation, caviar):
    came = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    in_state(place_order(conversation, [(caviar, 3)]), Order.State.PREPARING)

    assert selectors.returnable_order(customer_for(conversation)) == came


@pytest.mark.parametrize(
    ("state", "returnable"),
    [
        (Order.State.NEW, False),
        (Order.State.PAID, False),
        (Order.State.PREPARING, False),
        (Order.State.SHIPPED, True),
        (Order.State.DELIVERED, True),
        (Order.State.WON, True),
        (Order.State.CANCELLED, False),
    ],
)
def test_goods_that_came_or_are_on_their_way_can_be_returned(conversation, caviar, state, returnable):
    order = in_state(place_order(conversation, [(caviar, 2)]), state)

    assert selectors.returnable_order(customer_for(conversation)) == (order if returnable else None)


# Returns of a dialog -------------------------------------------------------------------


def test_a_request_waiting_for_photos_is_the_dialogs(conversation, caviar):
    order = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    request = open_return(says(conversation), order)

    done, waiting = selectors.dialog_returns(says(conversation, text=""))

    assert (done, waiting) == (None, request)


def test_a_request_waiting_too_long_takes_no_more_pictures(conversation, caviar):
    order = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    request = open_return(says(conversation), order)
    ReturnRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - selectors.PHOTO_WAIT * 2)

    assert selectors.dialog_returns(says(conversation, text="")) == (None, None)


def test_another_dialogs_request_is_not_waiting_here(conversation, stranger, caviar):
    order = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    open_return(says(conversation), order)

    assert selectors.dialog_returns(says(stranger, text="")) == (None, None)


def test_a_picture_only_message_goes_to_the_assistant_while_a_request_waits(conversation, caviar):
    order = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    picture = says(conversation, text="", attachments=[photo()])
    assert not selectors.awaits_return_photos(picture)

    open_return(says(conversation), order)

    assert selectors.awaits_return_photos(picture)


def test_the_message_that_sent_the_photos_still_reaches_its_request_on_a_retry(conversation, caviar):
    order = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    request = open_return(says(conversation), order)
    picture = says(conversation, text="", attachments=[photo()])
    returns.submit(request=request, message=picture)

    assert selectors.awaits_return_photos(picture)
    assert selectors.dialog_returns(picture)[0] == request


def test_pictures_sent_shortly_before_are_found(conversation):
    old = says(conversation, text="", attachments=[photo("old")])
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    recent = says(conversation, text="", attachments=[photo("new")])
    says(conversation, text="и ещё")
    complaint = says(conversation, text="икра протухла")

    assert selectors.recent_pictures(complaint, within=timedelta(minutes=30)) == [recent]


def test_pictures_kept_for_a_return_are_not_found_again(conversation, caviar, locmem_channels, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    locmem_channels.media["new"] = MediaFile(JPEG, "x.jpg", "image/jpeg")
    order = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    recent = says(conversation, text="", attachments=[photo("new")])
    complaint = says(conversation, text="икра протухла")
    returns.keep_photos(open_return(complaint, order, has_photos=True), recent)

    assert selectors.recent_pictures(says(conversation, text="и ещё одна жалоба"), within=timedelta(minutes=30)) == []


def test_the_latest_return_is_the_customers_own(conversation, stranger, caviar):
    mine = in_state(place_order(conversation, [(caviar, 2)]), Order.State.DELIVERED)
    theirs = in_state(place_order(stranger, [(caviar, 2)], phone="+79990001122"), Order.State.DELIVERED)
    request = open_return(says(conversation), mine)
    open_return(says(stranger), theirs)

    assert selectors.latest_return(customer_for(conversation)) == request


# An order's state in words ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (Order.State.NEW, ["принят", "Ждём оплату", "менеджер свяжется"]),
        (Order.State.PAID, ["оплачен", "скоро начнём собирать"]),
        (Order.State.PREPARING, ["собираем", "передадим его курьеру"]),
        (Order.State.SHIPPED, ["передан курьеру, курьер в пути"]),
        (Order.State.DELIVERED, ["доставлен", "поможем с заменой или возвратом"]),
        (Order.State.WON, ["выполнен"]),
        (Order.State.CANCELLED, ["отменён"]),
    ],
)
def test_each_state_says_where_the_order_is_and_what_comes_next(conversation, caviar, state, words):
    text = status_text(in_state(place_order(conversation, [(caviar, 2)]), state))

    assert all(word in text for word in words)


def test_the_status_names_the_goods_the_total_and_where_it_goes(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)], desired_time="завтра после 18")

    text = status_text(order)

    assert f"Заказ №{order.number} от " in text
    assert "Икра кеты × 2. Итого 1 480 ₽." in text
    assert f"Доставка: {ADDRESS}, завтра после 18." in text


def test_a_pickup_order_ready_waits_at_the_pickup_point(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)], fulfilment=Order.Fulfilment.PICKUP, address="")

    text = status_text(in_state(order, Order.State.SHIPPED))

    assert "пункте самовывоза" in text
    assert "Доставка:" not in text
