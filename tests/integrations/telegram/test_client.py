"""The Telegram Bot API client: calls, the error mapping, retries, rate limits, downloads, the token kept secret.

The Bot API is stubbed at the HTTP layer with `responses`; waiting goes
through an injected `sleep` that only records, and a fixed `clock` where the
rate limit matters.
"""

import io
import json
import logging

import pytest
import requests
import responses
from django.core.cache import cache

from conversations.models import ChannelAccount
from integrations.telegram.client import CHAT_BURST, TelegramClient, TelegramError

TOKEN = "123456789:AAHsecretPartOfTheBotToken_abcdefghij"
SECRET = TOKEN.partition(":")[2]
API = "https://api.telegram.test"


@pytest.fixture(autouse=True)
def telegram_settings(settings):
    settings.TELEGRAM_API_URL = API
    settings.TELEGRAM_TIMEOUT_S = 7.0
    # Roomy limits, so only the tests about them ever wait.
    settings.TELEGRAM_RATE_PER_BOT_PER_S = 1000.0
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 1000.0
    settings.TELEGRAM_BOT_TOKEN = ""
    # The buckets live in the cache, which outlives a test.
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    return TelegramClient(TOKEN, backoff=0, sleep=sleeps.append)


def url(method: str, token: str = TOKEN) -> str:
    return f"{API}/bot{token}/{method}"


def ok(api, method: str, result=True, token: str = TOKEN):
    api.post(url(method, token), json={"ok": True, "result": result})


def fail(api, method: str, error_code: int, description: str, status: int | None = None, **parameters):
    body = {"ok": False, "error_code": error_code, "description": description}
    if parameters:
        body["parameters"] = parameters
    api.post(url(method), json=body, status=status or error_code)


def body(call) -> dict:
    return json.loads(call.request.body)


def assert_no_token(*texts):
    for text in texts:
        assert TOKEN not in text
        assert SECRET not in text


# Calls ------------------------------------------------------------------------------


def test_call_posts_json_and_returns_the_result(api, client):
    ok(api, "getMe", {"id": 123456789, "is_bot": True, "username": "shop_bot"})

    assert client.get_me() == {"id": 123456789, "is_bot": True, "username": "shop_bot"}
    request = api.calls[0].request
    assert request.method == "POST"
    assert request.url == url("getMe")
    assert request.headers["User-Agent"].startswith("storebot/")
    assert request.req_kwargs["timeout"] == 7.0


def test_send_message_params_leave_out_what_is_not_given(api, client):
    ok(api, "sendMessage", {"message_id": 10})

    client.send_message(42, "<b>Привет</b>", disable_link_preview=True)

    assert body(api.calls[0]) == {
        "chat_id": 42,
        "text": "<b>Привет</b>",
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }


def test_media_group_answers_with_every_message(api, client):
    ok(api, "sendMediaGroup", [{"message_id": 1}, {"message_id": 2}])

    media = [{"type": "photo", "media": "https://shop.example/a.jpg"}] * 2
    assert client.send_media_group(42, media) == [{"message_id": 1}, {"message_id": 2}]
    assert body(api.calls[0]) == {"chat_id": 42, "media": media}


def test_send_photo_and_answer_callback_query(api, client):
    ok(api, "sendPhoto", {"message_id": 3})
    ok(api, "answerCallbackQuery")

    client.send_photo(42, "https://shop.example/a.jpg", caption="<b>Икра</b>")
    client.answer_callback_query("cb-1", "Готово")

    assert body(api.calls[0]) == {
        "chat_id": 42,
        "photo": "https://shop.example/a.jpg",
        "caption": "<b>Икра</b>",
        "parse_mode": "HTML",
    }
    assert body(api.calls[1]) == {"callback_query_id": "cb-1", "text": "Готово"}


def test_set_and_delete_webhook(api, client):
    ok(api, "setWebhook")
    ok(api, "deleteWebhook")

    assert client.set_webhook(
        "https://bot.example/tg/default/webhook",
        secret_token="hook-secret-123",
        allowed_updates=["message", "callback_query"],
        drop_pending_updates=True,
    )
    client.delete_webhook()

    assert body(api.calls[0]) == {
        "url": "https://bot.example/tg/default/webhook",
        "secret_token": "hook-secret-123",
        "allowed_updates": ["message", "callback_query"],
        "drop_pending_updates": True,
    }
    assert body(api.calls[1]) == {}


def test_long_polling_waits_longer_than_the_poll(api, client):
    ok(api, "getUpdates", [{"update_id": 5}])

    assert client.get_updates(offset=5, timeout=50, allowed_updates=["message"]) == [{"update_id": 5}]

    call = api.calls[0]
    assert body(call) == {"offset": 5, "timeout": 50, "allowed_updates": ["message"]}
    assert call.request.req_kwargs["timeout"] > 50


def test_a_method_name_is_checked_before_it_becomes_a_path(client):
    with pytest.raises(ValueError):
        client.call("getMe/../../file")


