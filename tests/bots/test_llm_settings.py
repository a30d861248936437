"""LLM settings that do what they say: the settings row overrides the environment
only where staff set a value; blank follows the environment, read on every message;
a key alone chooses the provider; the settings page shows what is in use and checks
the connection against a local OpenAI-compatible server."""

import runpy
import socket
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from bots.assistant import reply as assistant_reply
from bots.llm import configured_provider
from bots.models import AssistantSettings
from bots.replies import Kind
from conversations.services import get_or_create_conversation, record_incoming

SETTINGS_PY = Path(__file__).resolve().parents[2] / "config" / "settings.py"
URL = "/admin/bots/assistantsettings/1/change/"
CHECK_URL = "/admin/bots/assistantsettings/check-connection/"
OPENAI_KEY = "sk-test-settings-0123456789"
GIGACHAT_KEY = "Z2lnYS1zZXR0aW5ncy1rZXk="


@pytest.fixture
def environment(settings):
    """An environment with no LLM at all, for each test to add to."""
    settings.LLM_PROVIDER = None
    settings.LLM_ENABLED = True
    settings.LLM_TEMPERATURE = 0.3
    settings.LLM_TIMEOUT_S = 2.0
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.GIGACHAT_AUTH_KEY = ""
    settings.GIGACHAT_MODEL = "GigaChat"
    return settings


# The environment alone: LLM_PROVIDER, else a key.


@pytest.mark.parametrize(
    ("provider", "openai_key", "gigachat_key", "expected"),
    [
        (None, "", "", ""),
        (None, OPENAI_KEY, "", "openai"),
        (None, "", GIGACHAT_KEY, "gigachat"),
        (None, OPENAI_KEY, GIGACHAT_KEY, "gigachat"),
        ("", OPENAI_KEY, GIGACHAT_KEY, ""),
        ("none", OPENAI_KEY, "", ""),
        ("openai", "", GIGACHAT_KEY, "openai"),
        ("gigachat", "", "", "gigachat"),
        ("locmem", OPENAI_KEY, "", "locmem"),
    ],
)
def test_the_environment_chooses_the_provider_by_llm_provider_else_by_a_key(
    environment, provider, openai_key, gigachat_key, expected
):
    environment.LLM_PROVIDER = provider
    environment.OPENAI_API_KEY = openai_key
    environment.GIGACHAT_AUTH_KEY = gigachat_key

    assert configured_provider() == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", ""), ("none", "none"), (" OpenAI ", "openai")],
)
def test_settings_tell_an_unset_llm_provider_from_an_empty_one(monkeypatch, value, expected):
    dotenv = SETTINGS_PY.parents[1] / ".env"
    if value is None and dotenv.exists() and "LLM_PROVIDER=" in dotenv.read_text(encoding="utf-8"):
        pytest.skip("the local .env sets LLM_PROVIDER")
    monkeypatch.setenv("SECRET_KEY", "settings-test")  # no key file is written
    if value is None:
        monkeypatch.delenv("LLM_PROVIDER", raising=False)
    else:
        monkeypatch.setenv("LLM_PROVIDER", value)

    assert runpy.run_path(str(SETTINGS_PY))["LLM_PROVIDER"] == expected


# The row over the environment.


@pytest.mark.django_db
def test_a_new_row_copies_nothing_from_the_environment(environment):
    environment.LLM_PROVIDER = "openai"
    environment.OPENAI_API_KEY = OPENAI_KEY
    environment.LLM_ENABLED = False
    environment.LLM_TEMPERATURE = 0.7

    config = AssistantSettings.load()

    assert (config.use_llm, config.provider, config.model, config.llm_temperature) == (None, None, "", None)


@pytest.mark.django_db
def test_a_key_added_to_the_environment_later_is_used_by_a_row_created_before(environment):
    config = AssistantSettings.load()  # created while the environment had no LLM
    assert config.effective_provider() == ""

    environment.OPENAI_API_KEY = OPENAI_KEY  # .env edited, the service restarted
    environment.GIGACHAT_AUTH_KEY = ""
    config = AssistantSettings.load()

    assert (config.effective_provider(), config.llm_enabled, config.model_name, config.temperature) == (
        "openai",
        True,
        "gpt-4o-mini",
        0.3,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (None, "gigachat"),  # blank: the environment's
        ("locmem", "locmem"),  # set here: wins
        ("openai", "openai"),
        ("", ""),  # "no LLM" chosen here: wins over the key
    ],
)
def test_a_provider_set_on_the_row_wins_over_the_environment(environment, row, expected):
    environment.GIGACHAT_AUTH_KEY = GIGACHAT_KEY
    config = AssistantSettings.load()
    config.provider = row
    config.save()

    assert AssistantSettings.load().effective_provider() == expected


