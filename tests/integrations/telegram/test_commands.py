"""manage.py tg_set_webhook, tg_delete_webhook and tg_polling against the Bot API stubbed with `responses`."""

import json
from io import StringIO
from pathlib import Path

import pytest
import responses
from django.core.management import CommandError, call_command
from django_q.conf import Conf

from conversations.models import ChannelAccount, Message

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")

TOKEN = "6891234567:AAHk-command-token-abcdefghijklmn"
API = f"https://api.telegram.test/bot{TOKEN}"
FIXTURES = Path(__file__).parent / "fixtures"
ME = {"id": 6891234567, "is_bot": True, "first_name": "Морепродукты", "username": "seafood_shop_bot"}


@pytest.fixture(autouse=True)
def bot(settings, monkeypatch):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_WEBHOOK_SECRET = "env-webhook-secret-123"
    settings.TELEGRAM_API_URL = "https://api.telegram.test"
    settings.PUBLIC_URL = "https://bot.shop.example"
    settings.TELEGRAM_RATE_PER_BOT_PER_S = 0
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 0
    monkeypatch.setattr(Conf, "SYNC", True)


def ok(result):
    return {"ok": True, "result": result}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@responses.activate
def test_set_webhook_sends_the_url_secret_and_updates_we_handle():
    responses.post(f"{API}/getMe", json=ok(ME))
    hook = responses.post(f"{API}/setWebhook", json=ok(True))
    out = StringIO()

    call_command("tg_set_webhook", stdout=out)

    sent = json.loads(hook.calls[0].request.body)
    assert sent["url"] == "https://bot.shop.example/tg/webhook"
    assert sent["secret_token"] == "env-webhook-secret-123"
    assert set(sent["allowed_updates"]) == {"message", "edited_message", "callback_query", "my_chat_member"}
    assert "@seafood_shop_bot" in out.getvalue()
    assert TOKEN not in out.getvalue()


@responses.activate
def test_set_webhook_can_drop_pending_updates():
    responses.post(f"{API}/getMe", json=ok(ME))
    hook = responses.post(f"{API}/setWebhook", json=ok(True))

    call_command("tg_set_webhook", "--drop-pending-updates", stdout=StringIO())

    assert json.loads(hook.calls[0].request.body)["drop_pending_updates"] is True


@responses.activate
def test_a_bot_account_without_a_secret_gets_one_made_and_stored():
    token = "7000000001:AAsecond-bot-token-xyz"
    ChannelAccount.objects.create(channel="telegram", key="second", token=token)
    responses.post(f"https://api.telegram.test/bot{token}/getMe", json=ok({**ME, "username": "second_bot"}))
    hook = responses.post(f"https://api.telegram.test/bot{token}/setWebhook", json=ok(True))

    call_command("tg_set_webhook", "--account", "second", stdout=StringIO())

    account = ChannelAccount.objects.get(key="second")
    sent = json.loads(hook.calls[0].request.body)
    assert sent["url"] == "https://bot.shop.example/tg/second/webhook"
    assert len(account.webhook_secret) >= 32
    assert sent["secret_token"] == account.webhook_secret
    assert account.options["username"] == "second_bot"


def test_the_env_bot_without_a_secret_is_refused(settings):
    settings.TELEGRAM_WEBHOOK_SECRET = ""

    with pytest.raises(CommandError, match="TELEGRAM_WEBHOOK_SECRET"):
        call_command("tg_set_webhook", stdout=StringIO())


@responses.activate
def test_a_refused_set_webhook_is_a_command_error_without_the_token():
    responses.post(f"{API}/getMe", json=ok(ME))
    responses.post(
        f"{API}/setWebhook",
        status=400,
        json={"ok": False, "error_code": 400, "description": "Bad Request: bad webhook: HTTPS url must be provided"},
    )

    with pytest.raises(CommandError) as failure:
        call_command("tg_set_webhook", "--url", "http://insecure.example/tg/webhook", stdout=StringIO())

    assert TOKEN not in str(failure.value)


@responses.activate
def test_delete_webhook():
    deleted = responses.post(f"{API}/deleteWebhook", json=ok(True))

    call_command("tg_delete_webhook", stdout=StringIO())

    assert len(deleted.calls) == 1


@responses.activate
def test_polling_takes_updates_into_the_same_pipeline(locmem_channels):
    polled = responses.post(f"{API}/getUpdates", json=ok([fixture("message_text.json")]))

    call_command("tg_polling", "--once", stdout=StringIO())

    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1
    assert len(locmem_channels.outbox) == 1
    assert "offset" not in json.loads(polled.calls[0].request.body)


@responses.activate
def test_polling_resumes_after_the_last_update_it_took():
    update = fixture("message_text.json")
    polled = responses.post(f"{API}/getUpdates", json=ok([update]))

    call_command("tg_polling", "--once", stdout=StringIO())
    call_command("tg_polling", "--once", stdout=StringIO())

    assert json.loads(polled.calls[1].request.body)["offset"] == update["update_id"] + 1
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


@responses.activate
def test_polling_answers_a_button_press_through_the_api(locmem_channels):
    responses.post(f"{API}/getUpdates", json=ok([fixture("callback_query.json")]))
    answered = responses.post(f"{API}/answerCallbackQuery", json=ok(True))

    call_command("tg_polling", "--once", stdout=StringIO())

    assert json.loads(answered.calls[0].request.body)["callback_query_id"] == "1653402367231045123"
    assert len(locmem_channels.outbox) == 1


@responses.activate
def test_polling_while_a_webhook_is_set_says_so():
    responses.post(
        f"{API}/getUpdates",
        status=409,
        json={
            "ok": False,
            "error_code": 409,
            "description": "Conflict: can't use getUpdates method while webhook is active",
        },
    )

    with pytest.raises(CommandError, match="getUpdates failed"):
        call_command("tg_polling", "--once", stdout=StringIO())
