"""The Bitrix24 REST client: calls, retries, the OAuth refresh, batch and lists, the rate limit.

Bitrix24 and its OAuth server are stubbed with `responses`; waiting goes through
an injected `sleep` that only records, and a fixed `clock` where time matters.
"""

import json
import logging
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from responses import matchers

from integrations.bitrix24.client import (
    Bitrix24Client,
    Bitrix24Error,
    check_access_token,
    encode_params,
    exchange_code,
    outbound_http,
)
from integrations.bitrix24.models import Portal
from integrations.http import USER_AGENT, ApiError
from integrations.ratelimit import RateLimitTimeout, TokenBucket

WEBHOOK_SECRET = "w3bh00ks3cr3tv4lu3"
OLD_ACCESS = "old-access-token-a1b2c3"
OLD_REFRESH = "old-refresh-token-d4e5f6"
NEW_ACCESS = "new-access-token-g7h8i9"
NEW_REFRESH = "new-refresh-token-j0k1l2"
CLIENT_SECRET = "app-client-s3cr3t-xyz"
TOKEN_URL = "https://oauth.example.test/oauth/token/"
ENDPOINT = "https://shop.bitrix24.test/rest/"


@pytest.fixture(autouse=True)
def b24_settings(settings):
    # A roomy rate limit, so only the tests about it ever wait.
    settings.B24_RATE_LIMIT_PER_S = 1000
    settings.B24_RATE_LIMIT_BURST = 1000
    settings.B24_CLIENT_ID = "app.123"
    settings.B24_CLIENT_SECRET = CLIENT_SECRET
    settings.B24_OAUTH_TOKEN_URL = TOKEN_URL
    return settings


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def webhook_url():
    # A host of its own per test: the rate limit is kept per host, in a cache that may outlive the test.
    return f"https://t{uuid.uuid4().hex[:12]}.bitrix24.test/rest/1/{WEBHOOK_SECRET}/"


@pytest.fixture
def webhook(webhook_url, sleeps):
    return Bitrix24Client.for_webhook(webhook_url, backoff=0, sleep=sleeps.append)


@pytest.fixture
def portal(db):
    return Portal.objects.create(
        member_id=uuid.uuid4().hex,
        domain="shop.bitrix24.test",
        client_endpoint=ENDPOINT,
        access_token=OLD_ACCESS,
        refresh_token=OLD_REFRESH,
        token_expires_at=timezone.now() - timedelta(minutes=1),
    )


def portal_client(portal, sleeps, **options):
    return Bitrix24Client.for_portal(portal, backoff=0, sleep=sleeps.append, **options)


def with_auth(token):
    return [matchers.json_params_matcher({"auth": token}, strict_match=False)]


def refresh_query(refresh_token=OLD_REFRESH):
    return {
        "grant_type": "refresh_token",
        "client_id": "app.123",
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
    }


TOKEN_PAYLOAD = {
    "access_token": NEW_ACCESS,
    "refresh_token": NEW_REFRESH,
    "expires_in": 3600,
    "client_endpoint": "https://shop2.bitrix24.test/rest/",
    "domain": "oauth.bitrix.info",
    "member_id": "whatever",
    "scope": "imbot,im",
}

EXPIRED = {"error": "expired_token", "error_description": "The access token provided has expired."}


def oauth_calls(http):
    return [c for c in http.calls if c.request.url.startswith(TOKEN_URL)]


# Calls ---------------------------------------------------------------------


def test_webhook_call_posts_to_the_method_url_and_returns_its_result(http, webhook, webhook_url):
    http.post(f"{webhook_url}profile.json", json={"result": {"ID": "1"}, "time": {}})

    assert webhook.call("profile") == {"ID": "1"}