# Answers ---------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(api, client, sleeps):
    fail(api, "sendMessage", 429, "Too Many Requests: retry after 5", retry_after=5)
    ok(api, "sendMessage", {"message_id": 11})

    assert client.send_message(42, "hi") == {"message_id": 11}
    assert sleeps == [5.0]
    assert len(api.calls) == 2


def test_429_beyond_the_ceiling_goes_to_the_caller_with_its_wait(api, sleeps):
    client = TelegramClient(TOKEN, backoff=0, sleep=sleeps.append, max_wait=30)
    fail(api, "sendMessage", 429, "Too Many Requests: retry after 120", retry_after=120)

    with pytest.raises(TelegramError) as caught:
        client.send_message(42, "hi")

    assert caught.value.retry_after == 120
    assert not caught.value.permanent
    assert sleeps == []
    assert len(api.calls) == 1


def test_server_errors_are_retried(api, client):
    fail(api, "sendMessage", 502, "Bad Gateway")
    api.post(url("sendMessage"), body="<html>oops</html>", status=500)
    ok(api, "sendMessage", {"message_id": 12})

    assert client.send_message(42, "hi") == {"message_id": 12}
    assert len(api.calls) == 3


def test_server_errors_give_up_after_the_attempts(api, client):
    for _ in range(3):
        fail(api, "sendMessage", 502, "Bad Gateway")

    with pytest.raises(TelegramError) as caught:
        client.send_message(42, "hi")

    assert caught.value.code == "HTTP_502"
    assert not caught.value.permanent


def test_blocked_by_the_user_is_permanent_and_not_retried(api, client):
    fail(api, "sendMessage", 403, "Forbidden: bot was blocked by the user")

    with pytest.raises(TelegramError) as caught:
        client.send_message(42, "hi")

    error = caught.value
    assert (error.code, error.error_code, error.permanent, error.blocked) == ("HTTP_403", 403, True, True)
    assert len(api.calls) == 1


@pytest.mark.parametrize(
    ("code", "description", "blocked"),
    [
        (400, "Bad Request: USER_IS_BLOCKED", True),
        (403, "Forbidden: user is deactivated", True),
        (400, "Bad Request: chat not found", False),
        (403, "Forbidden: bot can't initiate conversation with a user", False),
    ],
)
def test_other_client_errors_are_permanent(api, client, code, description, blocked):
    fail(api, "sendMessage", code, description)

    with pytest.raises(TelegramError) as caught:
        client.send_message(42, "hi")

    assert caught.value.permanent
    assert caught.value.blocked is blocked
    assert caught.value.description == description


def test_a_group_that_became_a_supergroup_is_noted(api, client, caplog):
    fail(api, "sendMessage", 400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1001)

    with pytest.raises(TelegramError) as caught:
        client.send_message(-5, "hi")

    assert caught.value.migrate_to_chat_id == -1001
    assert "-1001" in caplog.text


# Rate limits -----------------------------------------------------------------------


def test_the_per_chat_limit_is_shared_by_two_clients_of_one_bot(api, settings):
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 1.0
    now = 1_700_000_000.0
    first_sleeps, second_sleeps = [], []
    first = TelegramClient(TOKEN, sleep=first_sleeps.append, clock=lambda: now)
    second = TelegramClient(TOKEN, sleep=second_sleeps.append, clock=lambda: now)
    for _ in range(CHAT_BURST + 2):
        ok(api, "sendMessage", {"message_id": 1})

    for _ in range(CHAT_BURST):
        first.send_message(42, "hi")
    second.send_message(42, "hi")  # the same chat of the same bot: waits its turn
    second.send_message(43, "hi")  # another chat: does not

    assert first_sleeps == []
    assert second_sleeps == [pytest.approx(1.0)]


def test_another_bot_has_its_own_chat_limit(api, settings):
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 1.0
    now = 1_700_000_000.0
    sleeps = []
    other_token = "987654321:AAHanotherBotsSecretToken_klmnopqrs"
    first = TelegramClient(TOKEN, sleep=sleeps.append, clock=lambda: now)
    other = TelegramClient(other_token, sleep=sleeps.append, clock=lambda: now)
    for _ in range(CHAT_BURST):
        ok(api, "sendMessage", {"message_id": 1})
    ok(api, "sendMessage", {"message_id": 1}, token=other_token)

    for _ in range(CHAT_BURST):
        first.send_message(42, "hi")
    other.send_message(42, "hi")

    assert sleeps == []


def test_every_call_takes_from_the_bot_limit(api, settings, sleeps):
    settings.TELEGRAM_RATE_PER_BOT_PER_S = 2.0
    now = 1_700_000_000.0
    client = TelegramClient(TOKEN, sleep=sleeps.append, clock=lambda: now)
    for _ in range(3):
        ok(api, "getMe", {"id": 1})

    for _ in range(3):
        client.get_me()

    assert sleeps == [pytest.approx(0.5)]


# Accounts ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_account_sends_with_its_own_token(api):
    account = ChannelAccount.objects.create(channel="telegram", key="second", token=TOKEN)
    ok(api, "getMe", {"id": 1})

    TelegramClient.for_account(account).get_me()

    assert api.calls[0].request.url == url("getMe")


