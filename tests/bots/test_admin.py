import pytest

from bots.models import AssistantSettings

pytestmark = pytest.mark.django_db


def test_settings_list_opens_the_single_settings_page(admin_client):
    response = admin_client.get("/admin/bots/assistantsettings/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/bots/assistantsettings/1/change/"


def test_staff_switch_the_provider_and_model(admin_client, settings):
    settings.OPENAI_API_KEY = "sk-admin-test"
    config = AssistantSettings.load()
    data = {
        "use_llm": "true",
        "provider": "openai",
        "model": "deepseek-chat",
        "llm_temperature": "0.2",
        "store_name": "Морской рынок",
        "tone": config.tone,
        "policies": config.policies,
        "handoff_words": "жалоба\nпретензия",
        "handoff_text": config.handoff_text,
        "waiting_text": config.waiting_text,
        "welcome_text": config.welcome_text,
        "media_text": config.media_text,
        "voice_failed_text": config.voice_failed_text,
        "voice_too_long_text": config.voice_too_long_text,
        "banned_phrases": config.banned_phrases,
        "max_reply_chars": "1200",
    }

    response = admin_client.post("/admin/bots/assistantsettings/1/change/", data)

    assert response.status_code == 302
    config = AssistantSettings.load()
    assert (config.llm_enabled, config.provider, config.model, config.temperature, config.handoff_word_list) == (
        True,
        "openai",
        "deepseek-chat",
        0.2,
        ["жалоба", "претензия"],
    )


def test_the_handoff_settings_point_to_the_working_hours(admin_client):
    AssistantSettings.load()

    page = admin_client.get("/admin/bots/assistantsettings/1/change/").content.decode()

    assert 'href="/admin/inbox/workinghours/"' in page


def test_a_staff_member_who_may_only_view_the_settings_cannot_run_the_check(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_assistantsettings"))
    client.force_login(viewer)
    AssistantSettings.load()

    page = client.get("/admin/bots/assistantsettings/1/change/")
    check = client.post("/admin/bots/assistantsettings/check-connection/")

    assert page.status_code == 200
    assert "Проверить подключение" not in page.content.decode()
    assert check.status_code == 403