@pytest.mark.django_db
def test_use_llm_temperature_and_model_follow_the_environment_until_set_here(environment):
    environment.LLM_PROVIDER = "gigachat"
    environment.GIGACHAT_MODEL = "GigaChat-Max"
    environment.LLM_ENABLED = False
    environment.LLM_TEMPERATURE = 0.9
    config = AssistantSettings.load()
    followed = (config.llm_enabled, config.temperature, config.model_name)

    config.llm_enabled = True
    config.temperature = 0.1
    config.model = "GigaChat-Pro"
    config.save()
    config = AssistantSettings.load()

    assert followed == (False, 0.9, "GigaChat-Max")
    assert (config.use_llm, config.llm_enabled, config.temperature, config.model_name) == (
        True,
        True,
        0.1,
        "GigaChat-Pro",
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("demo_store")
def test_the_assistant_answers_with_the_model_a_key_alone_configures(environment, openai_server):
    AssistantSettings.load()  # an old row, saved before the key
    environment.OPENAI_API_KEY = OPENAI_KEY
    environment.OPENAI_BASE_URL = openai_server.url
    openai_server.reply_text("Доставляем ежедневно.")
    dialog = get_or_create_conversation(channel="telegram", external_id="chat-settings")
    message, _ = record_incoming(conversation=dialog, text="сколько стоит доставка?")

    reply = assistant_reply(dialog, message)

    assert reply.kind == Kind.LLM
    assert reply.text == "Доставляем ежедневно."
    [request] = openai_server.requests
    assert request["body"]["model"] == "gpt-4o-mini"
    assert request["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"


# The data migration of an existing row.


@pytest.mark.django_db(transaction=True)
def test_the_migration_blanks_what_was_copied_from_the_environment_and_keeps_the_rest(environment):
    environment.OPENAI_API_KEY = OPENAI_KEY  # the environment now gives openai by its key
    before, after = ("bots", "0003_contacts_and_operator_hours"), ("bots", "0004_llm_settings_fall_back_to_environment")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps.get_model("bots", "AssistantSettings")
    common = {"store_name": "Морской рынок"}
    # Created while LLM_PROVIDER was empty: everything as copied then.
    old.objects.create(pk=1, llm_enabled=True, provider="", model="", temperature=0.3, **common)
    # The environment's provider and its default model, a temperature staff changed.
    old.objects.create(pk=2, llm_enabled=True, provider="openai", model="gpt-4o-mini", temperature=0.7, **common)
    # Another provider, its own model, the LLM switched off: all staff's.
    old.objects.create(pk=3, llm_enabled=False, provider="gigachat", model="GigaChat-Pro", temperature=0.3, **common)
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([after])
        rows = {
            row.pk: (row.use_llm, row.provider, row.model, row.llm_temperature)
            for row in AssistantSettings.objects.order_by("pk")
        }

        executor = MigrationExecutor(connection)
        executor.migrate([before])
        back = executor.loader.project_state([before]).apps.get_model("bots", "AssistantSettings")
        restored = back.objects.get(pk=1)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert rows == {
        1: (None, None, "", None),
        2: (None, None, "", 0.7),
        3: (False, "gigachat", "GigaChat-Pro", None),
    }
    assert (restored.llm_enabled, restored.provider, restored.temperature) == (True, "openai", 0.3)


# The settings page.


def form_data(config, **changes):
    data = {
        field: getattr(config, field)
        for field in (
            "store_name",
            "tone",
            "policies",
            "handoff_words",
            "handoff_text",
            "waiting_text",
            "contacts",
            "welcome_text",
            "media_text",
            "voice_failed_text",
            "voice_too_long_text",
            "banned_phrases",
            "max_reply_chars",
        )
    }
    data.update({"use_llm": "unknown", "provider": "", "model": "", "llm_temperature": ""})
    data.update(changes)
    return data


@pytest.mark.django_db
def test_the_page_shows_what_is_in_use_and_where_it_comes_from(admin_client, environment):
    environment.LLM_PROVIDER = "openai"
    environment.OPENAI_API_KEY = OPENAI_KEY
    config = AssistantSettings.load()
    config.model = "deepseek-chat"
    config.save()

    page = admin_client.get(URL).content.decode()

    assert "из окружения: LLM_PROVIDER=openai" in page
    assert "Как в окружении: API, совместимый с OpenAI (openai)" in page  # the blank choice says what it gives
    assert "deepseek-chat</td><td>задано здесь" in page
    assert "0.3</td><td>из окружения: LLM_TEMPERATURE" in page
    assert "Ответы пишет LLM: API, совместимый с OpenAI (openai), модель deepseek-chat." in page
    assert "OPENAI_API_KEY задан" in page
    assert OPENAI_KEY not in page


@pytest.mark.django_db
def test_the_page_says_which_key_chose_the_provider_and_why_no_llm_answers(admin_client, environment):
    AssistantSettings.load()
    environment.GIGACHAT_AUTH_KEY = GIGACHAT_KEY
    chosen_by_key = admin_client.get(URL).content.decode()
    environment.GIGACHAT_AUTH_KEY = ""
    environment.LLM_PROVIDER = "openai"
    no_key = admin_client.get(URL).content.decode()

    assert "из окружения: задан GIGACHAT_AUTH_KEY" in chosen_by_key
    assert GIGACHAT_KEY not in chosen_by_key
    assert "В окружении не задан OPENAI_API_KEY: ответы из каталога и FAQ." in no_key


@pytest.mark.django_db
def test_blank_fields_saved_from_the_page_stay_blank(admin_client, environment):
    config = AssistantSettings.load()

    response = admin_client.post(URL, form_data(config))

    assert response.status_code == 302
    config = AssistantSettings.load()
    assert (config.use_llm, config.provider, config.model, config.llm_temperature) == (None, None, "", None)


@pytest.mark.django_db
def test_staff_turn_the_llm_off_on_the_page_over_a_key_in_the_environment(admin_client, environment):
    environment.OPENAI_API_KEY = OPENAI_KEY

    response = admin_client.post(URL, form_data(AssistantSettings.load(), provider="none", llm_temperature="0.5"))

    assert response.status_code == 302
    config = AssistantSettings.load()
    assert (config.provider, config.effective_provider(), config.temperature) == ("", "", 0.5)
    assert admin_client.get(URL).context["adminform"].form.initial["provider"] == "none"


@pytest.mark.django_db
def test_use_llm_cannot_be_on_with_no_provider(admin_client, environment):
    config = AssistantSettings.load()

    refused = admin_client.post(URL, form_data(config, use_llm="true"))
    refused_off = admin_client.post(URL, form_data(config, use_llm="true", provider="none"))

    assert refused.status_code == refused_off.status_code == 200
    message = "Нельзя включить LLM без провайдера"
    assert message in refused.content.decode()
    assert message in refused_off.content.decode()
    assert AssistantSettings.load().use_llm is None


@pytest.mark.django_db
def test_a_provider_chosen_without_its_key_is_refused(admin_client, environment):
    config = AssistantSettings.load()

    refused = admin_client.post(URL, form_data(config, provider="gigachat"))
    environment.GIGACHAT_AUTH_KEY = GIGACHAT_KEY
    saved = admin_client.post(URL, form_data(config, provider="gigachat"))

    assert refused.status_code == 200
    assert "нужен GIGACHAT_AUTH_KEY" in refused.content.decode()
    assert saved.status_code == 302
    assert AssistantSettings.load().effective_provider() == "gigachat"


@pytest.mark.django_db
def test_a_temperature_out_of_range_is_refused(admin_client, environment):
    response = admin_client.post(URL, form_data(AssistantSettings.load(), llm_temperature="5"))

    assert response.status_code == 200
    assert AssistantSettings.load().llm_temperature is None


@pytest.mark.django_db
def test_the_page_shows_the_built_in_handoff_words_next_to_the_extra_ones(admin_client):
    AssistantSettings.load()
    page = admin_client.get(URL).content.decode()

    assert "Встроенные слова для оператора" in page
    assert "позовите человека, позовите менеджера" in page


@pytest.mark.django_db
def test_banned_phrases_that_differ_only_by_yo_are_saved_once(admin_client, environment):
    data = form_data(
        AssistantSettings.load(), banned_phrases="вернём деньги\nВернем  деньги\n\nпромокод\nвернем деньги"
    )

    admin_client.post(URL, data)

    config = AssistantSettings.load()
    assert config.banned_phrases == "вернём деньги\nпромокод"
    assert "ё и е не различаются" in admin_client.get(URL).content.decode()


# «Проверить подключение».


@pytest.fixture
def openai_environment(environment, openai_server):
    environment.OPENAI_API_KEY = OPENAI_KEY
    environment.OPENAI_BASE_URL = openai_server.url
    return environment


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_the_check_asks_the_effective_provider_one_short_question(admin_client, openai_environment, openai_server):
    config = AssistantSettings.load()
    config.model = "model-check"
    config.save()
    openai_server.reply_text("Работает")

    response = admin_client.post(CHECK_URL, follow=True)

    assert response.redirect_chain == [(URL, 302)]
    assert shown_messages(response) == [
        "Подключение работает: API, совместимый с OpenAI (openai), модель model-check ответила «Работает»."
    ]
    [request] = openai_server.requests
    assert request["body"]["messages"] == [{"role": "user", "content": "Ответь одним словом: работает?"}]
    assert request["body"]["model"] == "model-check"
    assert "tools" not in request["body"]


@pytest.mark.django_db
def test_the_check_shows_the_error_without_the_key(admin_client, openai_environment, openai_server):
    openai_server.reply_error(401, f"Incorrect API key provided: {OPENAI_KEY}", code="invalid_api_key")

    response = admin_client.post(CHECK_URL, follow=True)

    [shown] = shown_messages(response)
    assert shown.startswith("Не удалось подключиться (API, совместимый с OpenAI (openai), модель gpt-4o-mini):")
    assert "HTTP 401 (invalid_api_key)" in shown
    assert OPENAI_KEY not in response.content.decode()


@pytest.mark.django_db
def test_the_check_never_shows_a_key_the_server_echoes_in_its_answer(admin_client, openai_environment, openai_server):
    openai_server.reply_text(f"Работает, ваш ключ {OPENAI_KEY}")

    response = admin_client.post(CHECK_URL, follow=True)

    [shown] = shown_messages(response)
    assert "ваш ключ ***" in shown
    assert OPENAI_KEY not in response.content.decode()


@pytest.mark.django_db
def test_the_check_of_a_server_that_does_not_answer_says_so(admin_client, openai_environment, openai_server):
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    openai_environment.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"

    response = admin_client.post(CHECK_URL, follow=True)

    [shown] = shown_messages(response)
    assert "could not connect to the LLM API" in shown


@pytest.mark.django_db
def test_the_check_with_no_provider_says_there_is_nothing_to_check(admin_client, environment):
    response = admin_client.post(CHECK_URL, follow=True)

    assert shown_messages(response) == ["Проверять нечего: провайдер LLM не выбран ни здесь, ни в окружении."]


@pytest.mark.django_db
def test_the_check_is_a_post_for_staff_with_a_csrf_token(
    admin_user, django_user_model, openai_environment, openai_server
):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user)
    customer = django_user_model.objects.create_user("customer", password="x")
    outsider = Client()
    outsider.force_login(customer)

    assert csrf_client.get(CHECK_URL).status_code == 405
    assert csrf_client.post(CHECK_URL).status_code == 403  # no CSRF token
    assert outsider.post(CHECK_URL).status_code == 302  # to the admin login
    assert Client().post(CHECK_URL).status_code == 302
    assert openai_server.requests == []

    AssistantSettings.load()
    page = csrf_client.get(URL)
    token = page.cookies["csrftoken"].value
    openai_server.reply_text("Да")
    checked = csrf_client.post(CHECK_URL, {"csrfmiddlewaretoken": token})
    assert checked.status_code == 302
    assert len(openai_server.requests) == 1
    assert "Проверить подключение" in page.content.decode()
