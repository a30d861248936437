"""manage.py b24_bind_deal_events: the deal events bound on each installed portal, or how to with a webhook."""

import io

import pytest
import responses
from django.core.management import CommandError, call_command
from responses import matchers

from integrations.bitrix24.models import Portal

pytestmark = pytest.mark.django_db

ENDPOINT = "https://shop.bitrix24.test/rest/"
HANDLER = "https://bot.example.test/b24/crm/events"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.PUBLIC_URL = "https://bot.example.test"


@pytest.fixture
def installed(db):
    return Portal.objects.create(
        member_id="m-1", domain="shop.bitrix24.test", client_endpoint=ENDPOINT, access_token="app-access-t0ken"
    )


def run(*args) -> str:
    out = io.StringIO()
    call_command("b24_bind_deal_events", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_handler_is_bound_on_an_installed_portal(installed):
    with responses.RequestsMock() as http:
        http.post(
            f"{ENDPOINT}event.bind.json",
            json={"result": True},
            match=[matchers.json_params_matcher({"event": "ONCRMDEALUPDATE", "handler": HANDLER}, strict_match=False)],
        )

        assert "now goes to" in run()


def test_a_handler_bound_before_is_fine(installed):
    with responses.RequestsMock() as http:
        http.post(
            f"{ENDPOINT}event.bind.json",
            json={"error": "ERROR_CORE", "error_description": "Handler already binded"},
            status=400,
        )

        assert "already goes to" in run()


def test_a_refusal_fails_the_command(installed):
    with responses.RequestsMock() as http:
        http.post(f"{ENDPOINT}event.bind.json", json={"error": "insufficient_scope"}, status=401)

        with pytest.raises(CommandError):
            run()


def test_without_an_app_it_says_how_to_set_up_an_outgoing_webhook():
    output = run()

    assert HANDLER in output
    assert "B24_CRM_EVENTS_TOKEN" in output


def test_a_handler_that_is_not_https_is_refused(settings):
    settings.PUBLIC_URL = "http://127.0.0.1:8000"

    with pytest.raises(CommandError):
        run()