@pytest.mark.django_db
def test_the_default_account_falls_back_to_the_environment(api, settings):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    account = ChannelAccount.objects.create(channel="telegram", key=ChannelAccount.DEFAULT_KEY)
    ok(api, "getMe", {"id": 1})

    TelegramClient.for_account(account).get_me()

    assert api.calls[0].request.url == url("getMe")


@pytest.mark.django_db
def test_another_account_without_a_token_is_not_configured(settings):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    account = ChannelAccount.objects.create(channel="telegram", key="second")

    with pytest.raises(TelegramError) as caught:
        TelegramClient.for_account(account)

    assert caught.value.code == "NOT_CONFIGURED"
    assert caught.value.permanent


# The token stays secret ----------------------------------------------------------------


def test_repr_names_the_bot_not_the_token(client):
    assert repr(client) == "TelegramClient(bot=123456789)"
    assert repr(client.http) == "OutboundHttp(telegram)"


def test_the_token_is_in_no_error_nor_log_line(api, client, caplog):
    caplog.set_level(logging.DEBUG)
    # A description that quotes the request's URL, a lost connection whose text holds it.
    fail(api, "sendMessage", 400, f"Bad Request: cannot fetch {url('sendMessage')} for {SECRET}")
    api.post(url("getMe"), body=requests.ConnectionError(f"Max retries exceeded with url: {url('getMe')}"))
    api.post(url("getMe"), body=requests.ConnectionError(f"Max retries exceeded with url: {url('getMe')}"))
    api.post(url("getMe"), body=requests.ReadTimeout(f"Read timed out: {url('getMe')}"))

    errors = []
    for attempt in (lambda: client.send_message(42, "hi"), client.get_me):
        with pytest.raises(TelegramError) as caught:
            attempt()
        errors.append(caught.value)

    assert [e.code for e in errors] == ["HTTP_400", "TIMEOUT"]
    assert_no_token(*(str(e) for e in errors), *(repr(e) for e in errors), *(e.description for e in errors))
    assert_no_token(*(record.getMessage() for record in caplog.records))
    assert "***" in errors[0].description


def test_urllib3_request_lines_lose_the_token(caplog):
    # Settings keep urllib3 at WARNING; should anyone turn its DEBUG on, the request lines are filtered.
    caplog.set_level(logging.DEBUG, logger="urllib3")

    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s', "https", "api.telegram.org", 443, "POST", f"/bot{TOKEN}/getMe", "HTTP/1.1", 200
    )

    (record,) = [r for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert_no_token(record.getMessage())
    assert "/bot***/getMe" in record.getMessage()


# Files ------------------------------------------------------------------------------------


def file_url(path: str) -> str:
    return f"{API}/file/bot{TOKEN}/{path}"


def test_get_file_and_download(api, client):
    ok(api, "getFile", {"file_id": "F1", "file_size": 5, "file_path": "voice/file_7.oga"})
    api.get(file_url("voice/file_7.oga"), body=b"OggS!", auto_calculate_content_length=True)

    info = client.get_file("F1")
    assert client.download_file(info["file_path"], max_bytes=100) == b"OggS!"
    assert api.calls[1].request.req_kwargs["stream"] is True


def test_download_past_the_declared_size_is_refused_before_reading(api, client):
    api.get(file_url("voice/big.oga"), body=b"x" * 2000, auto_calculate_content_length=True)

    with pytest.raises(TelegramError) as caught:
        client.download_file("voice/big.oga", max_bytes=1000)

    assert caught.value.code == "FILE_TOO_LARGE"
    assert caught.value.permanent
    assert str(caught.value) == "FILE_TOO_LARGE: file too large (over 1000 bytes)"
    assert len(api.calls) == 1  # not retried


class EndlessAudio(io.RawIOBase):
    """A body with no Content-Length that never ends; counts what was read from it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = b"x" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


def test_download_stops_past_max_bytes_without_buffering_more(api, client):
    raw = EndlessAudio()
    api.get(file_url("voice/stream.oga"), body=io.BufferedReader(raw))

    with pytest.raises(TelegramError) as caught:
        client.download_file("voice/stream.oga", max_bytes=100_000)

    assert caught.value.code == "FILE_TOO_LARGE"
    assert raw.read_bytes < 100_000 + 4 * 64 * 1024


def test_a_failed_download_keeps_the_token_out(api, client, caplog):
    caplog.set_level(logging.DEBUG)
    api.get(file_url("voice/gone.oga"), json={"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
    lost_url = file_url("voice/lost.oga")
    for _ in range(3):
        api.get(lost_url, body=requests.ConnectionError(f"Connection aborted: {lost_url}"))

    with pytest.raises(TelegramError) as missing:
        client.download_file("voice/gone.oga", max_bytes=1000)
    with pytest.raises(TelegramError) as lost:
        client.download_file("voice/lost.oga", max_bytes=1000)

    assert (missing.value.code, missing.value.permanent) == ("HTTP_404", True)
    assert (lost.value.code, lost.value.permanent) == ("CONNECTION_ERROR", False)
    assert_no_token(str(missing.value), str(lost.value), *(r.getMessage() for r in caplog.records))
