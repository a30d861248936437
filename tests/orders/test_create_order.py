"""An order from a dialog: prices and stock of this moment, totals, delivery, the minimum, a human number."""

import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from catalog.models import Product
from orders.models import Customer, Order, OrderLine
from orders.services import OrderChanged, OrderError, create_order
from tests.factories import make_conversation, make_product
from tests.orders.conftest import ADDRESS, place_order

pytestmark = pytest.mark.django_db


def test_an_order_keeps_what_was_bought_at_its_price(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])

    line = order.lines.get()
    assert (line.title, line.pack, line.quantity, line.unit_price, line.line_total) == (
        "Икра кеты",
        "100 г",
        2,
        Decimal("590.00"),
        Decimal("1180.00"),
    )


def test_an_order_line_keeps_its_price_when_the_catalog_changes(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])

    Product.objects.filter(pk=caviar.pk).update(price=990)

    assert order.lines.get().unit_price == Decimal("590.00")


def test_orders_are_numbered_from_1001_in_turn(conversation, caviar):
    first = place_order(conversation, [(caviar, 2)])
    second = place_order(conversation, [(caviar, 2)])

    assert (first.number, second.number) == (1001, 1002)


def test_an_order_is_of_its_dialog_customer_and_channel(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])

    assert order.conversation == conversation
    assert order.channel == "telegram"
    assert order.customer.phone == "+79123456789"


def test_delivery_is_added_to_the_total(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])

    assert (order.items_total, order.delivery_cost, order.total) == (
        Decimal("1180.00"),
        Decimal("300"),
        Decimal("1480.00"),
    )


def test_delivery_is_free_from_the_threshold(conversation, shrimp):
    order = place_order(conversation, [(shrimp, 3)])

    assert order.delivery_cost == 0
    assert order.total == Decimal("6570.00")


def test_pickup_has_no_delivery_cost_and_needs_no_address(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)], fulfilment="pickup", address="")

    assert order.delivery_cost == 0
    assert order.address == ""


def test_an_order_below_the_minimum_is_refused_saying_the_minimum(conversation, caviar):
    with pytest.raises(OrderError) as refused:
        place_order(conversation, [(caviar, 1)])

    assert "1 000" in str(refused.value)
    assert not Order.objects.exists()


def test_a_changed_price_is_reported_and_nothing_ordered(conversation, caviar):
    shown = Product.objects.get(pk=caviar.pk)
    Product.objects.filter(pk=caviar.pk).update(price=650)

    with pytest.raises(OrderChanged) as changed:
        place_order(conversation, [(shown, 2)])

    (change,) = changed.value.price_changes
    assert (change.title, change.old_price, change.new_price) == ("Икра кеты", Decimal("590.00"), Decimal("650.00"))
    assert not Order.objects.exists()


def test_a_product_sold_out_meanwhile_is_reported(conversation, caviar, shrimp):
    Product.objects.filter(pk=shrimp.pk).update(quantity=0)

    with pytest.raises(OrderChanged) as changed:
        place_order(conversation, [(caviar, 2), (shrimp, 1)])

    assert [(s.title, s.available) for s in changed.value.shortages] == [("Креветки тигровые 16/20", 0)]


def test_too_few_left_is_reported_with_what_is_left(conversation, shrimp):
    with pytest.raises(OrderChanged) as changed:
        place_order(conversation, [(shrimp, 5)])

    (shortage,) = changed.value.shortages
    assert (shortage.wanted, shortage.available) == (5, 3)


def test_the_report_lists_every_change_in_words(conversation, caviar, shrimp):
    shown = Product.objects.get(pk=caviar.pk)
    Product.objects.filter(pk=caviar.pk).update(price=650)
    Product.objects.filter(pk=shrimp.pk).update(is_available=False)

    with pytest.raises(OrderChanged) as changed:
        place_order(conversation, [(shown, 2), (shrimp, 1)])

    text = str(changed.value)
    assert "Икра кеты" in text and "590" in text and "650" in text
    assert "Креветки тигровые 16/20" in text


def test_a_product_without_stock_tracking_can_be_ordered(conversation):
    untracked = make_product("Краб камчатский", price=3500, quantity=None)

    order = place_order(conversation, [(untracked, 1)])

    assert order.lines.get().title == "Краб камчатский"


