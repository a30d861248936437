"""The dialog's basket (orders.basket): what it keeps, what it asks next, what a refresh reads."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from orders.basket import Basket, Step, load, next_step, priced, refresh
from orders.models import Customer


def test_a_basket_comes_back_as_it_was_stored(caviar, shrimp):
    basket = Basket()
    basket.add(caviar, 2)
    basket.add(shrimp, 1)
    basket.step, basket.address = Step.ADDRESS, "Москва"

    again = load({"basket": basket.as_json()})

    assert [(line.product, line.quantity, line.price) for line in again.lines] == [
        (caviar.pk, 2, Decimal("590")),
        (shrimp.pk, 1, Decimal("2190")),
    ]
    assert (again.step, again.address, again.key) == (Step.ADDRESS, "Москва", basket.key)


def test_a_basket_older_than_its_lifetime_is_empty(caviar, settings):
    basket = Basket(at=timezone.now() - timedelta(seconds=settings.ORDER_BASKET_TTL_S + 1))
    basket.add(caviar, 1)

    assert load({"basket": basket.as_json()}).is_empty


def test_a_stored_basket_of_another_shape_is_empty():
    assert load({"basket": {"lines": "?", "at": "yesterday"}}).is_empty


def test_each_basket_has_a_key_of_its_own(caviar):
    first, second = Basket(), Basket()
    first.add(caviar, 1)
    second.add(caviar, 1)

    assert first.key and second.key and first.key != second.key


def test_the_phone_is_asked_first_and_only_when_missing(db):
    basket = Basket()

    assert next_step(basket, Customer(phone="")) == Step.PHONE
    assert next_step(basket, Customer(phone="+79161234567")) == Step.FULFILMENT


def test_pickup_asks_no_address(db):
    basket = Basket(fulfilment="pickup")

    assert next_step(basket, Customer(phone="+79161234567")) == Step.TIME


def test_with_every_detail_the_confirmation_is_next(db):
    basket = Basket(fulfilment="delivery", address="Москва", desired_time="завтра", payment="cash", comment_asked=True)

    assert next_step(basket, Customer(phone="+79161234567")) == Step.CONFIRM


def test_a_refresh_takes_the_catalogs_price_and_says_it_changed(caviar):
    basket = Basket()
    basket.add(caviar, 2)
    caviar.price = Decimal("650")
    caviar.save()

    refreshed = refresh(basket)

    assert [(c.old_price, c.new_price) for c in refreshed.price_changes] == [(Decimal("590"), Decimal("650"))]
    assert basket.lines[0].price == Decimal("650")
    assert priced(basket).items_total == Decimal("1300.00")


def test_a_refresh_cuts_a_quantity_to_the_stock(caviar):
    basket = Basket()
    basket.add(caviar, 8)
    caviar.quantity = 3
    caviar.save()

    refreshed = refresh(basket)

    assert [(s.wanted, s.available) for s in refreshed.shortages] == [(8, 3)]
    assert basket.lines[0].quantity == 3


def test_a_refresh_drops_what_ran_out(caviar, shrimp):
    basket = Basket()
    basket.add(caviar, 1)
    basket.add(shrimp, 1)
    shrimp.quantity = 0
    shrimp.save()

    refresh(basket)

    assert [line.product for line in basket.lines] == [caviar.pk]
