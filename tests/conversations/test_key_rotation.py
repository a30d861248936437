"""FIELD_ENCRYPTION_KEY holds several keys, newest first: old values read, rotate_encryption_keys moves them on."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from conversations.models import ChannelAccount

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
TOKEN = "7000000001:AAFsecret-token-value-0123456789"


def stored_token(account) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM conversations_channelaccount WHERE id = %s", [account.pk])
        [(value,)] = cursor.fetchall()
    return value


def account_saved_under_key_a(settings) -> ChannelAccount:
    settings.FIELD_ENCRYPTION_KEY = KEY_A
    return ChannelAccount.objects.create(channel="telegram", key="shop-two", token=TOKEN)


def rotate() -> str:
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_value_written_under_the_old_key_reads_with_both_keys_set(settings):
    account = account_saved_under_key_a(settings)

    settings.FIELD_ENCRYPTION_KEY = f"{KEY_B},{KEY_A}"

    assert ChannelAccount.objects.get(pk=account.pk).token == TOKEN


def test_new_values_are_written_with_the_first_key(settings):
    settings.FIELD_ENCRYPTION_KEY = f"{KEY_B},{KEY_A}"
    account = ChannelAccount.objects.create(channel="telegram", key="shop-two", token=TOKEN)

    assert Fernet(KEY_B).decrypt(stored_token(account).encode()).decode() == TOKEN


def test_rotation_makes_the_value_read_with_the_new_key_alone(settings):
    account = account_saved_under_key_a(settings)
    settings.FIELD_ENCRYPTION_KEY = f"{KEY_B},{KEY_A}"

    rotate()

    settings.FIELD_ENCRYPTION_KEY = KEY_B
    assert ChannelAccount.objects.get(pk=account.pk).token == TOKEN


def test_the_stored_ciphertext_never_holds_the_plain_value(settings):
    account = account_saved_under_key_a(settings)
    settings.FIELD_ENCRYPTION_KEY = f"{KEY_B},{KEY_A}"

    rotate()

    assert TOKEN not in stored_token(account)


def test_rotating_again_leaves_current_values_alone(settings):
    account = account_saved_under_key_a(settings)
    settings.FIELD_ENCRYPTION_KEY = f"{KEY_B},{KEY_A}"
    rotate()
    rotated = stored_token(account)

    out = rotate()

    assert stored_token(account) == rotated
    assert "total: 0 re-encrypted, 1 already current, 0 unreadable" in out


def test_rotation_prints_counts_and_no_value(settings):
    account_saved_under_key_a(settings)
    settings.FIELD_ENCRYPTION_KEY = f"{KEY_B},{KEY_A}"

    out = rotate()

    assert "total: 1 re-encrypted" in out
    assert TOKEN not in out