def test_webhook_call_sends_parameters_as_json_without_auth(http, webhook, webhook_url):
    http.post(
        f"{webhook_url}imbot.message.add.json",
        json={"result": 42},
        match=[matchers.json_params_matcher({"DIALOG_ID": "chat1", "MESSAGE": "hi"})],
    )

    assert webhook.call("imbot.message.add", {"DIALOG_ID": "chat1", "MESSAGE": "hi"}) == 42


def test_portal_call_goes_to_the_portal_endpoint_with_its_access_token(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", json={"result": {"ID": "1"}}, match=with_auth(OLD_ACCESS))

    assert portal_client(portal, sleeps).call("profile") == {"ID": "1"}


def test_for_member_picks_the_installed_portal(portal):
    client = Bitrix24Client.for_member(portal.member_id)

    assert client.portal == portal


def test_for_member_without_a_portal_uses_the_webhook(db, settings, webhook_url):
    settings.B24_WEBHOOK_URL = webhook_url

    assert Bitrix24Client.for_member("unknown").portal is None


# Retries -------------------------------------------------------------------


def test_query_limit_exceeded_is_retried(http, webhook, webhook_url):
    url = f"{webhook_url}profile.json"
    http.post(url, status=503, json={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
    http.post(url, json={"result": {"ID": "1"}})

    assert webhook.call("profile") == {"ID": "1"}
    assert len(http.calls) == 2


def test_operation_time_limit_waits_until_the_reset(http, webhook_url, sleeps):
    client = Bitrix24Client.for_webhook(webhook_url, backoff=0, sleep=sleeps.append, clock=lambda: 1000.0)
    url = f"{webhook_url}crm.item.list.json"
    http.post(
        url,
        status=429,
        json={"error": "OPERATION_TIME_LIMIT", "time": {"operating_reset_at": 1005}},
    )
    http.post(url, json={"result": {"items": []}})

    assert client.call("crm.item.list") == {"items": []}
    assert sleeps == [5.0]


def test_operation_time_limit_far_away_gives_up_at_once_with_retry_after(http, webhook_url, sleeps):
    client = Bitrix24Client.for_webhook(webhook_url, sleep=sleeps.append, clock=lambda: 1000.0, max_wait=30)
    url = f"{webhook_url}crm.item.list.json"
    http.post(url, status=429, json={"error": "OPERATION_TIME_LIMIT"}, headers={"Retry-After": "600"})

    with pytest.raises(Bitrix24Error) as caught:
        client.call("crm.item.list")

    assert (caught.value.code, caught.value.retry_after, caught.value.permanent) == ("OPERATION_TIME_LIMIT", 600, False)
    assert len(http.calls) == 1
    assert sleeps == []


def test_server_errors_give_up_after_the_bounded_attempts(http, webhook, webhook_url):
    http.post(f"{webhook_url}profile.json", status=500, json={"error": "INTERNAL_SERVER_ERROR"})

    with pytest.raises(Bitrix24Error) as caught:
        webhook.call("profile")

    assert (caught.value.code, caught.value.status, caught.value.permanent) == ("INTERNAL_SERVER_ERROR", 500, False)
    assert len(http.calls) == 3


def test_connection_errors_are_retried(http, webhook, webhook_url):
    url = f"{webhook_url}profile.json"
    http.post(url, body=requests.ConnectionError(f"cannot reach {url}"))
    http.post(url, json={"result": {"ID": "1"}})

    assert webhook.call("profile") == {"ID": "1"}


def test_a_bad_gateway_page_that_is_not_json_is_retried(http, webhook, webhook_url):
    url = f"{webhook_url}profile.json"
    http.post(url, status=502, body="<html>Bad Gateway</html>")
    http.post(url, json={"result": {"ID": "1"}})

    assert webhook.call("profile") == {"ID": "1"}


def test_retries_back_off_exponentially(http, webhook_url, sleeps):
    client = Bitrix24Client.for_webhook(webhook_url, backoff=1.0, max_attempts=4, sleep=sleeps.append)
    http.post(f"{webhook_url}profile.json", status=500, json={"error": "INTERNAL_SERVER_ERROR"})

    with pytest.raises(Bitrix24Error):
        client.call("profile")

    # 1, 2 and 4 seconds, each with jitter down to half.
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4


def test_client_errors_are_not_retried_and_are_permanent(http, webhook, webhook_url):
    http.post(f"{webhook_url}imbot.message.add.json", status=400, json={"error": "DIALOG_ID_EMPTY"})

    with pytest.raises(Bitrix24Error) as caught:
        webhook.call("imbot.message.add")

    assert (caught.value.code, caught.value.permanent) == ("DIALOG_ID_EMPTY", True)
    assert len(http.calls) == 1


# The OAuth refresh -----------------------------------------------------------


def test_expired_token_is_refreshed_once_and_the_call_repeated(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED, match=with_auth(OLD_ACCESS))
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD, match=[matchers.query_param_matcher(refresh_query())])
    http.post(
        "https://shop2.bitrix24.test/rest/profile.json", json={"result": {"ID": "1"}}, match=with_auth(NEW_ACCESS)
    )

    assert portal_client(portal, sleeps).call("profile") == {"ID": "1"}
    assert len(oauth_calls(http)) == 1


def test_refreshed_tokens_are_saved_on_the_portal(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED)
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD)
    http.post("https://shop2.bitrix24.test/rest/profile.json", json={"result": {}})

    portal_client(portal, sleeps).call("profile")

    saved = Portal.objects.get(pk=portal.pk)
    assert (saved.access_token, saved.refresh_token) == (NEW_ACCESS, NEW_REFRESH)
    assert saved.client_endpoint == "https://shop2.bitrix24.test/rest/"
    assert saved.domain == "shop.bitrix24.test"  # the payload's domain is the OAuth server's
    assert timezone.now() + timedelta(minutes=59) < saved.token_expires_at < timezone.now() + timedelta(minutes=61)


def test_refreshed_tokens_are_encrypted_in_the_database(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED)
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD)
    http.post("https://shop2.bitrix24.test/rest/profile.json", json={"result": {}})

    portal_client(portal, sleeps).call("profile")

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM integrations_portal WHERE id = %s", [portal.pk])
        raw_access, raw_refresh = cursor.fetchone()
    assert raw_access and NEW_ACCESS not in raw_access
    assert raw_refresh and NEW_REFRESH not in raw_refresh


