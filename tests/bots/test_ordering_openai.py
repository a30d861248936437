"""Ordering with an LLM: the model puts products in the basket through its tool,
against a local OpenAI-compatible server (the real openai client, real HTTP);
the checkout's steps are read by our code, not by the model."""

from decimal import Decimal

import pytest

from bots.models import AssistantSettings
from catalog.models import Product
from conversations.models import Message
from conversations.services import get_or_create_conversation, record_incoming
from integrations.answering import respond
from orders.models import Order

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")

ADDRESS = "Москва, ул. Лесная, д. 5, кв. 12"


@pytest.fixture(autouse=True)
def openai_settings(settings, openai_server, db):
    settings.OPENAI_BASE_URL = openai_server.url
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.LLM_TIMEOUT_S = 1.0
    settings.ORDER_MIN_TOTAL = Decimal("1500")
    settings.ORDER_DELIVERY_COST = Decimal("390")
    settings.ORDER_FREE_DELIVERY_FROM = Decimal("5000")
    settings.B24_CRM_ORDERS = False
    config = AssistantSettings.load()
    config.provider = "openai"
    config.model = "model-a"
    config.save()


@pytest.fixture
def dialog(db):
    return get_or_create_conversation(channel="telegram", external_id="chat-llm-order", customer_name="Олег")


@pytest.fixture
def caviar(db):
    return Product.objects.get(title="Икра кеты зернистая, 500 г")


def ask(conversation, text):
    message, _ = record_incoming(conversation=conversation, text=text)
    return respond(message)


def basket_lines(conversation) -> list[tuple[int, int]]:
    conversation.refresh_from_db()
    lines = (conversation.dialog_context or {}).get("basket", {}).get("lines", [])
    return [(line["product"], line["quantity"]) for line in lines]


def add_through_the_model(server, conversation, product, quantity, text):
    server.reply_tool_call("search_catalog", {"query": "икра кеты 500 г"})
    server.reply_tool_call("basket", {"action": "add", "product_id": product.id, "quantity": quantity})
    return ask(conversation, text)


def test_the_model_puts_a_product_in_the_basket_through_its_tool(dialog, openai_server, caviar):
    reply = add_through_the_model(openai_server, dialog, caviar, 2, "хочу заказать икру кеты 500 г, 2 шт")

    assert basket_lines(dialog) == [(caviar.id, 2)]
    assert "Добавил в корзину: Икра кеты зернистая, 500 г × 2" in reply.text
    assert reply.reply_kind == Message.ReplyKind.ORDER
    assert reply.llm_model == "model-a"


def test_the_basket_tool_is_offered_when_the_customer_talks_of_ordering(dialog, openai_server):
    openai_server.reply_text("Что именно хотите заказать?")

    ask(dialog, "хочу заказать к празднику")

    tools = {t["function"]["name"] for t in openai_server.requests[-1]["body"]["tools"]}
    assert "basket" in tools


def test_a_question_with_nothing_to_order_goes_without_the_basket_tool(dialog, openai_server):
    openai_server.reply_text("Икра хранится до 5 суток после вскрытия.")

    ask(dialog, "сколько хранится икра после вскрытия?")

    tools = {t["function"]["name"] for t in openai_server.requests[-1]["body"]["tools"]}
    assert "basket" not in tools


def test_the_next_prompt_names_the_basket_by_id(dialog, openai_server, caviar):
    add_through_the_model(openai_server, dialog, caviar, 2, "хочу заказать икру кеты 500 г, 2 шт")
    openai_server.reply_text("Икра кеты отлично хранится в холодильнике до 5 суток после вскрытия.")

    ask(dialog, "сколько хранится икра?")

    system = openai_server.requests[-1]["body"]["messages"][0]["content"]
    assert f"Корзина покупателя: [[product:{caviar.id}]] × 2." in system


def test_a_product_id_the_catalog_does_not_have_changes_nothing(dialog, openai_server):
    openai_server.reply_tool_call("basket", {"action": "add", "product_id": 999999})
    openai_server.reply_text("Не нашёл такой товар, уточните, пожалуйста.")

    reply = ask(dialog, "закажите мне что-нибудь")

    assert basket_lines(dialog) == []
    assert reply.reply_kind == Message.ReplyKind.LLM


def test_the_model_removes_a_product_through_its_tool(dialog, openai_server, caviar):
    add_through_the_model(openai_server, dialog, caviar, 2, "хочу заказать икру кеты 500 г, 2 шт")
    openai_server.reply_tool_call("basket", {"action": "remove", "product_id": caviar.id})

    reply = ask(dialog, "убери икру")

    assert basket_lines(dialog) == []
    assert "Корзина пуста" in reply.text


def test_a_whole_order_with_the_model_is_placed_once_with_the_checkout_read_by_our_code(dialog, openai_server, caviar):
    add_through_the_model(openai_server, dialog, caviar, 2, "хочу заказать икру кеты 500 г, 2 шт")
    asked_the_model = len(openai_server.requests)

    for text in ("оформляем", "8 916 123-45-67", "доставка", ADDRESS, "завтра до обеда", "онлайн", "нет"):
        ask(dialog, text)
    reply = ask(dialog, "подтверждаю")

    assert len(openai_server.requests) == asked_the_model  # the steps did not go to the model
    order = Order.objects.get()
    assert f"Заказ №{order.number} оформлен" in reply.text
    assert [(line.title, line.quantity) for line in order.lines.all()] == [("Икра кеты зернистая, 500 г", 2)]
    assert (order.payment, order.address, order.total) == ("online", ADDRESS, Decimal("16056.00"))


def test_a_question_mid_checkout_goes_to_the_model_and_the_step_is_asked_again(dialog, openai_server, caviar):
    add_through_the_model(openai_server, dialog, caviar, 1, "хочу заказать икру кеты 500 г")
    ask(dialog, "оформляем")
    openai_server.reply_text("Доставляем ежедневно с 10:00 до 22:00.")

    reply = ask(dialog, "а во сколько привезёте?")

    assert reply.text.startswith("Доставляем ежедневно с 10:00 до 22:00.")
    assert reply.text.endswith("Напишите его, например: +7 900 123-45-67. Или нажмите кнопку «Поделиться номером».")
    assert basket_lines(dialog) == [(caviar.id, 1)]


def test_a_price_changed_before_confirmation_is_said_with_the_model_too(dialog, openai_server, caviar):
    add_through_the_model(openai_server, dialog, caviar, 1, "хочу заказать икру кеты 500 г")
    for text in ("оформляем", "8 916 123-45-67", "самовывоз", "сегодня", "наличными", "нет"):
        ask(dialog, text)
    Product.objects.filter(pk=caviar.pk).update(price=Decimal("7990"))

    reply = ask(dialog, "подтверждаю")

    assert "Цена изменилась" in reply.text
    assert not Order.objects.exists()
    ask(dialog, "подтверждаю")
    assert Order.objects.get().total == Decimal("7990.00")
