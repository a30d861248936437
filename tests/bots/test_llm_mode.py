"""The LLM mode of the assistant with the in-memory provider (bots.llm.locmem)."""

import pytest

from bots.llm import ChatResult, LLMError, ToolCall
from bots.llm import locmem as llm
from bots.llm_mode import check_facts
from bots.models import AssistantSettings
from catalog.models import Product
from conversations.models import Conversation, Message
from conversations.services import get_or_create_conversation, record_incoming, return_to_bot
from integrations.answering import respond

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")


@pytest.fixture(autouse=True)
def locmem_llm(db):
    llm.script.clear()
    llm.requests.clear()
    config = AssistantSettings.load()
    config.provider = "locmem"
    config.model = "test-model"
    config.save()
    yield llm
    llm.script.clear()
    llm.requests.clear()


@pytest.fixture
def dialog(db):
    return get_or_create_conversation(channel="telegram", external_id="chat-7")


def ask(conversation, text):
    message, _ = record_incoming(conversation=conversation, text=text)
    return respond(message)


def tool_call(name, **arguments):
    return ChatResult(text="", tool_calls=[ToolCall(id=f"call-{name}", name=name, arguments=arguments)])


def test_tool_result_goes_back_to_the_model_and_its_answer_cites_products(dialog, locmem_llm):
    caviar = Product.objects.get(sku="MR-00004")
    locmem_llm.script += [
        tool_call("search_catalog", query="икра кеты", in_stock_only=True),
        ChatResult(text=f"Советую [[product:{caviar.id}]] — крупное зерно.", model="test-model", prompt_tokens=900),
    ]

    reply = ask(dialog, "Посоветуйте икру кеты")

    second_request = locmem_llm.requests[1]["messages"]
    assert second_request[-1]["role"] == "tool"
    assert "Икра кеты зернистая, 100 г" in second_request[-1]["content"]
    assert reply.reply_kind == Message.ReplyKind.LLM
    assert "Икра кеты зернистая, 100 г — 1\u00a0690\u00a0₽, в наличии: 5 шт." in reply.text
    assert caviar.url in reply.text
    assert list(reply.products.all()) == [caviar]
    assert (reply.llm_model, reply.prompt_tokens) == ("test-model", 900)


def test_model_asking_for_a_person_hands_off_through_the_tool(dialog, locmem_llm):
    locmem_llm.script.append(tool_call("handoff_to_operator", reason="жалоба на доставку"))

    reply = ask(dialog, "Мне привезли испорченную рыбу, я очень недоволен")

    dialog.refresh_from_db()
    assert dialog.state == Conversation.State.OPERATOR
    assert reply.reply_kind == Message.ReplyKind.HANDOFF


def test_llm_failure_falls_back_to_the_catalog_and_records_why(dialog, locmem_llm):
    locmem_llm.script.append(LLMError("HTTP 500 from the provider"))

    reply = ask(dialog, "сколько стоит доставка?")

    assert reply.reply_kind == Message.ReplyKind.FALLBACK
    assert "390 ₽" in reply.text
    assert reply.llm_error == "HTTP 500 from the provider"


def test_model_gets_three_tool_rounds_then_must_answer(dialog, locmem_llm):
    locmem_llm.script += [tool_call("search_catalog", query="икра")] * 3 + [ChatResult(text="Выбор большой!")]

    reply = ask(dialog, "икра")

    assert [bool(r["tools"]) for r in locmem_llm.requests] == [True, True, True, False]
    assert reply.text == "Выбор большой!"


def test_banned_promise_is_removed_from_the_reply(dialog, locmem_llm):
    locmem_llm.script.append(ChatResult(text="Рыба свежая. Если не понравится, вернём деньги без вопросов."))

    reply = ask(dialog, "рыба свежая?")

    assert reply.text == "Рыба свежая."


def test_markdown_is_removed_from_the_reply(dialog, locmem_llm):
    locmem_llm.script.append(ChatResult(text="**Важно:** храните при *−18 °C*.\n- пункт один"))

    reply = ask(dialog, "как хранить креветки?")

    assert reply.text == "Важно: храните при −18 °C.\n• пункт один"


def test_settings_change_takes_effect_on_the_next_message(dialog, locmem_llm):
    locmem_llm.script.append(ChatResult(text="Здравствуйте!"))
    ask(dialog, "привет")
    config = AssistantSettings.load()
    config.provider = ""
    config.save()

    reply = ask(dialog, "сколько стоит доставка?")

    assert len(locmem_llm.requests) == 1
    assert reply.reply_kind == Message.ReplyKind.FAQ