def test_a_second_401_after_the_refresh_is_final(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED)
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD)
    http.post("https://shop2.bitrix24.test/rest/profile.json", status=401, json=EXPIRED)

    with pytest.raises(Bitrix24Error) as caught:
        portal_client(portal, sleeps).call("profile")

    assert (caught.value.code, caught.value.permanent) == ("expired_token", True)
    assert len(oauth_calls(http)) == 1


def test_a_client_with_a_stale_token_uses_the_one_another_client_refreshed(http, portal, sleeps):
    first = portal_client(Portal.objects.get(pk=portal.pk), sleeps)
    second = portal_client(Portal.objects.get(pk=portal.pk), sleeps)  # loaded before the refresh
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED, match=with_auth(OLD_ACCESS))
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD)
    http.post("https://shop2.bitrix24.test/rest/profile.json", json={"result": {}}, match=with_auth(NEW_ACCESS))
    first.call("profile")

    second.call("profile")

    assert len(oauth_calls(http)) == 1


def test_a_client_waiting_for_the_refresh_lock_takes_the_token_its_holder_saved(http, portal):
    # Another process holds the lock and saves new tokens while this one waits.
    lock_key = f"b24:token-refresh:{portal.member_id}"
    cache.add(lock_key, "another process", 30)

    def other_process_finishes(seconds):
        Portal.objects.filter(pk=portal.pk).update(access_token=NEW_ACCESS, refresh_token=NEW_REFRESH)
        cache.delete(lock_key)

    client = Bitrix24Client.for_portal(portal, sleep=other_process_finishes)
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED, match=with_auth(OLD_ACCESS))
    http.post(f"{ENDPOINT}profile.json", json={"result": {}}, match=with_auth(NEW_ACCESS))

    client.call("profile")

    assert oauth_calls(http) == []


