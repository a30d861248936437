import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django_q.conf import Conf

from catalog.models import ScrapeRun
from catalog.scrape import queue_scrape_run

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(autouse=True)
def api_settings(settings, monkeypatch):
    # The throttle counts requests in the cache: each test starts with none.
    cache.clear()
    settings.API_TOKEN = TOKEN
    # No store configured: a queued run fails fast without any HTTP.
    settings.TILDA_STORE_PARTUID = []
    monkeypatch.setattr(Conf, "SYNC", True)


def post(client, body=None, **headers):
    return client.post("/catalog/scrape", body or {"mode": "prices"}, content_type="application/json", **headers)


def test_post_without_credentials_is_401(client):
    response = post(client)

    assert response.status_code == 401
    assert response.json()["error"]
    assert response["WWW-Authenticate"] == "Bearer"
    assert ScrapeRun.objects.count() == 0


def test_post_with_a_wrong_token_is_401(client):
    response = post(client, HTTP_AUTHORIZATION="Bearer wrong")

    assert response.status_code == 401
    assert TOKEN not in response.content.decode()
    assert ScrapeRun.objects.count() == 0


def test_post_with_the_token_queues_a_run_and_answers_202(client):
    response = post(client, {"mode": "full"}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 202
    run = ScrapeRun.objects.get(pk=response.json()["id"])
    assert (run.mode, run.triggered_by) == ("full", "api")


def test_staff_session_may_queue_a_run(admin_client):
    response = post(admin_client)

    assert response.status_code == 202


def test_logged_in_customer_who_is_not_staff_is_refused(client):
    user = get_user_model().objects.create_user("buyer", password="a-long-password-1")
    client.force_login(user)

    assert post(client).status_code == 403


def test_bad_mode_is_a_400(client):
    response = post(client, {"mode": "everything"}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 400
    assert "mode" in response.json()["fields"]


@pytest.mark.parametrize("force", [0, 1, "true", "false", None])
def test_force_that_is_not_a_json_boolean_is_a_400(client, force):
    response = post(client, {"mode": "full", "force": force}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 400
    assert "force" in response.json()["fields"]
    assert ScrapeRun.objects.count() == 0


def test_force_true_queues_a_forced_run(client):
    response = post(client, {"mode": "full", "force": True}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 202
    assert response.json()["forced"] is True
    assert ScrapeRun.objects.get().forced is True


def test_a_body_over_the_upload_limit_is_a_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = post(client, {"mode": "full", "padding": "x" * 2000}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 413
    assert response.json() == {"error": "body too large"}
    assert ScrapeRun.objects.count() == 0


def test_a_body_that_is_not_json_is_a_415(client):
    response = client.post(
        "/catalog/scrape", "mode=full", content_type="text/plain", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )

    assert response.status_code == 415
    assert response.json()["error"]


def test_malformed_json_is_a_400(client):
    response = client.post(
        "/catalog/scrape", "{mode:", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )

    assert response.status_code == 400
    assert response.json()["error"]


def test_post_while_a_run_is_active_is_409_naming_it(client):
    active = queue_scrape_run(mode=ScrapeRun.Mode.FULL)

    response = post(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 409
    assert response.json()["active_run"] == active.pk


def test_get_shows_the_run(client):
    run_id = post(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()["id"]

    response = client.get(f"/catalog/scrape/{run_id}", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    body = response.json()
    assert response.status_code == 200
    assert (body["id"], body["mode"], body["status"]) == (run_id, "prices", "failed")
    assert "TILDA_STORE_PARTUID" in body["error"]


def test_get_without_credentials_is_401(client):
    run = queue_scrape_run(mode=ScrapeRun.Mode.FULL)

    assert client.get(f"/catalog/scrape/{run.pk}").status_code == 401


def test_get_of_an_unknown_run_is_404(client):
    response = client.get("/catalog/scrape/999", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 404


def test_a_caller_in_a_loop_is_throttled_with_429(client):
    # A probe queued 236 runs in 28 s; each reads the whole store from Tilda.
    statuses = [post(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code for _ in range(7)]

    assert statuses[-1] == 429
    assert set(statuses[:-1]) <= {202, 409}
    assert ScrapeRun.objects.count() <= 6
