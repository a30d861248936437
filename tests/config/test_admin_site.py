import pytest
from django.contrib import admin
from django.urls import path, reverse

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


# This module is the URL conf of the next test: the admin without the operators' inbox.
urlpatterns = [path("admin/", admin.site.urls)]


def test_open_site_leads_to_the_admin_index_without_an_inbox(admin_client, settings):
    settings.ROOT_URLCONF = "tests.config.test_admin_site"

    content = admin_client.get(reverse("admin:index")).content.decode()

    assert '<a href="/admin/">Открыть сайт</a>' in content


def test_open_site_leads_to_the_operators_inbox(admin_client):
    content = admin_client.get("/admin/").content.decode()

    assert f'<a href="{reverse("inbox:list")}">Открыть сайт</a>' in content