def test_a_refused_refresh_is_permanent_and_recorded_on_the_portal(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED)
    http.get(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Invalid grant"})

    with pytest.raises(Bitrix24Error) as caught:
        portal_client(portal, sleeps).call("profile")

    assert (caught.value.code, caught.value.permanent) == ("invalid_grant", True)
    last_error = Portal.objects.get(pk=portal.pk).last_error
    assert "invalid_grant" in last_error
    assert OLD_REFRESH not in last_error and CLIENT_SECRET not in last_error


def test_a_refresh_the_oauth_server_could_not_answer_may_be_retried_later(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED)
    http.get(TOKEN_URL, body=requests.ConnectionError("oauth server down"))

    with pytest.raises(Bitrix24Error) as caught:
        portal_client(portal, sleeps).call("profile")

    assert (caught.value.code, caught.value.permanent) == ("CONNECTION_ERROR", False)


def test_exchange_code_returns_the_token_payload(http):
    query = {"grant_type": "authorization_code", "client_id": "app.123", "client_secret": CLIENT_SECRET, "code": "c0de"}
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD, match=[matchers.query_param_matcher(query)])

    assert exchange_code("c0de")["access_token"] == NEW_ACCESS


def test_exchange_code_refused_raises(http):
    http.get(TOKEN_URL, status=400, json={"error": "invalid_grant"})

    with pytest.raises(Bitrix24Error) as caught:
        exchange_code("expired-code")

    assert (caught.value.code, caught.value.permanent) == ("invalid_grant", True)


APP_INFO = {
    "result": {
        "client_id": "app.123",
        "scope": "imbot,im",
        "install": {"installed": True, "domain": "shop.bitrix24.test", "member_id": "m1"},
    }
}


def test_check_access_token_asks_the_oauth_server(http):
    http.get(
        "https://oauth.example.test/rest/app.info/",
        json=APP_INFO,
        match=[matchers.query_param_matcher({"auth": NEW_ACCESS})],
    )

    assert check_access_token("shop.bitrix24.test", NEW_ACCESS)["install"]["member_id"] == "m1"


def test_check_access_token_refuses_a_token_of_another_portal(http):
    http.get("https://oauth.example.test/rest/app.info/", json=APP_INFO)

    with pytest.raises(Bitrix24Error) as caught:
        check_access_token("evil.example.test", NEW_ACCESS)

    assert (caught.value.code, caught.value.permanent) == ("WRONG_PORTAL", True)


def test_check_access_token_refuses_an_invalid_token(http):
    http.get("https://oauth.example.test/rest/app.info/", status=401, json={"error": "invalid_token"})

    with pytest.raises(Bitrix24Error) as caught:
        check_access_token("shop.bitrix24.test", "forged")

    assert caught.value.code == "invalid_token"


# One mapping of answers, one seam: REST, the OAuth token and app.info --------------


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (403, True), (408, False), (429, False), (500, False), (503, False)],
)
def test_a_status_means_the_same_from_rest_and_from_the_oauth_server(http, webhook_url, status, permanent):
    rest = Bitrix24Client.for_webhook(webhook_url, max_attempts=1)
    http.post(f"{webhook_url}profile.json", status=status, json={"error": "SOME_ERROR"})
    http.get(TOKEN_URL, status=status, json={"error": "SOME_ERROR"})
    http.get("https://oauth.example.test/rest/app.info/", status=status, json={"error": "SOME_ERROR"})
    errors = []

    for attempt in (
        lambda: rest.call("profile"),
        lambda: exchange_code("c0de"),
        lambda: check_access_token("shop.bitrix24.test", NEW_ACCESS),
    ):
        with pytest.raises(Bitrix24Error) as caught:
            attempt()
        errors.append((caught.value.code, caught.value.status, caught.value.permanent))

    assert errors == [("SOME_ERROR", status, permanent)] * 3


