"""One customer across channels: an identity per channel user, one phone, merged when the phone repeats."""

import pytest

from conversations.models import Channel
from orders.models import Customer, CustomerIdentity, Order, ReturnRequest
from orders.phones import InvalidPhone
from orders.services import customer_for, set_consent, set_phone
from tests.factories import make_conversation
from tests.orders.conftest import place_order

pytestmark = pytest.mark.django_db


def test_a_dialog_gets_a_customer_named_as_in_the_channel(conversation):
    assert customer_for(conversation).name == "Анна"


def test_the_same_channel_user_is_the_same_customer_in_every_dialog():
    first = make_conversation("telegram", customer_external_id="5001")
    second = make_conversation("telegram", customer_external_id="5001")

    assert customer_for(first) == customer_for(second)


def test_a_user_of_another_channel_is_another_customer_until_a_phone_joins_them():
    telegram = make_conversation("telegram", customer_external_id="5001")
    bitrix = make_conversation(Channel.BITRIX24, customer_external_id="5001")

    assert customer_for(telegram) != customer_for(bitrix)


def test_a_phone_is_stored_in_e164(conversation):
    customer = set_phone(customer_for(conversation), "8 912 345-67-89")

    customer.refresh_from_db()
    assert customer.phone == "+79123456789"


def test_a_phone_that_is_not_one_is_refused_and_nothing_stored(conversation):
    customer = customer_for(conversation)

    with pytest.raises(InvalidPhone):
        set_phone(customer, "не скажу")
    customer.refresh_from_db()
    assert customer.phone == ""


def test_the_same_phone_from_two_channels_is_one_customer():
    telegram = customer_for(make_conversation("telegram", customer_external_id="5001", customer_name="Анна"))
    bitrix = customer_for(make_conversation(Channel.BITRIX24, customer_external_id="77"))
    set_phone(telegram, "+7 (912) 345-67-89")

    merged = set_phone(bitrix, "89123456789")

    assert merged == telegram
    assert Customer.objects.count() == 1
    assert set(CustomerIdentity.objects.values_list("channel", flat=True)) == {"telegram", "bitrix24"}


def test_after_the_merge_the_second_channel_finds_the_first_customer():
    first = customer_for(make_conversation("telegram", customer_external_id="5001"))
    later = make_conversation(Channel.BITRIX24, customer_external_id="77")
    set_phone(first, "9123456789")

    set_phone(customer_for(later), "+79123456789")

    assert customer_for(later) == first


def test_a_merge_keeps_the_orders_of_both(caviar):
    telegram = make_conversation("telegram", customer_external_id="5001")
    bitrix = make_conversation(Channel.BITRIX24, customer_external_id="77")
    place_order(telegram, [(caviar, 2)], phone="+79123456789")
    place_order(bitrix, [(caviar, 2)], phone="+79990001122")

    survivor = set_phone(customer_for(bitrix), "8 912 345 67 89")

    assert Order.objects.filter(customer=survivor).count() == 2


def test_a_merge_keeps_a_consent_given_in_either_channel():
    telegram = customer_for(make_conversation("telegram", customer_external_id="5001"))
    bitrix = customer_for(make_conversation(Channel.BITRIX24, customer_external_id="77"))
    set_phone(telegram, "+79123456789")
    set_consent(bitrix, given=True)

    merged = set_phone(bitrix, "+79123456789")

    merged.refresh_from_db()
    assert merged.consent_to_contact is True


def test_a_consent_is_recorded_with_its_time(conversation):
    customer = customer_for(conversation)

    set_consent(customer, given=True)

    customer.refresh_from_db()
    assert customer.consent_to_contact is True
    assert customer.consent_at is not None


def test_a_merge_keeps_the_return_requests_of_both(caviar):
    telegram = make_conversation("telegram", customer_external_id="5001")
    bitrix = make_conversation(Channel.BITRIX24, customer_external_id="77")
    place_order(telegram, [(caviar, 2)], phone="+79123456789")
    order = place_order(bitrix, [(caviar, 2)], phone="+79990001122")
    ReturnRequest.objects.create(order=order, customer=order.customer, conversation=bitrix, reason="испорчена")

    survivor = set_phone(customer_for(bitrix), "8 912 345 67 89")

    assert ReturnRequest.objects.get().customer == survivor
