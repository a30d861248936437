"""`manage.py b24_register_bot` against a stubbed portal."""

import json
from io import StringIO

import pytest
import responses
from django.core.management import CommandError, call_command

from integrations.bitrix24.models import Portal

pytestmark = pytest.mark.django_db

WEBHOOK = "https://portal.example/rest/1/secret123/"
EVENTS = "https://bot.example/b24/imbot/events"


def url(method: str) -> str:
    return f"{WEBHOOK}{method}.json"


@pytest.fixture(autouse=True)
def portal_settings(settings):
    settings.B24_WEBHOOK_URL = WEBHOOK
    settings.PUBLIC_URL = "https://bot.example/"
    settings.B24_IMBOT_ID = ""
    settings.B24_IMBOT_CODE = "storebot"
    settings.B24_IMBOT_NAME = "Консультант магазина"
    settings.B24_IMBOT_CLIENT_ID = ""
    settings.B24_RATE_LIMIT_PER_S = 0


@pytest.fixture
def portal():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(url("imbot.bot.list"), json={"result": {}})
        mock.post(url("imbot.register"), json={"result": 41})
        mock.post(url("imbot.update"), json={"result": True})
        mock.post(url("imbot.command.register"), json={"result": 5})
        yield mock


def sent(portal, method: str) -> list[dict]:
    return [json.loads(call.request.body) for call in portal.calls if call.request.url == url(method)]


def run(*args) -> str:
    out = StringIO()
    call_command("b24_register_bot", *args, stdout=out)
    return out.getvalue()


def test_registers_the_bot_with_the_events_url(portal):
    run()

    [body] = sent(portal, "imbot.register")
    assert body["CODE"] == "storebot"
    assert body["EVENT_MESSAGE_ADD"] == body["EVENT_WELCOME_MESSAGE"] == body["EVENT_BOT_DELETE"] == EVENTS
    assert body["OPENLINE"] == "Y"
    assert body["TYPE"] == "B"
    assert body["PROPERTIES"]["NAME"] == "Консультант магазина"


def test_prints_the_new_bot_id(portal):
    output = run()

    assert "B24_IMBOT_ID=41" in output


def test_webhook_registration_names_the_client_id(portal, settings):
    settings.B24_IMBOT_CLIENT_ID = "storebot-client"

    run()

    assert sent(portal, "imbot.register")[0]["CLIENT_ID"] == "storebot-client"


def test_registers_the_keyboard_commands_for_the_bot(portal):
    run()

    commands = sent(portal, "imbot.command.register")
    assert {(c["COMMAND"], c["BOT_ID"], c["EVENT_COMMAND_ADD"]) for c in commands} == {
        ("operator", 41, EVENTS),
        ("ask", 41, EVENTS),
    }


def test_configured_bot_is_updated_not_registered_again(portal, settings):
    settings.B24_IMBOT_ID = "41"

    run()

    [body] = sent(portal, "imbot.update")
    assert body["BOT_ID"] == 41
    assert body["FIELDS"]["EVENT_MESSAGE_ADD"] == EVENTS
    assert not sent(portal, "imbot.register")


def test_bot_found_by_its_code_is_updated(portal):
    portal.replace(
        responses.POST, url("imbot.bot.list"), json={"result": {"41": {"ID": 41, "CODE": "storebot", "NAME": "x"}}}
    )

    run()

    assert sent(portal, "imbot.update")[0]["BOT_ID"] == 41
    assert not sent(portal, "imbot.register")


def test_refuses_a_public_url_that_is_not_https(portal, settings):
    settings.PUBLIC_URL = "http://bot.example"

    with pytest.raises(CommandError, match="https"):
        run()

    assert not portal.calls


def test_http_is_accepted_when_allowed(portal, settings):
    settings.PUBLIC_URL = "http://bot.example"

    run("--allow-http")

    assert sent(portal, "imbot.register")[0]["EVENT_MESSAGE_ADD"] == "http://bot.example/b24/imbot/events"


def test_portal_refusal_is_a_command_error(portal):
    portal.replace(
        responses.POST,
        url("imbot.register"),
        json={"error": "EVENT_MESSAGE_ADD_ERROR", "error_description": "x"},
        status=400,
    )

    with pytest.raises(CommandError, match="EVENT_MESSAGE_ADD_ERROR"):
        run()


def test_bot_id_is_kept_on_the_oauth_portal(portal):
    Portal.objects.create(
        member_id="m1",
        domain="shop.bitrix24.ru",
        client_endpoint="https://shop.bitrix24.ru/rest/",
        access_token="tok-1",
    )
    portal.post("https://shop.bitrix24.ru/rest/imbot.bot.list.json", json={"result": {}})
    portal.post("https://shop.bitrix24.ru/rest/imbot.register.json", json={"result": 77})
    portal.post("https://shop.bitrix24.ru/rest/imbot.command.register.json", json={"result": 5})

    run("--member-id", "m1")

    assert Portal.objects.get(member_id="m1").bot_id == "77"
