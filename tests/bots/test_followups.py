"""Follow-ups that refer to what the bot has just shown, without an LLM, on the
demo catalog: each dialog goes through the worker's pipeline (record_incoming,
then integrations.answering.respond), so the context stored with one reply is
what the next message is answered from."""

import re
from decimal import Decimal

import pytest

from bots.models import AssistantSettings
from catalog.models import Product
from catalog.presentation import money
from conversations.models import Message
from conversations.services import get_or_create_conversation, record_incoming, return_to_bot, start_new_context
from integrations.answering import respond

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")

# The clarifying question names categories; none of these replies should be one.
CLARIFYING = "Уточните, что вы ищете"


@pytest.fixture
def dialog(db):
    return get_or_create_conversation(channel="telegram", external_id="chat-followups", customer_name="Анна")


def ask(conversation, text):
    message, _ = record_incoming(conversation=conversation, text=text)
    return respond(message)


def listed(reply) -> list[str]:
    """The titles of the numbered list in a reply, in its order."""
    return re.findall(r"^\d+\. (.+?) — ", reply.text, flags=re.MULTILINE)


def prices(reply) -> list[Decimal]:
    titles = listed(reply)
    by_title = {p.title: p.price for p in Product.objects.filter(title__in=titles)}
    return [by_title[t] for t in titles]


def product(title: str) -> Product:
    return Product.objects.get(title=title)


@pytest.mark.parametrize(
    "follow_up", ["а подешевле?", "есть что-то дешевле?", "а бюджетнее ничего нет?", "дороговато, есть дешевле?"]
)
def test_cheaper_shows_cheaper_caviar_in_stock(dialog, follow_up):
    first = ask(dialog, "икра кеты")

    reply = ask(dialog, follow_up)

    assert CLARIFYING not in reply.text
    assert listed(reply)
    assert max(prices(reply)) < prices(first)[0]  # the caviar asked for
    for title in listed(reply):
        caviar = product(title)
        assert caviar.in_stock
        assert "Икра" in {c.title for c in caviar.categories.all()}


@pytest.mark.parametrize("follow_up", ["а подороже?", "а есть получше, подороже?"])
def test_dearer_shows_dearer_products_of_the_same_kind(dialog, follow_up):
    first = ask(dialog, "икра горбуши 100 г")

    reply = ask(dialog, follow_up)

    assert listed(reply)
    assert min(prices(reply)) > max(prices(first))
    assert all("Икра" in t for t in listed(reply))


@pytest.mark.parametrize("follow_up", ["а поменьше есть?", "а упаковка поменьше?", "есть меньше?"])
def test_smaller_is_the_smaller_pack_of_the_same_product(dialog, follow_up):
    ask(dialog, "икра кеты 500 г")

    reply = ask(dialog, follow_up)

    assert listed(reply)[0] == "Икра кеты зернистая, 250 г"
    assert "Икра кеты зернистая, 100 г" in listed(reply)
    assert "Икра кеты зернистая, 500 г" not in reply.text


@pytest.mark.parametrize("follow_up", ["а побольше?", "а покрупнее упаковка?", "а большая банка есть?"])
def test_larger_is_the_larger_pack_of_the_same_product(dialog, follow_up):
    ask(dialog, "икра нерки 100 г")

    reply = ask(dialog, follow_up)

    assert listed(reply) == ["Икра нерки, 250 г"]
    assert "4\u00a0489\u00a0₽" in reply.text


def test_no_larger_pack_says_so_and_offers_a_larger_one_of_the_same_kind(dialog):
    ask(dialog, "креветки королевские очищенные 1 кг")

    reply = ask(dialog, "а побольше?")

    assert "больше 1 кг" in reply.text
    assert listed(reply) == ["Креветки аргентинские красные L1 с/м, 2 кг"]


@pytest.mark.parametrize("follow_up", ["сколько стоит килограмм?", "а за кило?", "а кг почём?"])
def test_a_kilo_is_the_1_kg_pack(dialog, follow_up):
    ask(dialog, "креветки ваннамей 500 г")

    reply = ask(dialog, follow_up)

    assert listed(reply) == ["Креветки королевские ваннамей 40/50 с/м, 1 кг"]
    assert "1\u00a0290\u00a0₽" in reply.text


