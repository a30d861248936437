"""Recorded Telegram updates through the whole path: the webhook, the worker
(django-q2's sync mode), the assistant, the real TelegramSender and client,
with the Bot API stubbed at the HTTP layer by `responses`."""

import json
import logging
from pathlib import Path

import pytest
import responses
from django.core.cache import cache
from django_q.conf import Conf
from django_q.models import Schedule

from bots.llm import ChatResult
from bots.llm import locmem as llm
from bots.models import AssistantSettings
from conversations.models import Conversation, Message

pytestmark = pytest.mark.usefixtures("demo_store")

TOKEN = "6891234567:AAHk-e2e-SecretPartOfTheToken-xyz"
SECRET = "tg-e2e-webhook-secret-0123456789"
API = "https://api.telegram.test"
BOT = f"{API}/bot{TOKEN}"
FIXTURES = Path(__file__).parent / "fixtures"
CHAT = 384912765
SLEEPS: list[float] = []

from integrations.telegram.sender import TelegramSender  # noqa: E402


class RecordingSender(TelegramSender):
    """The real sender; its client's waits are recorded instead of slept."""

    client_options = {"sleep": SLEEPS.append, "backoff": 0}


@pytest.fixture(autouse=True)
def telegram(settings, monkeypatch):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    settings.TELEGRAM_API_URL = API
    settings.TELEGRAM_RATE_PER_BOT_PER_S = 0
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 0
    settings.CHANNEL_SENDERS = {"telegram": f"{__name__}.RecordingSender"}
    monkeypatch.setattr(Conf, "SYNC", True)
    SLEEPS.clear()
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def scripted_llm(db):
    """The assistant answers through the in-memory LLM provider with scripted texts."""
    llm.script.clear()
    llm.requests.clear()
    config = AssistantSettings.load()
    config.provider = "locmem"
    config.model = "test-model"
    config.max_reply_chars = 6000
    config.save()
    yield llm.script
    llm.script.clear()


