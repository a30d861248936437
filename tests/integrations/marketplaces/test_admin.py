"""Marketplace accounts in admin: keys go in and never come back out; «Проверить ключ» asks the marketplace."""

import pytest
import responses
from django.contrib.auth.models import Permission, User
from django.core.cache import cache

from integrations.marketplaces import services
from integrations.marketplaces.models import MarketplaceAccount

pytestmark = pytest.mark.django_db

API_KEY = "6c2a4f1e-0b7d-4c11-secret-api-key"
URL = "/admin/integrations/marketplaceaccount/"
OZON = "https://ozon.test"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def ozon():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# The answer deadlines' inline, posted with no rows (the account's are seeded on creation).
NO_DEADLINE_ROWS = {"deadlines-TOTAL_FORMS": "0", "deadlines-INITIAL_FORMS": "0"}


def add(admin_client, **fields):
    data = {
        "name": "Морской магазин",
        "marketplace": "ozon",
        "client_id": "1943218",
        "api_key": API_KEY,
        "base_url": OZON,
        "chat_mode": "draft",
        "questions_mode": "draft",
        "reviews_mode": "off",
        "poll_interval_s": "60",
        **NO_DEADLINE_ROWS,
        **fields,
    }
    return admin_client.post(f"{URL}add/", data)


def ozon_account(**fields) -> MarketplaceAccount:
    account = MarketplaceAccount(marketplace="ozon", client_id="1943218", api_key=API_KEY, base_url=OZON, **fields)
    return services.create_account(account, name="Морской магазин")


def change_data(account, **fields):
    return {
        "name": account.channel_account.name,
        "client_id": account.client_id,
        "base_url": account.base_url,
        "chat_mode": account.chat_mode,
        "questions_mode": account.questions_mode,
        "reviews_mode": account.reviews_mode,
        "poll_interval_s": account.poll_interval_s,
        **NO_DEADLINE_ROWS,
        **fields,
    }


def test_staff_add_an_account_with_its_channel_account(admin_client):
    response = add(admin_client)

    assert response.status_code == 302
    account = MarketplaceAccount.objects.get()
    assert (account.channel_account.channel, account.channel_account.key) == ("ozon", "morskoy-magazin")
    assert (account.client_id, account.api_key, account.reviews_mode) == ("1943218", API_KEY, "off")


def test_ozon_needs_a_client_id(admin_client):
    response = add(admin_client, client_id="")

    assert response.status_code == 200
    assert not MarketplaceAccount.objects.exists()


def test_campaign_ids_are_a_comma_separated_field(admin_client):
    add(admin_client, marketplace="yandex_market", client_id="", business_id="7701", campaign_ids="21, 22,23")

    assert MarketplaceAccount.objects.get().campaign_ids == ["21", "22", "23"]


def test_the_change_page_never_shows_the_key(admin_client):
    account = ozon_account()

    page = admin_client.get(f"{URL}{account.pk}/change/").content.decode()

    assert API_KEY not in page
    assert "Проверить ключ" in page


def test_the_change_page_shows_the_push_url(admin_client):
    account = ozon_account()

    page = admin_client.get(f"{URL}{account.pk}/change/").content.decode()

    assert f"/mp/{account.pk}/{account.push_secret}/" in page


def test_the_list_says_whether_a_key_is_set_and_nothing_more(admin_client):
    account = ozon_account()

    page = admin_client.get(URL).content.decode()

    assert API_KEY not in page
    assert account.push_secret not in page
    assert "задан" in page
    assert "Работает" in page


def test_saving_with_an_empty_key_field_keeps_the_stored_key(admin_client):
    account = ozon_account()

    response = admin_client.post(f"{URL}{account.pk}/change/", change_data(account, name="Переименован", api_key=""))

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.channel_account.name, account.api_key) == ("Переименован", API_KEY)


def test_a_new_key_replaces_the_stored_one(admin_client):
    account = ozon_account()

    admin_client.post(f"{URL}{account.pk}/change/", change_data(account, api_key="new-api-key-0001"))

    account.refresh_from_db()
    assert account.api_key == "new-api-key-0001"


def ozon_answers_the_check(ozon, status=200):
    if status == 200:
        ozon.post(f"{OZON}/v3/chat/list", json={"chats": [], "total_unread_count": 0})
        ozon.post(f"{OZON}/v1/review/list", json={"reviews": [], "has_next": False})
    else:
        ozon.post(f"{OZON}/v3/chat/list", status=status, json={"code": 16, "message": "Invalid Api-Key"})


def check_key(admin_client, account):
    return admin_client.post(f"{URL}{account.pk}/check-key/", follow=True)


def test_a_working_key_check_is_recorded_on_the_account(admin_client, ozon):
    account = ozon_account()
    ozon_answers_the_check(ozon)

    check_key(admin_client, account)

    account.refresh_from_db()
    assert account.key_checked_at is not None
    assert account.key_check_result == "Ключ работает; отзывы доступны"
    assert account.capabilities == {"chat_read": True, "reviews": True}


def test_a_working_key_lifts_a_stop(admin_client, ozon):
    account = ozon_account(stopped_at="2026-12-01T10:00:00Z", stop_reason="Ozon не принял ключ")
    ozon_answers_the_check(ozon)

    check_key(admin_client, account)

    account.refresh_from_db()
    assert (account.stopped_at, account.stop_reason) == (None, "")


def test_a_refused_key_stops_the_account_with_ozons_reason(admin_client, ozon):
    account = ozon_account()
    ozon_answers_the_check(ozon, status=401)

    check_key(admin_client, account)

    account.refresh_from_db()
    assert account.stopped_at is not None
    assert account.stop_reason == account.key_check_result == "Ozon не принял ключ: проверьте Client-Id и Api-Key"


def test_the_check_shows_the_marketplaces_answer_as_a_message(admin_client, ozon):
    account = ozon_account()
    ozon_answers_the_check(ozon, status=401)

    page = check_key(admin_client, account).content.decode()

    assert "Ozon не принял ключ: проверьте Client-Id и Api-Key" in page
    assert API_KEY not in page


def test_the_key_check_button_needs_the_change_permission(client, ozon):
    account = ozon_account()
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_marketplaceaccount"))
    client.force_login(viewer)

    response = client.post(f"{URL}{account.pk}/check-key/")

    assert response.status_code == 403
    assert not ozon.calls


def test_resume_clears_the_stop(admin_client):
    account = ozon_account(stopped_at="2026-12-01T10:00:00Z", stop_reason="Ozon не принял ключ")

    admin_client.post(URL, {"action": "resume_accounts", "_selected_action": [account.pk]})

    account.refresh_from_db()
    assert (account.stopped_at, account.stop_reason) == (None, "")


def test_a_new_account_gets_the_marketplaces_answer_rules_and_its_polls(admin_client):
    from django_q.models import Schedule

    add(admin_client)

    account = MarketplaceAccount.objects.get()
    assert account.deadlines.filter(stream="chat", minutes=48 * 60, in_working_hours=False).exists()
    assert Schedule.objects.filter(name=f"marketplace poll {account.pk} chat").exists()
    # Reviews are off for this account: not polled.
    assert not Schedule.objects.filter(name=f"marketplace poll {account.pk} reviews").exists()