def test_a_token_refresh_the_oauth_server_rate_limited_is_retried(http, portal, sleeps):
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED, match=with_auth(OLD_ACCESS))
    http.get(TOKEN_URL, status=429, json={"error": "TOO_MANY_REQUESTS"})
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD, match=[matchers.query_param_matcher(refresh_query())])
    http.post(
        "https://shop2.bitrix24.test/rest/profile.json", json={"result": {"ID": "1"}}, match=with_auth(NEW_ACCESS)
    )

    assert portal_client(portal, sleeps).call("profile") == {"ID": "1"}
    assert len(oauth_calls(http)) == 2
    assert Portal.objects.get(pk=portal.pk).access_token == NEW_ACCESS


def test_a_retry_after_header_on_a_transient_answer_is_waited_for(http, webhook, webhook_url, sleeps):
    url = f"{webhook_url}profile.json"
    http.post(url, status=429, json={"error": "TOO_MANY_REQUESTS"}, headers={"Retry-After": "2"})
    http.post(url, json={"result": {}})

    webhook.call("profile")

    assert sleeps == [2.0]


def test_the_code_exchange_is_tried_once_while_its_caller_waits(http):
    http.get(TOKEN_URL, status=503, json={"error": "SERVICE_UNAVAILABLE"})

    with pytest.raises(Bitrix24Error) as caught:
        exchange_code("c0de")

    assert (caught.value.code, caught.value.permanent) == ("SERVICE_UNAVAILABLE", False)
    assert len(http.calls) == 1


def test_the_code_exchange_retries_with_a_seam_that_does(http, sleeps):
    http.get(TOKEN_URL, status=429, json={"error": "TOO_MANY_REQUESTS"})
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD)

    payload = exchange_code("c0de", http=outbound_http(backoff=0, sleep=sleeps.append))

    assert payload["access_token"] == NEW_ACCESS
    assert len(http.calls) == 2


def test_rest_and_oauth_requests_go_through_the_seam(http, portal, sleeps, settings):
    settings.B24_TIMEOUT_S = 7.0
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED)
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD)
    http.post("https://shop2.bitrix24.test/rest/profile.json", json={"result": {}})
    http.get("https://oauth.example.test/rest/app.info/", json=APP_INFO)

    portal_client(portal, sleeps).call("profile")
    check_access_token("shop.bitrix24.test", NEW_ACCESS)

    assert [c.request.headers["User-Agent"] for c in http.calls] == [USER_AGENT] * 4
    assert [c.request.req_kwargs["timeout"] for c in http.calls] == [7.0] * 4
    assert issubclass(Bitrix24Error, ApiError)


# Batch and lists ---------------------------------------------------------------


def test_batch_encodes_each_command_as_method_and_query(http, webhook, webhook_url):
    http.post(
        f"{webhook_url}batch.json",
        json={"result": {"result": {}, "result_error": []}},
        match=[
            matchers.json_params_matcher(
                {
                    "halt": 0,
                    "cmd": {
                        "user": "user.current?",
                        "lead": "crm.lead.add?FIELDS[TITLE]=Shrimp+order&FIELDS[PHONE][0][VALUE]=%2B7+900",
                    },
                }
            )
        ],
    )

    webhook.batch(
        {
            "user": ("user.current", {}),
            "lead": ("crm.lead.add", {"FIELDS": {"TITLE": "Shrimp order", "PHONE": [{"VALUE": "+7 900"}]}}),
        }
    )