def test_a_kilo_of_a_product_without_a_1_kg_pack_is_worked_out_from_its_price(dialog):
    ask(dialog, "икра нерки 100 г")

    reply = ask(dialog, "сколько стоит килограмм?")

    assert "Фасовки 1 кг нет" in reply.text
    assert "18\u00a0900\u00a0₽" in reply.text  # 1 890 ₽ for 100 г
    assert listed(reply) == ["Икра нерки, 100 г"]


@pytest.mark.parametrize(
    ("follow_up", "index"),
    [("второй вариант", 1), ("давайте третий", 2), ("2", 1), ("а последний?", -1), ("первый", 0)],
)
def test_an_ordinal_is_that_item_of_the_last_list(dialog, follow_up, index):
    shown = listed(ask(dialog, "Какая икра есть в наличии?"))

    reply = ask(dialog, follow_up)

    chosen = product(shown[index])
    assert reply.text.startswith(chosen.title + " — ")
    assert chosen.url in reply.text
    assert list(reply.products.all()) == [chosen]
    assert all(title not in reply.text for title in shown if title != chosen.title)


def test_the_price_of_an_item_asked_by_its_number(dialog):
    shown = listed(ask(dialog, "креветки"))

    reply = ask(dialog, "а первый сколько стоит?")

    first = product(shown[0])
    assert reply.text.startswith(f"{first.title} — {money(first.price)}")


def test_an_ordinal_past_the_end_of_the_list_asks_which_one(dialog):
    ask(dialog, "скумбрия")

    reply = ask(dialog, "пятый")

    assert "В списке 3 варианта" in reply.text
    assert len(listed(reply)) == 3


@pytest.mark.parametrize("follow_up", ["а есть в наличии?", "а в наличии?", "сколько осталось?"])
def test_stock_of_the_product_asked_about(dialog, follow_up):
    ask(dialog, "Креветки тигровые 21/25 без головы")  # out of stock: analogs offered

    reply = ask(dialog, follow_up)

    assert reply.text.startswith("К сожалению, Креветки тигровые 21/25 с/м без головы сейчас нет в наличии")
    assert CLARIFYING not in reply.text


def test_stock_of_a_picked_item(dialog):
    ask(dialog, "икра нерки")
    ask(dialog, "второй")

    reply = ask(dialog, "а в наличии?")

    assert listed(reply) == ["Икра нерки, 250 г"]
    assert "в наличии: 20 шт." in reply.text


@pytest.mark.parametrize(
    ("first", "follow_up", "word"),
    [
        ("скумбрия", "а копчёная?", "копчения"),
        ("лосось", "а охлаждённый?", "охлаждённый"),
        ("форель", "а слабосолёная?", "слабосолёная"),
    ],
)
def test_an_attribute_searches_the_same_product_with_it(dialog, first, follow_up, word):
    ask(dialog, first)

    reply = ask(dialog, follow_up)

    assert listed(reply)
    assert all(first in t.lower() for t in listed(reply))
    assert all(word in t for t in listed(reply))


def test_a_new_product_word_is_a_new_search_within_the_same_budget(dialog):
    ask(dialog, "икра до 2000")

    reply = ask(dialog, "а крабы?")

    assert listed(reply)
    assert all("краб" in t.lower() for t in listed(reply))
    assert all(p <= 2000 for p in prices(reply))
    assert "до 2\u00a0000\u00a0₽" in reply.text  # the customer is told the budget still holds


def test_a_new_question_in_full_is_not_held_to_the_earlier_budget(dialog):
    ask(dialog, "икра до 2000")
    held = ask(dialog, "а крабы?")

    reply = ask(dialog, "Какие крабы у вас есть?")

    assert "Краб камчатский фаланги в/м" not in listed(held)  # 6 900 ₽
    assert "Краб камчатский фаланги в/м" in listed(reply)


def test_context_outlives_a_faq_answer(dialog):
    shown = listed(ask(dialog, "икра кеты"))
    ask(dialog, "сколько стоит доставка?")

    reply = ask(dialog, "а второй?")

    assert reply.text.startswith(shown[1] + " — ")


