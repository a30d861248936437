"""The assistant against a local OpenAI-compatible server: the real openai
client, real HTTP, the demo catalog."""

import pytest

from bots.models import AssistantSettings
from bots.prompt import estimate_messages
from bots.tools import TOOLS
from catalog.models import Product
from conversations.models import Message
from conversations.services import get_or_create_conversation, record_incoming
from integrations.answering import respond

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")


@pytest.fixture(autouse=True)
def openai_settings(settings, openai_server, db):
    settings.OPENAI_BASE_URL = openai_server.url
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.LLM_TIMEOUT_S = 1.0
    config = AssistantSettings.load()
    config.provider = "openai"
    config.model = "model-a"
    config.save()


@pytest.fixture
def dialog(db):
    return get_or_create_conversation(channel="telegram", external_id="chat-42")


def ask(conversation, text):
    message, _ = record_incoming(conversation=conversation, text=text)
    return respond(message)


def sent_messages(server, n):
    return server.requests[n]["body"]["messages"]


def test_tools_are_offered_to_the_model(dialog, openai_server):
    openai_server.reply_text("Здравствуйте! Чем помочь?")

    ask(dialog, "привет")

    tools = openai_server.requests[0]["body"]["tools"]
    assert {t["function"]["name"] for t in tools} == {
        "search_catalog",
        "get_product",
        "lookup_faq",
        "handoff_to_operator",
    }


def test_tool_call_is_run_and_its_result_sent_back_then_the_answer_delivered(dialog, openai_server, locmem_channels):
    caviar = Product.objects.get(sku="MR-00009")
    openai_server.reply_tool_call("search_catalog", {"query": "икра нерки", "in_stock_only": True})
    openai_server.reply_text(f"Рекомендую [[product:{caviar.id}]].")

    reply = ask(dialog, "Хочу икру нерки")

    follow_up = sent_messages(openai_server, 1)
    assert follow_up[-2]["tool_calls"][0]["function"]["name"] == "search_catalog"
    assert follow_up[-1]["role"] == "tool"
    assert f'"id": {caviar.id}' in follow_up[-1]["content"]
    assert reply.reply_kind == Message.ReplyKind.LLM
    assert locmem_channels.outbox[-1].text == reply.text
    assert reply.text.startswith("Рекомендую Икра нерки, 100 г — 1\u00a0890\u00a0₽")
    assert caviar.url in reply.text


def test_earlier_turns_are_sent_as_history(dialog, openai_server):
    openai_server.reply_text("У нас есть икра горбуши и кеты.")
    openai_server.reply_text("Доставляем ежедневно.")
    ask(dialog, "Какая икра есть?")

    ask(dialog, "А доставка когда?")

    turns = [(m["role"], m["content"]) for m in sent_messages(openai_server, 1)[1:]]
    assert turns == [
        ("user", "Какая икра есть?"),
        ("assistant", "У нас есть икра горбуши и кеты."),
        ("user", "А доставка когда?"),
    ]


def test_request_stays_within_the_prompt_budget(dialog, openai_server, settings):
    settings.LLM_MAX_PROMPT_TOKENS = 1500
    for n in range(30):
        record_incoming(conversation=dialog, text=f"Вопрос номер {n} про икру и креветки, " * 4)
    openai_server.reply_text("Ответ.")

    ask(dialog, "Последний вопрос")

    messages = sent_messages(openai_server, 0)
    assert estimate_messages(messages, TOOLS) <= 1500
    assert messages[-1]["content"] == "Последний вопрос"
    assert "Вопрос номер 29" in messages[-2]["content"]  # the newest history is kept
    assert not any("Вопрос номер 0 " in m["content"] for m in messages)  # the oldest went first


@pytest.mark.parametrize("failure", ["error", "timeout"])
def test_server_failure_gives_the_catalog_answer_and_records_it(dialog, openai_server, failure):
    if failure == "error":
        openai_server.reply_error(500)
        openai_server.reply_error(500)  # the one retry
    else:
        openai_server.reply_delay(3)
        openai_server.reply_delay(3)

    reply = ask(dialog, "сколько стоит доставка?")

    assert reply.reply_kind == Message.ReplyKind.FALLBACK
    assert "390 ₽" in reply.text
    assert reply.llm_error
    assert "sk-test-key" not in reply.llm_error


def test_model_switched_in_settings_is_used_for_the_next_message(dialog, openai_server):
    openai_server.reply_text("Первый ответ.")
    openai_server.reply_text("Второй ответ.")
    ask(dialog, "привет")
    config = AssistantSettings.load()
    config.model = "model-b"
    config.save()

    reply = ask(dialog, "как дела?")

    assert [r["body"]["model"] for r in openai_server.requests] == ["model-a", "model-b"]
    assert reply.llm_model == "model-b"


def test_provider_switched_off_in_settings_stops_calling_the_model(dialog, openai_server):
    config = AssistantSettings.load()
    config.provider = ""
    config.save()

    reply = ask(dialog, "сколько стоит доставка?")

    assert openai_server.requests == []
    assert reply.reply_kind == Message.ReplyKind.FAQ


def test_an_earlier_voice_message_is_in_the_history_as_its_transcript(dialog, openai_server):
    voice, _ = record_incoming(conversation=dialog, text="", attachments=[{"kind": "voice", "file_id": "v1"}])
    voice.transcript = "Какая икра есть?"
    voice.save(update_fields=["transcript"])
    record_incoming(conversation=dialog, text="", attachments=[{"kind": "sticker", "file_id": "s1"}])
    openai_server.reply_text("Доставляем ежедневно.")

    ask(dialog, "А доставка когда?")

    turns = [(m["role"], m["content"]) for m in sent_messages(openai_server, 0)[1:]]
    assert turns == [("user", "Какая икра есть?"), ("user", "А доставка когда?")]