def test_batch_maps_results_and_errors_by_key(http, webhook, webhook_url):
    http.post(
        f"{webhook_url}batch.json",
        json={
            "result": {
                "result": {"user": {"ID": "1"}},
                "result_error": {"lead": {"error": "ACCESS_DENIED", "error_description": "no"}},
                "result_total": [],
                "result_next": [],
            }
        },
    )

    answer = webhook.batch({"user": ("user.current", None), "lead": ("crm.lead.add", {})})

    assert answer["result"] == {"user": {"ID": "1"}}
    assert answer["result_error"]["lead"]["error"] == "ACCESS_DENIED"
    assert answer["result_total"] == {}


def test_batch_refuses_more_than_50_commands(webhook):
    with pytest.raises(ValueError, match="50"):
        webhook.batch({str(i): ("user.current", {}) for i in range(51)})


def test_encode_params_writes_php_style_keys():
    assert encode_params({"A": True, "B": False, "C": None, "F": {">=DATE": "2024-01-01"}, "L": ["x", "y"]}) == (
        "A=1&B=0&F[%3E%3DDATE]=2024-01-01&L[0]=x&L[1]=y"
    )


def test_iter_list_follows_next_until_it_is_gone(http, webhook, webhook_url):
    url = f"{webhook_url}crm.contact.list.json"
    http.post(url, json={"result": [{"ID": "1"}, {"ID": "2"}], "next": 2, "total": 3})
    http.post(url, json={"result": [{"ID": "3"}], "total": 3})

    items = list(webhook.iter_list("crm.contact.list", {"select": ["ID"]}))

    assert [item["ID"] for item in items] == ["1", "2", "3"]
    assert [json.loads(c.request.body)["start"] for c in http.calls] == [0, 2]


def test_iter_list_reads_pages_that_wrap_their_items(http, webhook, webhook_url):
    http.post(f"{webhook_url}crm.item.list.json", json={"result": {"items": [{"id": 7}]}, "total": 1})

    assert list(webhook.iter_list("crm.item.list", {"entityTypeId": 2})) == [{"id": 7}]


# The rate limit -------------------------------------------------------------------


def bucket(sleeps, **options):
    options.setdefault("clock", lambda: 1000.0)
    return TokenBucket(f"test-{uuid.uuid4().hex}", sleep=sleeps.append, **options)


def test_a_bucket_with_tokens_left_does_not_wait(sleeps):
    limiter = bucket(sleeps, rate=1000, burst=3)

    for _ in range(3):
        limiter.acquire()

    assert sleeps == []


def test_a_bucket_past_its_burst_waits_for_the_next_token(sleeps):
    limiter = bucket(sleeps, rate=0.5, burst=2)

    for _ in range(3):
        limiter.acquire()

    assert sleeps == [pytest.approx(2.0)]


def test_waiting_callers_queue_up_for_later_tokens(sleeps):
    limiter = bucket(sleeps, rate=0.5, burst=1)

    for _ in range(3):
        limiter.acquire()

    assert sleeps == [pytest.approx(2.0), pytest.approx(4.0)]


def test_a_bucket_refills_with_time(sleeps):
    now = [1000.0]
    limiter = bucket(sleeps, rate=0.5, burst=2, clock=lambda: now[0])
    limiter.acquire()
    limiter.acquire()
    now[0] += 2.0

    limiter.acquire()

    assert sleeps == []


def test_a_wait_beyond_the_ceiling_raises_instead(sleeps):
    limiter = bucket(sleeps, rate=0.01, burst=1, max_wait=5)
    limiter.acquire()

    with pytest.raises(RateLimitTimeout):
        limiter.acquire()

    assert sleeps == []


def test_buckets_of_one_portal_share_their_tokens(sleeps):
    identity = f"test-{uuid.uuid4().hex}"
    web = TokenBucket(identity, rate=0.5, burst=2, clock=lambda: 1000.0, sleep=sleeps.append)
    worker = TokenBucket(identity, rate=0.5, burst=2, clock=lambda: 1000.0, sleep=sleeps.append)

    web.acquire()
    worker.acquire()
    web.acquire()

    assert sleeps == [pytest.approx(2.0)]


