"""Bitrix24 in admin: portals are shown without their tokens; a dialog's transcript names its Bitrix24 dialog."""

from datetime import UTC, datetime

import pytest

from integrations.bitrix24.models import Portal
from tests.factories import make_conversation

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/integrations/portal/"
TOKENS = ("access-Zq81secret", "refresh-Kx44secret", "application-Pm09secret")


@pytest.fixture
def portal():
    access, refresh, application = TOKENS
    return Portal.objects.create(
        member_id="a1b2c3d4e5",
        domain="shop.bitrix24.ru",
        access_token=access,
        refresh_token=refresh,
        application_token=application,
        token_expires_at=datetime(2031, 5, 4, 12, 0, tzinfo=UTC),
        bot_id="41",
        last_error="token refresh failed at 2031-05-04 11:00: invalid_grant",
    )


def test_list_shows_the_portal(admin_client, portal):
    content = admin_client.get(LIST_URL).content.decode()

    for value in ("shop.bitrix24.ru", "a1b2c3d4e5", "41", "invalid_grant", "2031"):
        assert value in content


def test_list_never_shows_tokens(admin_client, portal):
    content = admin_client.get(LIST_URL).content.decode()

    assert not [token for token in TOKENS if token in content]


def test_portal_page_never_shows_tokens(admin_client, portal):
    response = admin_client.get(f"{LIST_URL}{portal.pk}/change/")

    assert response.status_code == 200
    assert not [token for token in TOKENS if token in response.content.decode()]


def test_portal_page_cannot_change_the_portal(admin_client, portal):
    admin_client.post(f"{LIST_URL}{portal.pk}/change/", {"domain": "evil.example", "bot_id": "1"})

    portal.refresh_from_db()
    assert portal.domain == "shop.bitrix24.ru"


def test_portals_are_not_added_in_admin(admin_client):
    assert admin_client.get(f"{LIST_URL}add/").status_code == 403


def test_transcript_names_the_bitrix24_dialog(admin_client):
    conversation = make_conversation(
        "bitrix24", external_id="a1b2c3d4e5:chat42", channel_data={"member_id": "a1b2c3d4e5", "dialog_id": "chat42"}
    )

    content = admin_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()

    assert "a1b2c3d4e5:chat42" in content