def test_product_that_is_not_in_the_catalog_is_dropped():
    text, cited = check_facts("Есть [[product:999999]] по акции. Ещё вопросы?", found={})

    assert text == "Ещё вопросы?"
    assert cited == []


def test_price_that_no_tool_returned_is_dropped():
    caviar = Product.objects.get(sku="MR-00004")

    text, _ = check_facts(
        f"Икра чавычи стоит 990 ₽. А [[product:{caviar.id}]] стоит 1 690 ₽. Заказывайте!",
        found={caviar.id: caviar},
    )

    assert "990" not in text
    assert "чавычи" not in text
    assert "1 690 ₽" in text
    assert text.endswith("Заказывайте!")


def test_link_that_is_no_products_is_dropped():
    caviar = Product.objects.get(sku="MR-00004")

    text, _ = check_facts(f"Смотрите https://evil.example/buy. Карточка: {caviar.url}", found={caviar.id: caviar})

    assert "evil.example" not in text
    assert caviar.url in text


# --- what earlier turns showed ------------------------------------------------------


def show_two_caviars(dialog, locmem_llm):
    """A turn in which the model searched and cited two caviars, in this order."""
    keta, gorbusha = Product.objects.get(sku="MR-00004"), Product.objects.get(sku="MR-00001")
    locmem_llm.script += [
        tool_call("search_catalog", query="икра", in_stock_only=True),
        ChatResult(text=f"Есть [[product:{keta.id}]] и [[product:{gorbusha.id}]]."),
    ]
    ask(dialog, "какая красная икра есть?")
    return keta, gorbusha


def test_products_shown_before_are_named_by_id_in_the_prompt(dialog, locmem_llm):
    keta, gorbusha = show_two_caviars(dialog, locmem_llm)
    locmem_llm.script.append(ChatResult(text=f"Второй вариант — [[product:{gorbusha.id}]]."))

    ask(dialog, "а второй сколько стоит?")

    system = locmem_llm.requests[-1]["messages"][0]["content"]
    assert f"1. [[product:{keta.id}]] Икра кеты зернистая, 100 г — 1\u00a0690\u00a0₽" in system
    assert f"2. [[product:{gorbusha.id}]] Икра горбуши зернистая, 100 г" in system
    assert "«икра»" in system  # the model's own search
    # Ids and titles, not the catalog's descriptions.
    assert keta.short_description not in system


def test_products_shown_before_count_as_found_for_the_fact_check(dialog, locmem_llm):
    _keta, gorbusha = show_two_caviars(dialog, locmem_llm)
    # No search this turn: the first product's price is quoted from the earlier one.
    locmem_llm.script.append(ChatResult(text=f"[[product:{gorbusha.id}]] дешевле, чем первый за 1 690 ₽."))

    reply = ask(dialog, "а какой из них дешевле?")

    assert len(locmem_llm.requests) == 3  # two for the first turn, one for this
    assert "дешевле, чем первый за 1 690 ₽" in reply.text
    assert reply.text.startswith("Икра горбуши зернистая, 100 г — 1\u00a0290\u00a0₽")


def test_a_list_from_the_catalog_fallback_is_in_the_next_prompt(dialog, locmem_llm):
    locmem_llm.script.append(LLMError("HTTP 500 from the provider"))
    listed = ask(dialog, "икра кеты")
    shown = list(listed.products.all())
    locmem_llm.script.append(ChatResult(text="Какой вариант вам ближе?"))

    ask(dialog, "а подешевле есть?")

    assert listed.reply_kind == Message.ReplyKind.FALLBACK
    messages = locmem_llm.requests[-1]["messages"]
    assert all(f"[[product:{p.id}]]" in messages[0]["content"] for p in shown)
    # The list is in the system prompt by id; the history keeps the reply's words, not its lines again.
    assert [m["content"] for m in messages if m["role"] == "assistant"] == ["Вот что есть в наличии: …"]


def test_no_products_in_the_prompt_after_a_hand_off(dialog, locmem_llm):
    show_two_caviars(dialog, locmem_llm)
    locmem_llm.script.append(tool_call("handoff_to_operator", reason="просит человека"))
    ask(dialog, "хочу обсудить заказ")
    before_hand_off = locmem_llm.requests[-1]["messages"][0]["content"]
    return_to_bot(conversation=dialog)
    locmem_llm.script.append(ChatResult(text="Здравствуйте!"))

    ask(dialog, "снова я")

    assert "Последние показанные товары" in before_hand_off
    assert "Последние показанные товары" not in locmem_llm.requests[-1]["messages"][0]["content"]
