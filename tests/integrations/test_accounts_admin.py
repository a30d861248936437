"""Channel accounts in admin: secrets go in, never come back out."""

import pytest
from django.db import connection

from conversations.models import ChannelAccount

pytestmark = pytest.mark.django_db

TOKEN = "7000000001:AAFsecret-token-value-0123456789"
SECRET = "webhook-secret-value-987"
URL = "/admin/conversations/channelaccount/"


def add(admin_client, **fields):
    data = {"channel": "telegram", "key": "shop-two", "name": "Второй бот", "is_active": "on", **fields}
    return admin_client.post(f"{URL}add/", data)


def test_staff_add_a_bot_with_its_token(admin_client):
    response = add(admin_client, token=TOKEN, webhook_secret=SECRET)

    assert response.status_code == 302
    account = ChannelAccount.objects.get(key="shop-two")
    assert (account.token, account.webhook_secret) == (TOKEN, SECRET)


def test_the_token_is_encrypted_in_the_database(admin_client):
    add(admin_client, token=TOKEN)

    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM conversations_channelaccount")
        [(stored,)] = cursor.fetchall()
    assert TOKEN not in stored


def test_the_edit_page_never_shows_the_secrets(admin_client):
    add(admin_client, token=TOKEN, webhook_secret=SECRET)
    account = ChannelAccount.objects.get(key="shop-two")

    page = admin_client.get(f"{URL}{account.pk}/change/").content.decode()

    assert TOKEN not in page
    assert SECRET not in page
    assert "/tg/shop-two/webhook" in page


def test_the_list_says_a_token_is_set_without_showing_it(admin_client):
    add(admin_client, token=TOKEN)

    page = admin_client.get(URL).content.decode()

    assert TOKEN not in page
    assert "icon-yes" in page


def test_saving_with_empty_secret_fields_keeps_the_stored_ones(admin_client):
    add(admin_client, token=TOKEN, webhook_secret=SECRET)
    account = ChannelAccount.objects.get(key="shop-two")

    admin_client.post(
        f"{URL}{account.pk}/change/", {"name": "Переименован", "is_active": "on", "token": "", "webhook_secret": ""}
    )

    account.refresh_from_db()
    assert (account.name, account.token, account.webhook_secret) == ("Переименован", TOKEN, SECRET)


def test_a_new_token_replaces_the_old_one(admin_client):
    add(admin_client, token=TOKEN)
    account = ChannelAccount.objects.get(key="shop-two")

    admin_client.post(f"{URL}{account.pk}/change/", {"name": "x", "is_active": "on", "token": "7000000001:NEW"})

    account.refresh_from_db()
    assert account.token == "7000000001:NEW"
