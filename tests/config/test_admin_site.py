import pytest
from django.contrib import admin
from django.urls import include, path, reverse

from bots.models import AssistantSettings

pytestmark = pytest.mark.django_db


def test_the_admin_is_named_for_the_store_from_the_assistant_settings(admin_client):
    AssistantSettings.objects.update_or_create(pk=1, defaults={"store_name": "Рыбный двор"})

    content = admin_client.get("/admin/").content.decode()

    assert "Администрирование Django" not in content
    assert '<a href="/admin/">Рыбный двор</a>' in content
    assert "<title>Управление магазином «Рыбный двор» | Рыбный двор</title>" in content


def test_without_assistant_settings_the_admin_takes_the_store_name_setting(admin_client, settings):
    settings.STORE_NAME = "Морской рынок"

    content = admin_client.get("/admin/catalog/product/").content.decode()

    assert '<a href="/admin/">Морской рынок</a>' in content
    assert "| Морской рынок</title>" in content


def test_a_renamed_store_shows_on_the_next_page(admin_client):
    AssistantSettings.objects.update_or_create(pk=1, defaults={"store_name": "Рыбный двор"})
    admin_client.get("/admin/")
    AssistantSettings.objects.filter(pk=1).update(store_name="Икорный дом")

    assert '<a href="/admin/">Икорный дом</a>' in admin_client.get("/admin/").content.decode()


def test_open_site_leads_to_the_admin_index_while_there_is_no_inbox(admin_client):
    content = admin_client.get("/admin/").content.decode()

    assert '<a href="/admin/">Открыть сайт</a>' in content


def inbox_list(request):  # pragma: no cover - only its URL is used
    raise AssertionError


# This module is the URL conf of the last test: the project's URLs with an inbox.
urlpatterns = [
    path("inbox/", include(([path("", inbox_list, name="list")], "inbox"))),
    path("admin/", admin.site.urls),
]


def test_open_site_leads_to_the_inbox_once_it_exists(admin_client, settings):
    settings.ROOT_URLCONF = "tests.config.test_admin_site"

    content = admin_client.get(reverse("admin:index")).content.decode()

    assert '<a href="/inbox/">Открыть сайт</a>' in content