def test_with_redis_the_bucket_lives_in_redis(settings, sleeps):
    if not settings.CACHES["default"]["BACKEND"].startswith("django_redis."):
        pytest.skip("needs Redis (set REDIS_URL)")
    from django_redis import get_redis_connection

    limiter = bucket(sleeps, rate=0.5, burst=2)
    limiter.acquire()

    assert get_redis_connection("default").hget(limiter._key, "tokens") == b"1.000000"


def test_query_limit_exceeded_empties_the_bucket_so_the_retry_waits(http, webhook_url, sleeps):
    limiter = bucket(sleeps, rate=0.5, burst=5)
    client = Bitrix24Client.for_webhook(webhook_url, backoff=0, sleep=sleeps.append, limiter=limiter)
    url = f"{webhook_url}profile.json"
    http.post(url, status=503, json={"error": "QUERY_LIMIT_EXCEEDED"})
    http.post(url, json={"result": {}})

    client.call("profile")

    assert sleeps == [pytest.approx(2.0)]


def test_a_client_past_the_rate_limit_ceiling_raises_without_calling(http, webhook_url, sleeps):
    limiter = bucket(sleeps, rate=0.01, burst=1, max_wait=5)
    client = Bitrix24Client.for_webhook(webhook_url, sleep=sleeps.append, limiter=limiter)
    http.post(f"{webhook_url}profile.json", json={"result": {}})
    client.call("profile")

    with pytest.raises(Bitrix24Error) as caught:
        client.call("profile")

    assert (caught.value.code, caught.value.permanent) == ("RATE_LIMITED", False)
    assert len(http.calls) == 1


def test_webhook_clients_are_limited_per_host_not_per_secret(webhook_url):
    client = Bitrix24Client.for_webhook(webhook_url)

    assert client.limiter.identity == f"b24:{urlsplit(webhook_url).hostname}"


# Secrets -------------------------------------------------------------------------


def test_repr_of_a_webhook_client_hides_its_secret(webhook):
    assert WEBHOOK_SECRET not in repr(webhook)


def test_webhook_failures_never_show_the_secret(http, webhook, webhook_url, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"{webhook_url}profile.json"
    http.post(url, body=requests.ConnectionError(f"HTTPSConnectionPool: Max retries exceeded with url: {url}"))
    http.post(
        url, status=500, json={"error": "INTERNAL_SERVER_ERROR", "error_description": f"bad hook {WEBHOOK_SECRET}"}
    )

    with pytest.raises(Bitrix24Error) as caught:
        webhook.call("profile")

    assert WEBHOOK_SECRET not in str(caught.value) and WEBHOOK_SECRET not in caught.value.description
    assert WEBHOOK_SECRET not in caplog.text
    assert "profile" in caplog.text  # the method name is logged


def test_refresh_logs_and_errors_never_show_tokens_or_the_client_secret(http, portal, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    http.post(f"{ENDPOINT}profile.json", status=401, json=EXPIRED)
    http.get(TOKEN_URL, json=TOKEN_PAYLOAD)
    http.post(
        "https://shop2.bitrix24.test/rest/profile.json", status=401, json={**EXPIRED, "error_description": NEW_ACCESS}
    )

    with pytest.raises(Bitrix24Error) as caught:
        portal_client(portal, sleeps).call("profile")

    for secret in (OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH, CLIENT_SECRET):
        assert secret not in caplog.text
        assert secret not in str(caught.value)


def test_oauth_errors_never_show_the_client_secret(http):
    http.get(TOKEN_URL, status=400, json={"error": "invalid_client", "error_description": f"secret {CLIENT_SECRET}"})

    with pytest.raises(Bitrix24Error) as caught:
        exchange_code("c0de")

    assert CLIENT_SECRET not in str(caught.value)
