"""Installing the app: the ONAPPINSTALL event, and the OAuth flow started at /b24/install.

Bitrix24's OAuth server is stubbed with `responses`; nothing else answers.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
import responses
from django.db import connection
from django.utils import timezone
from responses import matchers

from conversations.encryption import decrypt
from integrations.bitrix24.models import OAuthState, Portal

pytestmark = pytest.mark.django_db

URL = "/b24/imbot/events"
FIXTURES = Path(__file__).parent / "fixtures"
MEMBER = "5f0c6a9e2b3d4c1a8e7f6d5c4b3a2918"
DOMAIN = "seafood-shop.bitrix24.ru"
APP_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"
INSTALL_ACCESS = "9fcb01640061cdde0061551a00000001000007d3inst4llacc3ss"
INSTALL_REFRESH = "8f4a29640061cdde0061551a000000010000073dinst4llr3fr3sh"
CLIENT_ID = "local.6650a1b2c3d4e5.12345678"
TOKEN_URL = "https://oauth.example.test/oauth/token/"
APP_INFO_URL = "https://oauth.example.test/rest/app.info/"

# app.info on the OAuth server, for the installing user's token.
APP_INFO = {
    "result": {
        "client_id": CLIENT_ID,
        "scope": "imopenlines,imbot,im,user",
        "expires": 1772103600,
        "user_id": 1,
        "install": {
            "installed": True,
            "status": "L",
            "domain": DOMAIN,
            "member_id": MEMBER,
            "client_endpoint": f"https://{DOMAIN}/rest/",
        },
    }
}

# The OAuth server's answer to a code (settings/oauth/index.md).
TOKENS = {
    "access_token": "s1morf609228iwyjjpvfv6wsvuja4p8u",
    "client_endpoint": f"https://{DOMAIN}/rest/",
    "domain": "oauth.bitrix.info",
    "expires_in": 3600,
    "member_id": MEMBER,
    "refresh_token": "4f9k4jpmg13usmybzuqknt2v9fh0q6rl",
    "scope": "imbot,im,imopenlines",
    "server_endpoint": "https://oauth.bitrix.info/rest/",
    "status": "L",
}


@pytest.fixture(autouse=True)
def b24_app(settings):
    settings.B24_DOMAIN = DOMAIN
    settings.B24_CLIENT_ID = CLIENT_ID
    settings.B24_CLIENT_SECRET = "app-client-s3cr3t"
    settings.B24_OAUTH_TOKEN_URL = TOKEN_URL
    settings.B24_APPLICATION_TOKEN = ""
    return settings


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def changed(name: str, **fields) -> bytes:
    pairs = [(k, fields.get(k, v)) for k, v in parse_qsl(body(name).decode(), keep_blank_values=True)]
    return urlencode([(k, v) for k, v in pairs if v is not None]).encode()


def post(client, name: str = "", *, raw: bytes | None = None):
    return client.post(URL, data=body(name) if raw is None else raw, content_type="application/x-www-form-urlencoded")


def raw_columns(portal) -> dict:
    table = Portal._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT access_token, refresh_token, application_token FROM {table} WHERE id = %s", [portal.pk])
        return dict(zip(["access_token", "refresh_token", "application_token"], cursor.fetchone(), strict=True))


# ONAPPINSTALL ---------------------------------------------------------------


def test_install_with_a_valid_token_stores_the_portal(client, http):
    http.get(APP_INFO_URL, json=APP_INFO, match=[matchers.query_param_matcher({"auth": INSTALL_ACCESS})])

    response = post(client, "app_install.txt")

    assert (response.status_code, response.json()) == (200, {"status": "installed", "domain": DOMAIN})
    portal = Portal.objects.get(member_id=MEMBER)
    assert (portal.domain, portal.client_endpoint) == (DOMAIN, f"https://{DOMAIN}/rest/")
    assert (portal.access_token, portal.refresh_token, portal.application_token) == (
        INSTALL_ACCESS,
        INSTALL_REFRESH,
        APP_TOKEN,
    )


def test_install_keeps_tokens_encrypted_in_the_database(client, http):
    http.get(APP_INFO_URL, json=APP_INFO)

    post(client, "app_install.txt")

    stored = raw_columns(Portal.objects.get())
    assert INSTALL_ACCESS not in stored.values()
    assert APP_TOKEN not in stored.values()
    assert decrypt(stored["access_token"]) == INSTALL_ACCESS
    assert decrypt(stored["refresh_token"]) == INSTALL_REFRESH
    assert decrypt(stored["application_token"]) == APP_TOKEN


def test_install_keeps_expiry_and_scope(client, http):
    http.get(APP_INFO_URL, json=APP_INFO)

    post(client, "app_install.txt")

    portal = Portal.objects.get()
    assert portal.token_expires_at == datetime.fromtimestamp(1772103600, tz=UTC)
    assert portal.scope == "imopenlines,imbot,im,user"


def test_reinstall_updates_the_portal(client, http):
    Portal.objects.create(member_id=MEMBER, domain=DOMAIN, application_token="old-token", bot_id="1291")
    http.get(APP_INFO_URL, json=APP_INFO)

    post(client, "app_install.txt")

    portal = Portal.objects.get()
    assert (portal.application_token, portal.bot_id) == (APP_TOKEN, "1291")


def test_events_of_an_installed_portal_are_accepted(client, http, locmem_channels, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    http.get(APP_INFO_URL, json=APP_INFO)
    post(client, "app_install.txt")

    assert post(client, "message_add.txt").status_code == 200


def test_install_with_an_invalid_token_is_refused(client, http):
    http.get(APP_INFO_URL, status=401, json={"error": "invalid_token", "error_description": "Unable to authenticate"})

    response = post(client, "app_install.txt")

    assert response.status_code == 401
    assert response.json()["error"]
    assert Portal.objects.count() == 0


def test_install_with_a_token_of_another_portal_is_refused(client, http):
    other = {"result": {**APP_INFO["result"], "install": {**APP_INFO["result"]["install"], "domain": "evil.test"}}}
    http.get(APP_INFO_URL, json=other)

    assert post(client, "app_install.txt").status_code == 401
    assert Portal.objects.count() == 0


def test_install_with_a_token_of_another_member_is_refused(client, http):
    other = {"result": {**APP_INFO["result"], "install": {**APP_INFO["result"]["install"], "member_id": "x" * 32}}}
    http.get(APP_INFO_URL, json=other)

    assert post(client, "app_install.txt").status_code == 401
    assert Portal.objects.count() == 0


def test_install_without_an_access_token_is_refused_without_asking(client, http):
    response = post(client, raw=changed("app_install.txt", **{"auth[access_token]": None}))

    assert response.status_code == 401
    assert len(http.calls) == 0


def test_install_without_our_client_id_is_refused_naming_no_setting(client, http, settings):
    # Anyone can post an install: in webhook-only mode it is a 4xx that tells a stranger nothing.
    settings.B24_CLIENT_ID = ""
    http.get(APP_INFO_URL, json=APP_INFO)

    response = post(client, "app_install.txt")

    assert response.status_code == 403
    assert "B24_" not in response.json()["error"]
    assert Portal.objects.count() == 0


def test_install_when_the_oauth_server_is_down_is_a_json_502(client, http):
    http.get(APP_INFO_URL, status=503, json={"error": "QUERY_LIMIT_EXCEEDED"})

    assert post(client, "app_install.txt").status_code == 502
    assert Portal.objects.count() == 0


def test_install_refusal_is_logged_without_tokens(client, http, caplog):
    http.get(APP_INFO_URL, status=401, json={"error": "invalid_token"})

    post(client, "app_install.txt")

    assert MEMBER in caplog.text
    assert INSTALL_ACCESS not in caplog.text
    assert APP_TOKEN not in caplog.text


# /b24/install ----------------------------------------------------------------


def test_install_url_points_to_the_portals_authorize_page(client):
    response = client.get("/b24/install")

    url = urlsplit(response.json()["auth_url"])
    assert response.status_code == 200
    assert (url.scheme, url.netloc, url.path) == ("https", DOMAIN, "/oauth/authorize/")
    assert parse_qs(url.query)["client_id"] == [CLIENT_ID]


def test_install_url_state_is_stored(client):
    response = client.get("/b24/install")

    [state] = parse_qs(urlsplit(response.json()["auth_url"]).query)["state"]
    assert OAuthState.objects.filter(value=state, used_at__isnull=True).exists()


def test_install_url_needs_the_portal_and_client_id(client, settings):
    settings.B24_DOMAIN = ""

    response = client.get("/b24/install")

    assert response.status_code == 503
    assert "B24_DOMAIN" in response.json()["error"]
    assert OAuthState.objects.count() == 0


# /b24/oauth/callback ---------------------------------------------------------


def start(client) -> str:
    [state] = parse_qs(urlsplit(client.get("/b24/install").json()["auth_url"]).query)["state"]
    return state


def callback(client, state: str, code: str = "avmocpghblyi01m3h42bljvqtyd19sw1"):
    query = {"code": code, "state": state, "domain": DOMAIN, "member_id": MEMBER, "scope": "imbot,im"}
    return client.get("/b24/oauth/callback", query)


def serve_tokens(http, code: str = "avmocpghblyi01m3h42bljvqtyd19sw1"):
    http.get(
        TOKEN_URL,
        json=TOKENS,
        match=[matchers.query_param_matcher({"grant_type": "authorization_code", "code": code}, strict_match=False)],
    )


def test_callback_with_a_good_state_stores_the_portal(client, http):
    serve_tokens(http)

    response = callback(client, start(client))

    assert (response.status_code, response.json()) == (200, {"status": "installed", "domain": DOMAIN})
    portal = Portal.objects.get(member_id=MEMBER)
    assert (portal.access_token, portal.refresh_token) == (TOKENS["access_token"], TOKENS["refresh_token"])
    assert portal.client_endpoint == f"https://{DOMAIN}/rest/"


def test_callback_spends_the_state(client, http):
    serve_tokens(http)
    state = start(client)

    callback(client, state)

    assert OAuthState.objects.get(value=state).used_at is not None


def test_callback_with_an_unknown_state_is_refused(client, http):
    response = callback(client, "never-handed-out")

    assert response.status_code == 400
    assert response.json() == {"error": "unknown state"}
    assert len(http.calls) == 0


def test_callback_with_a_used_state_is_refused(client, http):
    serve_tokens(http)
    state = start(client)
    callback(client, state)

    response = callback(client, state)

    assert (response.status_code, response.json()) == (400, {"error": "state already used"})
    assert len(http.calls) == 1


def test_callback_with_an_expired_state_is_refused(client, http):
    state = start(client)
    OAuthState.objects.filter(value=state).update(created_at=timezone.now() - timedelta(minutes=11))

    response = callback(client, state)

    assert (response.status_code, response.json()) == (400, {"error": "state expired"})
    assert len(http.calls) == 0


def test_callback_without_a_code_is_refused(client):
    assert callback(client, start(client), code="").status_code == 400


def test_callback_whose_code_is_refused_by_bitrix24_is_a_json_502(client, http):
    http.get(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Invalid authorization code"})

    response = callback(client, start(client))

    assert response.status_code == 502
    assert "invalid_grant" in response.json()["error"]
    assert Portal.objects.count() == 0


def test_callback_needs_the_client_secret(client, settings):
    state = start(client)
    settings.B24_CLIENT_SECRET = ""

    response = callback(client, state)

    assert response.status_code == 503
    assert "B24_CLIENT_SECRET" in response.json()["error"]
