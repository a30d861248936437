"""Ordering in the dialog without an LLM, on the demo catalog: every message
goes through the worker's pipeline (record_incoming, then
integrations.answering.respond), so the basket stored with one reply is what
the next message is answered from."""

from decimal import Decimal

import pytest

from catalog.models import Product
from conversations.channels import SHARE_PHONE_BUTTON
from conversations.models import Conversation, Message
from conversations.services import get_or_create_conversation, record_incoming
from integrations.answering import respond
from orders.models import Customer, Order

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")

ADDRESS = "Москва, ул. Лесная, д. 5, кв. 12"


@pytest.fixture(autouse=True)
def order_rules(settings):
    settings.ORDER_MIN_TOTAL = Decimal("1500")
    settings.ORDER_PICKUP_MIN_TOTAL = Decimal("0")
    settings.ORDER_DELIVERY_COST = Decimal("390")
    settings.ORDER_FREE_DELIVERY_FROM = Decimal("5000")
    settings.B24_CRM_ORDERS = False


@pytest.fixture
def dialog(db):
    return get_or_create_conversation(channel="telegram", external_id="chat-order", customer_name="Анна")


def ask(conversation, text):
    message, _ = record_incoming(conversation=conversation, text=text)
    return respond(message)


def product(title: str) -> Product:
    return Product.objects.get(title=title)


def basket_of(conversation) -> dict:
    conversation.refresh_from_db()
    return (conversation.dialog_context or {}).get("basket") or {}


def lines_of(conversation) -> dict[str, int]:
    by_id = {p.pk: p.title for p in Product.objects.all()}
    return {by_id[line["product"]]: line["quantity"] for line in basket_of(conversation).get("lines", [])}


def checkout(conversation, *, phone="+7 916 123-45-67", fulfilment="доставка", address=ADDRESS):
    """From «оформляем» to the summary, answering each question."""
    replies = [ask(conversation, "оформляем")]
    if phone:
        replies.append(ask(conversation, phone))
    replies.append(ask(conversation, fulfilment))
    if fulfilment == "доставка":
        replies.append(ask(conversation, address))
    replies.append(ask(conversation, "завтра после 18"))
    replies.append(ask(conversation, "наличными"))
    replies.append(ask(conversation, "нет"))
    return replies


def test_an_item_with_a_pack_size_and_a_quantity_goes_into_the_basket(dialog):
    reply = ask(dialog, "хочу заказать икру кеты 500 г, 2 шт")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 2}
    assert "Икра кеты зернистая, 500 г × 2" in reply.text
    assert "16\u00a0056\u00a0₽" in reply.text


@pytest.mark.parametrize(
    ("text", "quantity"),
    [
        ("закажу 3 банки икры кеты 100 г", 3),
        ("положите в корзину две упаковки икры кеты 100 г", 2),
        ("беру икру кеты 100 г x4", 4),
        ("купить икру кеты 100 г", 1),
    ],
)
def test_quantities_are_read_as_people_write_them(dialog, text, quantity):
    ask(dialog, text)

    assert lines_of(dialog) == {"Икра кеты зернистая, 100 г": quantity}


@pytest.mark.parametrize(
    "text",
    [
        "закажите мне 2 упаковки мидий мясо 500 г и одну икру кеты 100 г",
        "мидии мясо 500 г, 2 шт; икра кеты 100 г, 1 шт",
    ],
)
def test_several_items_in_one_message_each_go_in_with_their_count(dialog, text):
    reply = ask(dialog, text)

    assert lines_of(dialog) == {"Мидии мясо в/м, 500 г": 2, "Икра кеты зернистая, 100 г": 1}
    assert "В корзине 2 товара" in reply.text


def test_adding_more_of_a_product_adds_to_its_line(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г, 2 шт")
    ask(dialog, "добавь ещё икру кеты 500 г")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 3}