@pytest.fixture
def mock():
    """The Bot API, stubbed; unregistered URLs fail as a refused connection would."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as stub:
        yield stub


def update(name: str = "message_text.json", text: str | None = None) -> dict:
    payload = json.loads((FIXTURES / name).read_text())
    if text is not None:
        payload["message"]["text"] = text
    return payload


def post(client, payload: dict):
    return client.post(
        "/tg/webhook",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=SECRET,
    )


def sent_message(text: str = "ok", message_id: int = 2001) -> dict:
    return {"ok": True, "result": {"message_id": message_id, "chat": {"id": CHAT, "type": "private"}, "text": text}}


def calls(mock, method: str) -> list[dict]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url == f"{BOT}/{method}"]


def test_customer_question_gets_one_html_reply_with_a_keyboard(mock, client):
    mock.post(f"{BOT}/sendMessage", json=sent_message())
    mock.post(f"{BOT}/sendMediaGroup", json={"ok": True, "result": [{"message_id": 2000}]})
    mock.post(f"{BOT}/sendPhoto", json=sent_message())
    post(client, update(text="Есть икра кеты?"))

    [reply] = calls(mock, "sendMessage")
    assert reply["chat_id"] == CHAT
    assert reply["parse_mode"] == "HTML"
    assert "<b>" in reply["text"]
    rows = reply["reply_markup"]["inline_keyboard"]
    assert any("url" in button for row in rows for button in row)
    assert rows[-1][0] == {"text": "Позвать оператора", "callback_data": "op"}
    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.SENT


def test_products_with_pictures_come_as_an_album_before_the_text(mock, client):
    mock.post(f"{BOT}/sendMediaGroup", json={"ok": True, "result": [{"message_id": 2000}, {"message_id": 2001}]})
    mock.post(f"{BOT}/sendMessage", json=sent_message(message_id=2002))
    post(client, update(text="креветки"))

    [album] = calls(mock, "sendMediaGroup")
    assert 2 <= len(album["media"]) <= 10
    assert all(item["type"] == "photo" and item["media"].startswith("http") for item in album["media"])
    assert [c.request.url.rsplit("/", 1)[1] for c in mock.calls] == ["sendMediaGroup", "sendMessage"]


def test_model_text_is_escaped_for_telegrams_html(mock, client, scripted_llm):
    scripted_llm.append(ChatResult(text="Привезём курьером <script>alert(1)</script> & можно забрать самим."))
    mock.post(f"{BOT}/sendMessage", json=sent_message())
    post(client, update(text="как доставляете?"))

    [reply] = calls(mock, "sendMessage")
    assert "<script>" not in reply["text"]
    assert "&lt;script&gt;" in reply["text"]
    assert "&amp; можно забрать" in reply["text"]


def test_a_5000_character_answer_is_sent_in_parts_split_at_paragraphs(mock, client, scripted_llm):
    paragraphs = [f"Абзац {n}. " + "Свежая рыба и морепродукты каждый день. " * 24 for n in range(5)]
    long_text = "\n\n".join(paragraphs)
    assert len(long_text) > 4096
    scripted_llm.append(ChatResult(text=long_text))
    mock.post(f"{BOT}/sendMessage", json=sent_message())
    post(client, update(text="расскажите о магазине"))

    parts = [c["text"] for c in calls(mock, "sendMessage")]
    assert len(parts) == 2
    assert all(len(p) <= 4096 for p in parts)
    assert parts[1].startswith("Абзац")
    assert "reply_markup" in calls(mock, "sendMessage")[-1]


def test_a_429_is_retried_after_the_time_telegram_asks(mock, client):
    mock.post(
        f"{BOT}/sendMessage",
        status=429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
    )
    mock.post(f"{BOT}/sendMessage", json=sent_message())
    mock.post(f"{BOT}/sendMediaGroup", json={"ok": True, "result": [{"message_id": 2000}]})
    mock.post(f"{BOT}/sendPhoto", json=sent_message())
    post(client, update(text="доставка"))

    assert SLEEPS == [7]
    assert len(calls(mock, "sendMessage")) == 2
    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.SENT


def test_a_customer_who_blocked_the_bot_is_not_retried_and_the_dialog_is_marked(mock, client):
    mock.post(
        f"{BOT}/sendMessage",
        status=403,
        json={"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    post(client, update(text="доставка"))

    assert len(calls(mock, "sendMessage")) == 1
    assert Conversation.objects.get().blocked_at is not None
    reply = Message.objects.get(author=Message.Author.BOT)
    assert reply.delivery_state == Message.Delivery.FAILED
    assert not Schedule.objects.filter(name__startswith="retry").exists()


def test_a_button_press_is_acknowledged_then_answered_like_its_question(mock, client):
    mock.post(f"{BOT}/sendMessage", json=sent_message())
    response = post(client, update("callback_query.json"))

    assert response.json()["method"] == "answerCallbackQuery"
    [reply] = calls(mock, "sendMessage")
    assert "Доставляем" in reply["text"]  # the delivery FAQ answers «Доставка»


def test_the_operator_button_tells_the_operators_group(mock, client, settings):
    settings.TELEGRAM_OPERATOR_CHAT_ID = "-1001234567890"
    mock.post(f"{BOT}/sendMessage", json=sent_message())
    post(client, update("callback_query_operator.json"))

    chats = [c["chat_id"] for c in calls(mock, "sendMessage")]
    assert sorted(map(str, chats)) == sorted(["-1001234567890", str(CHAT)])
    notice = next(c for c in calls(mock, "sendMessage") if str(c["chat_id"]) == "-1001234567890")
    assert "/admin/conversations/conversation/" in notice["text"]
    assert Conversation.objects.get().state == Conversation.State.OPERATOR


def test_the_token_is_in_no_log_line(mock, client, caplog):
    caplog.set_level(logging.DEBUG)
    mock.post(
        f"{BOT}/sendMessage",
        status=502,
        body=f"<html>Bad gateway for /bot{TOKEN}/sendMessage</html>",
    )
    post(client, update(text="доставка"))

    secret_part = TOKEN.partition(":")[2]
    assert caplog.records
    assert all(secret_part not in record.getMessage() for record in caplog.records)
    reply = Message.objects.get(author=Message.Author.BOT)
    assert secret_part not in reply.delivery_error


# Voice ------------------------------------------------------------------------------

VOICE_FILE = "voice/file_7.oga"
AUDIO = b"OggS\x00\x02" + bytes(range(200))


@pytest.fixture
def stt(settings, mock, stt_server):
    server = stt_server
    mock.add_passthru(server.url)
    settings.STT_PROVIDER = "openai"
    settings.STT_BASE_URL = server.url
    settings.STT_API_KEY = ""
    settings.STT_RETRY_BACKOFF_S = 0
    return server


def voice_file(mock):
    mock.post(
        f"{BOT}/getFile", json={"ok": True, "result": {"file_id": "x", "file_path": VOICE_FILE, "file_size": 206}}
    )
    mock.get(f"{API}/file/bot{TOKEN}/{VOICE_FILE}", body=AUDIO, content_type="audio/ogg")


def test_a_voice_message_is_transcribed_and_answered(mock, client, stt):
    stt.reply_text("Какая икра есть в наличии?")
    voice_file(mock)
    mock.post(f"{BOT}/sendMessage", json=sent_message())
    mock.post(f"{BOT}/sendMediaGroup", json={"ok": True, "result": [{"message_id": 2000}]})
    mock.post(f"{BOT}/sendPhoto", json=sent_message())

    post(client, update("message_voice.json"))

    [request] = stt.requests
    assert request["file"]["data"] == AUDIO
    assert request["fields"]["language"] == "ru"
    voice = Message.objects.get(direction=Message.Direction.IN)
    assert voice.transcript == "Какая икра есть в наличии?"
    [reply] = calls(mock, "sendMessage")
    assert "Икра" in reply["text"]


def test_stt_down_gets_a_polite_reply_not_silence(mock, client, stt):
    stt.reply_error(500)
    stt.reply_error(503)
    voice_file(mock)
    mock.post(f"{BOT}/sendMessage", json=sent_message())

    post(client, update("message_voice.json"))

    [reply] = calls(mock, "sendMessage")
    assert reply["text"] == AssistantSettings.load().voice_failed_text
    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.SENT