def test_the_same_product_twice_is_one_line(conversation, caviar):
    order = place_order(conversation, [(caviar, 1), (caviar, 1)])

    assert order.lines.get().quantity == 2


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True, 1000])
def test_a_quantity_that_is_not_a_whole_number_in_range_is_refused(conversation, caviar, quantity):
    with pytest.raises(OrderError):
        place_order(conversation, [(caviar, quantity)])


def test_an_order_without_products_is_refused(conversation):
    with pytest.raises(OrderError):
        place_order(conversation, [])


def test_a_delivery_without_an_address_is_refused(conversation, caviar):
    with pytest.raises(OrderError):
        place_order(conversation, [(caviar, 2)], address="  ")


def test_an_order_needs_a_phone(conversation, caviar):
    with pytest.raises(OrderError) as refused:
        create_order(conversation, [(caviar, 2)], address=ADDRESS)

    assert "phone" in str(refused.value).lower() or "телефон" in str(refused.value).lower()


@pytest.mark.parametrize("details", [{"payment": "crypto"}, {"fulfilment": "drone"}])
def test_an_unknown_payment_or_fulfilment_is_refused(conversation, caviar, details):
    with pytest.raises(OrderError):
        place_order(conversation, [(caviar, 2)], **details)


def test_a_customer_who_gave_a_phone_before_needs_not_give_it_again(caviar):
    conversation = make_conversation("telegram", customer_external_id="42")
    place_order(conversation, [(caviar, 2)])

    again = create_order(conversation, [(caviar, 2)], address=ADDRESS)

    assert again.customer.phone == "+79123456789"


def test_with_crm_off_the_order_stays_here(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])

    assert order.push_state == Order.PushState.OFF


def test_a_delivery_order_cannot_be_stored_without_an_address(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])

    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(address="")


def test_a_line_cannot_have_no_quantity(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])

    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(order=order).update(quantity=0)


def test_a_phone_given_with_a_refused_order_is_kept(conversation, caviar):
    with pytest.raises(OrderError):
        place_order(conversation, [(caviar, 1)], phone="8 912 345-67-89")

    assert Customer.objects.get().phone == "+79123456789"


# One order per confirmation -------------------------------------------------------


def test_one_basket_confirmed_twice_makes_one_order(conversation, caviar):
    first = place_order(conversation, [(caviar, 2)], basket_key="b1")

    again = place_order(conversation, [(caviar, 2)], basket_key="b1")

    assert again.pk == first.pk
    assert Order.objects.count() == 1


def test_another_basket_of_the_same_dialog_is_another_order(conversation, caviar):
    place_order(conversation, [(caviar, 2)], basket_key="b1")

    place_order(conversation, [(caviar, 2)], basket_key="b2")

    assert Order.objects.count() == 2


def test_the_same_basket_key_in_another_dialog_is_another_order(conversation, caviar):
    place_order(conversation, [(caviar, 2)], basket_key="b1")
    other = make_conversation("telegram", customer_external_id="5002")

    place_order(other, [(caviar, 2)], basket_key="b1")

    assert Order.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_confirming_one_basket_at_once_make_one_order(postgres_only, conversation, caviar):
    place_order(conversation, [(caviar, 2)])  # the customer and their phone exist already
    start = threading.Barrier(2)
    numbers = []

    def worker():
        start.wait()
        try:
            numbers.append(place_order(conversation, [(caviar, 2)], basket_key="b1").number)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(numbers) == 2 and numbers[0] == numbers[1]
    assert Order.objects.filter(basket_key="b1").count() == 1


def test_what_is_ordered_leaves_the_stock(conversation, caviar):
    place_order(conversation, [(caviar, 3)])

    caviar.refresh_from_db()
    assert caviar.quantity == 7


def test_the_last_packs_are_sold_once(conversation, caviar):
    Product.objects.filter(pk=caviar.pk).update(quantity=2)
    caviar.refresh_from_db()
    place_order(conversation, [(caviar, 2)])
    other = make_conversation("telegram", customer_external_id="5003")

    with pytest.raises(OrderChanged):
        place_order(other, [(caviar, 2)])


def test_a_product_without_a_known_stock_keeps_none(conversation, caviar):
    Product.objects.filter(pk=caviar.pk).update(quantity=None)
    caviar.refresh_from_db()

    place_order(conversation, [(caviar, 2)])

    caviar.refresh_from_db()
    assert caviar.quantity is None