def test_an_ambiguous_item_is_asked_back_with_a_button_per_product(dialog):
    reply = ask(dialog, "добавь икру горбуши")

    assert reply.reply_kind == Message.ReplyKind.CLARIFY
    assert [p.title for p in reply.products.all()][:3] == [
        "Икра горбуши зернистая, 100 г",
        "Икра горбуши зернистая, 250 г",
        "Икра горбуши зернистая, 500 г",
    ]
    assert reply.suggestions[:3] == ["Беру 1", "Беру 2", "Беру 3"]
    assert lines_of(dialog) == {}


def test_the_answer_to_an_ambiguous_item_picks_it_by_number(dialog):
    ask(dialog, "добавь икру горбуши, 2 шт")
    reply = ask(dialog, "второй")

    assert lines_of(dialog) == {"Икра горбуши зернистая, 250 г": 2}
    assert "Добавил в корзину" in reply.text


def test_a_quantity_given_with_the_choice_is_the_one_ordered(dialog):
    ask(dialog, "хочу купить креветки")
    first = Product.objects.get(pk=basket_of(dialog)["choice"][0]).title  # number 1 of the list

    ask(dialog, "первые, 3 штуки")

    assert lines_of(dialog) == {first: 3}


@pytest.mark.parametrize("text", ["икра кеты 100 г 2 шт", "и ещё пару банок икры кеты 100 г"])
def test_a_product_with_a_count_is_an_order_without_the_verb(dialog, text):
    ask(dialog, text)

    assert lines_of(dialog) == {"Икра кеты зернистая, 100 г": 2}


def test_more_of_another_product_is_added_to_a_basket(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")

    ask(dialog, "а ещё краба камчатского")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1, "Краб камчатский фаланги в/м": 1}


def test_asking_whether_there_is_more_is_a_question(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")

    ask(dialog, "а ещё крабы есть?")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1}


def test_how_much_it_all_comes_to_shows_the_basket(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г, 2 шт")

    reply = ask(dialog, "сколько всего получается?")

    assert "Товары: 16\u00a0056\u00a0₽" in reply.text


def test_delivery_with_its_address_takes_both(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")
    ask(dialog, "+7 916 123-45-67")

    reply = ask(dialog, "привезите на ул. Тверская, д. 10, кв. 5")

    assert basket_of(dialog)["address"] == "привезите на ул. Тверская, д. 10, кв. 5"
    assert "Когда вам удобно" in reply.text


def test_a_time_given_for_the_address_is_kept_and_the_address_asked_again(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")
    ask(dialog, "+7 916 123-45-67")
    ask(dialog, "доставка")

    reply = ask(dialog, "к 19:00 завтра")

    assert "Напишите адрес доставки" in reply.text
    assert (basket_of(dialog)["address"], basket_of(dialog)["desired_time"]) == ("", "к 19:00 завтра")


def test_a_question_the_faq_answers_is_not_an_order(dialog):
    reply = ask(dialog, "если закажу сейчас, привезёте сегодня?")

    assert "в тот же день" in reply.text
    assert lines_of(dialog) == {}


def test_a_question_about_a_count_is_not_an_order(dialog):
    ask(dialog, "сколько стоят 2 банки икры кеты 100 г?")

    assert lines_of(dialog) == {}


@pytest.mark.parametrize("text", ["вы добавляете консерванты в икру кеты?", "а что обычно берут к икре?"])
def test_a_question_about_the_goods_is_not_an_order(dialog, text):
    ask(dialog, text)

    assert lines_of(dialog) == {}


def test_an_ordinal_past_the_last_list_is_said(dialog):
    ask(dialog, "какие есть мидии?")

    reply = ask(dialog, "беру девятый")

    assert "нет такого номера" in reply.text
    assert lines_of(dialog) == {}


def test_a_list_shown_after_the_choice_is_the_one_a_number_picks_from(dialog):
    ask(dialog, "добавь икру горбуши")
    ask(dialog, "а какие крабы есть?")
    dialog.refresh_from_db()
    second = Product.objects.get(pk=dialog.dialog_context["shown"][1])

    ask(dialog, "беру второй")

    assert lines_of(dialog) == {second.title: 1}


def test_ordering_with_a_filled_basket_starts_the_checkout_whatever_was_shown(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "какие есть мидии?")

    reply = ask(dialog, "заказываю")

    assert "номер телефона" in reply.text
    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1}


def test_the_answer_to_an_ambiguous_item_picks_it_by_its_button(dialog):
    ask(dialog, "добавь икру горбуши")
    ask(dialog, "Беру 3")

    assert lines_of(dialog) == {"Икра горбуши зернистая, 500 г": 1}


def test_a_product_from_the_list_just_shown_is_ordered_by_its_number(dialog):
    ask(dialog, "какие есть мидии?")
    shown = basket_of(dialog)
    assert shown == {}
    dialog.refresh_from_db()
    second = Product.objects.get(pk=dialog.dialog_context["shown"][1])

    ask(dialog, "беру вторые, 2 шт")

    assert lines_of(dialog) == {second.title: 2}


def test_an_item_out_of_stock_is_not_added_and_its_analogs_are_offered(dialog):
    reply = ask(dialog, "хочу заказать икру кеты 250 г")

    assert "нет в наличии" in reply.text
    assert "Икра кеты зернистая, 500 г" in reply.text
    assert lines_of(dialog) == {}


@pytest.mark.parametrize("text", ["сделай 3 банки", "пусть будет три", "поменяй на 3 шт"])
def test_the_quantity_of_the_product_last_put_in_is_changed(dialog, text):
    ask(dialog, "мне 2 банки икры кеты 500 г")

    reply = ask(dialog, text)

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 3}
    assert "Изменил количество" in reply.text


def test_more_of_the_product_last_put_in_is_added(dialog):
    ask(dialog, "мне 2 банки икры кеты 500 г")

    ask(dialog, "ещё 2 шт")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 4}