def test_a_follow_up_with_nothing_shown_gets_a_short_question(dialog):
    reply = ask(dialog, "а подешевле?")

    assert reply.reply_kind == Message.ReplyKind.CLARIFY
    assert len(reply.text) < 250


def test_a_clarifying_question_is_not_sent_twice_in_a_row(dialog):
    first = ask(dialog, "абырвалг")

    second = ask(dialog, "фывапролдж")

    assert first.reply_kind == second.reply_kind == Message.ReplyKind.CLARIFY
    assert second.text != first.text
    offered = listed(second)
    assert len(offered) >= 3
    assert all(product(t).in_stock for t in offered)
    assert "оператор" in second.text


def test_products_offered_after_a_miss_can_be_picked_by_number(dialog):
    ask(dialog, "что посоветуете?")
    offered = listed(ask(dialog, "ну не знаю, что посоветуете?"))

    reply = ask(dialog, "давайте второй")

    assert reply.text.startswith(offered[1] + " — ")


def test_context_ends_with_a_new_session(dialog):
    ask(dialog, "икра кеты")
    assert listed(ask(dialog, "а подешевле?"))
    start_new_context(conversation=dialog)

    reply = ask(dialog, "а подешевле?")

    assert reply.reply_kind == Message.ReplyKind.CLARIFY
    assert not listed(reply)


def test_context_ends_after_the_history_ttl(dialog, settings):
    ask(dialog, "икра кеты")
    assert listed(ask(dialog, "а подешевле?"))
    settings.HISTORY_TTL_S = 0

    reply = ask(dialog, "а подешевле?")

    assert reply.reply_kind == Message.ReplyKind.CLARIFY
    assert not listed(reply)


def test_context_ends_with_a_hand_off(dialog):
    ask(dialog, "икра кеты")
    assert listed(ask(dialog, "а подешевле?"))
    ask(dialog, "позовите оператора")
    return_to_bot(conversation=dialog)

    reply = ask(dialog, "а подешевле?")

    assert reply.reply_kind == Message.ReplyKind.CLARIFY
    assert not listed(reply)


def test_with_an_llm_the_shown_products_are_in_the_prompt_and_cited_without_a_search(dialog, openai_server, settings):
    # The real openai client over HTTP to a local server.
    settings.OPENAI_BASE_URL = openai_server.url
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.LLM_TIMEOUT_S = 1.0
    config = AssistantSettings.load()
    config.provider = "openai"
    config.model = "model-a"
    config.save()
    nerka_100, nerka_250 = product("Икра нерки, 100 г"), product("Икра нерки, 250 г")
    openai_server.reply_tool_call("search_catalog", {"query": "икра нерки", "in_stock_only": True})
    openai_server.reply_text(f"Есть [[product:{nerka_100.id}]] и [[product:{nerka_250.id}]].")
    ask(dialog, "есть икра нерки?")
    openai_server.reply_text(f"Побольше — [[product:{nerka_250.id}]], маленькая стоит 1 890 ₽.")

    reply = ask(dialog, "а побольше?")

    assert len(openai_server.requests) == 3  # the second turn made no search
    system = openai_server.requests[2]["body"]["messages"][0]["content"]
    assert f"1. [[product:{nerka_100.id}]] Икра нерки, 100 г — 1\u00a0890\u00a0₽;" in system
    assert f"2. [[product:{nerka_250.id}]] Икра нерки, 250 г" in system
    assert reply.reply_kind == Message.ReplyKind.LLM
    assert reply.text.startswith("Побольше — Икра нерки, 250 г — 4\u00a0489\u00a0₽")
    assert "маленькая стоит 1 890 ₽" in reply.text


def test_a_product_named_in_a_form_like_an_adjective_is_a_new_search(dialog):
    # «мидий» ends as «свежий» does; titles start with it, so it names a product.
    ask(dialog, "есть креветки?")

    reply = ask(dialog, "мидий")

    assert listed(reply)
    assert "мидии" in listed(reply)[0].lower()
    assert "не нашёл" not in reply.text