def test_one_is_taken_off_the_product_in_the_basket(dialog):
    ask(dialog, "мне 2 банки икры кеты 500 г")

    ask(dialog, "убери одну")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1}


def test_a_product_is_removed_by_its_name(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "добавь креветки тигровые")

    reply = ask(dialog, "убери креветки")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1}
    assert "Убрал: Креветки тигровые 16/20 в/м" in reply.text


def test_the_basket_is_shown_with_line_totals(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г, 2 шт")
    ask(dialog, "добавь креветки тигровые")

    reply = ask(dialog, "что в корзине?")

    assert "Икра кеты зернистая, 500 г — 2 × 8\u00a0028\u00a0₽ = 16\u00a0056\u00a0₽" in reply.text
    assert "Товары: 18\u00a0246\u00a0₽" in reply.text


def test_a_full_order_is_made_with_the_prices_of_the_moment_and_its_number_told(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г, 2 шт")
    ask(dialog, "добавь ещё креветки тигровые")
    *_, summary = checkout(dialog)
    assert "Итого: 18\u00a0246\u00a0₽" in summary.text  # free delivery from 5 000 ₽

    reply = ask(dialog, "подтверждаю")

    order = Order.objects.get()
    assert f"Заказ №{order.number} оформлен" in reply.text
    assert [(line.title, line.quantity, line.unit_price) for line in order.lines.all()] == [
        ("Икра кеты зернистая, 500 г", 2, Decimal("8028.00")),
        ("Креветки тигровые 16/20 в/м", 1, Decimal("2190.00")),
    ]
    assert (order.fulfilment, order.address, order.payment) == ("delivery", ADDRESS, "cash")
    assert order.desired_time == "завтра после 18"
    assert (order.total, order.customer.phone) == (Decimal("18246.00"), "+79161234567")
    assert basket_of(dialog) == {}


def test_delivery_below_free_delivery_costs_the_settings_price(dialog):
    ask(dialog, "хочу заказать икру кеты 100 г")
    *_, summary = checkout(dialog)

    assert "Доставка: 390\u00a0₽" in summary.text
    ask(dialog, "подтверждаю")
    assert Order.objects.get().total == Decimal("2080.00")


def test_the_order_summary_asks_for_confirmation_with_buttons(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    *_, summary = checkout(dialog)

    assert "Всё верно?" in summary.text
    assert summary.suggestions[:2] == ["Подтверждаю", "Отмена"]
    assert not Order.objects.exists()


def test_a_price_changed_after_the_summary_is_said_and_confirmed_again(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г, 2 шт")
    checkout(dialog)
    Product.objects.filter(title="Икра кеты зернистая, 500 г").update(price=Decimal("8500"))

    reply = ask(dialog, "подтверждаю")

    assert not Order.objects.exists()
    assert "Цена изменилась" in reply.text
    assert "8\u00a0500\u00a0₽" in reply.text
    assert "Всё верно?" in reply.text
    ask(dialog, "подтверждаю")
    assert Order.objects.get().lines.get().unit_price == Decimal("8500.00")


def test_stock_that_ran_out_before_the_confirmation_leaves_the_basket_and_is_said(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "добавь креветки тигровые")
    checkout(dialog)
    Product.objects.filter(title="Креветки тигровые 16/20 в/м").update(quantity=0)

    reply = ask(dialog, "подтверждаю")

    assert "закончился" in reply.text
    assert not Order.objects.exists()
    ask(dialog, "подтверждаю")
    assert [line.title for line in Order.objects.get().lines.all()] == ["Икра кеты зернистая, 500 г"]


def test_a_question_in_the_middle_of_the_checkout_is_answered_and_the_step_asked_again(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")
    ask(dialog, "+7 916 123-45-67")
    ask(dialog, "доставка")

    reply = ask(dialog, "а в какое время вы доставляете?")

    assert "10:00 до 22:00" in reply.text  # the FAQ's answer
    assert reply.text.endswith("Напишите адрес доставки: город, улица, дом, квартира.")
    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1}
    ask(dialog, ADDRESS)
    ask(dialog, "завтра")
    ask(dialog, "онлайн")
    ask(dialog, "нет")
    ask(dialog, "да, всё верно")
    assert Order.objects.get().address == ADDRESS


def test_a_product_question_mid_checkout_keeps_the_basket(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")

    reply = ask(dialog, "а крабы у вас есть?")

    assert "Краб" in reply.text
    assert "номер телефона" in reply.text
    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1}


def test_cancel_empties_the_basket(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")

    reply = ask(dialog, "отмена")

    assert "корзина очищена" in reply.text
    assert basket_of(dialog) == {}
    assert "пуста" in ask(dialog, "корзина").text
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "phone", ["8 916 123-45-67", "+7 (916) 123-45-67", "916 123 45 67", "89161234567", "+7-916-123-4567"]
)
def test_a_phone_in_any_russian_format_is_the_customers(dialog, phone):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")

    reply = ask(dialog, phone)

    assert Customer.objects.get().phone == "+79161234567"
    assert "Доставка курьером или самовывоз?" in reply.text


def test_the_phone_is_asked_with_the_share_button(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")

    reply = ask(dialog, "оформляем")

    assert "номер телефона" in reply.text
    assert SHARE_PHONE_BUTTON in reply.suggestions


def test_what_is_not_a_phone_is_asked_again(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")

    reply = ask(dialog, "12345")

    assert "Не похоже на номер телефона" in reply.text
    assert Customer.objects.get().phone == ""


def test_a_customer_with_a_phone_is_not_asked_for_it_again(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    checkout(dialog)
    ask(dialog, "подтверждаю")

    ask(dialog, "хочу заказать икру кеты 100 г")
    reply = ask(dialog, "оформляем")

    assert "Доставка курьером или самовывоз?" in reply.text


def test_a_basket_under_the_delivery_minimum_may_still_be_picked_up(dialog):
    ask(dialog, "хочу заказать мидии мясо 500 г")
    ask(dialog, "оформляем")
    ask(dialog, "+7 916 123-45-67")

    refused = ask(dialog, "доставка")
    picked_up = ask(dialog, "самовывоз")

    assert "Минимальная сумма заказа с доставкой — 1\u00a0500\u00a0₽" in refused.text
    assert "ул. Рыбная" in picked_up.text  # the FAQ's pickup address
    for text in ("сегодня вечером", "картой", "нет", "подтверждаю"):
        ask(dialog, text)
    order = Order.objects.get()
    assert (order.fulfilment, order.delivery_cost, order.total) == ("pickup", Decimal("0"), Decimal("345.00"))


def test_an_order_under_the_minimum_for_every_way_is_not_started(dialog, settings):
    settings.ORDER_PICKUP_MIN_TOTAL = Decimal("1000")
    ask(dialog, "хочу заказать мидии мясо 500 г")

    reply = ask(dialog, "оформляем")

    assert "Минимальная сумма заказа — 1\u00a0000\u00a0₽" in reply.text
    assert basket_of(dialog)["step"] == ""


@pytest.mark.parametrize("text", ["-", "без комментариев", "ок"])
def test_no_comment_said_briefly_leaves_none(dialog, text):
    ask(dialog, "хочу заказать икру кеты 500 г")
    for step in ("оформляем", "+7 916 123-45-67", "самовывоз", "завтра", "наличными"):
        ask(dialog, step)

    reply = ask(dialog, text)

    assert "Всё верно?" in reply.text
    assert "Комментарий" not in reply.text


def test_a_detail_is_changed_at_the_summary(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    checkout(dialog)

    reply = ask(dialog, "лучше оплачу картой")

    assert "Оплата: картой при получении" in reply.text
    ask(dialog, "подтверждаю")
    assert Order.objects.get().payment == "card"


def test_an_item_added_at_the_summary_is_in_the_new_summary(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    checkout(dialog)

    reply = ask(dialog, "добавь ещё креветки тигровые")

    assert "Креветки тигровые 16/20 в/м — 1 × 2\u00a0190\u00a0₽" in reply.text
    assert "Всё верно?" in reply.text


def test_the_same_confirmation_answered_twice_makes_one_order(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    checkout(dialog)
    message, _ = record_incoming(conversation=dialog, text="подтверждаю")
    before = Conversation.objects.get(pk=dialog.pk).dialog_context
    first = respond(message)
    # A worker that died after the order was made, before its reply was saved:
    # the retried task sees the dialog as it was.
    first.delete()
    Conversation.objects.filter(pk=dialog.pk).update(dialog_context=before)
    message.conversation.refresh_from_db()

    again = respond(message)

    order = Order.objects.get()
    assert f"Заказ №{order.number} оформлен" in again.text


def test_two_confirmations_of_one_basket_make_one_order(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    checkout(dialog)
    before = Conversation.objects.get(pk=dialog.pk).dialog_context
    ask(dialog, "подтверждаю")
    # The second «подтверждаю», tapped twice, read by a worker that loaded the
    # dialog before the first reply was saved.
    Conversation.objects.filter(pk=dialog.pk).update(dialog_context=before)
    dialog.refresh_from_db()

    reply = ask(dialog, "подтверждаю")

    order = Order.objects.get()
    assert f"Заказ №{order.number} оформлен" in reply.text


def test_a_confirmation_sent_again_after_the_order_says_it_is_made(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")
    checkout(dialog)
    ask(dialog, "подтверждаю")

    reply = ask(dialog, "подтверждаю")

    assert f"Заказ №{Order.objects.get().number} уже оформлен" in reply.text


def test_a_basket_is_kept_across_a_hand_off(dialog):
    ask(dialog, "хочу заказать икру кеты 500 г")

    ask(dialog, "позовите менеджера")

    assert lines_of(dialog) == {"Икра кеты зернистая, 500 г": 1}
