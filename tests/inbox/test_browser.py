"""The operator inbox in a real browser: Playwright driving Debian's chromium, headless, against
pytest-django's live server. A customer's message comes in through the Telegram webhook while the
inbox is open; the operator sees it appear, takes the dialog, answers, and gives it back to the bot.

Skipped where chromium or Playwright is missing; .ci/run installs both. Screenshots go to
$ARTIFACTS_DIR (default var/artifacts), which git ignores.
"""

import importlib
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_q.conf import Conf

from conversations.models import Conversation
from inbox import roles
from inbox.models import CannedReply

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt install chromium)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("locmem_channels"),
]

SECRET = "tg-browser-webhook-secret-0123456789"
FIXTURES = Path(__file__).parents[1] / "integrations" / "telegram" / "fixtures"
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR") or Path(__file__).parents[2] / "var" / "artifacts")
PASSWORD = "inbox-test-pass"


@pytest.fixture(autouse=True)
def browser_settings(settings, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.TELEGRAM_BOT_TOKEN = "6891234567:AAHk-browser-token"
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"  # never reached: senders are locmem
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def seed_canned_replies():
    # A transactional test flushes what the migration seeded: the same examples again.
    examples = importlib.import_module("inbox.migrations.0005_canned_reply_roles_and_examples").EXAMPLES
    for n, (title, shortcut, text) in enumerate(examples, 1):
        CannedReply.objects.create(title=title, shortcut=shortcut, text=text, sort_order=n * 10)


def staff_member(username: str, role: str = roles.OPERATORS):
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    # A transactional test flushes the groups the migration made: the roles are synced again.
    roles.sync_roles()
    if not CannedReply.objects.exists():
        seed_canned_replies()
    user.groups.add(Group.objects.get(name=roles.GROUP_NAMES[role]))
    return user


@pytest.fixture
def operator(transactional_db):
    return staff_member("olga", roles.MANAGERS)


def base(live_server) -> str:
    # The live server listens on the loopback address; name it by its address, so "nothing leaves 127.0.0.1" holds.
    return live_server.url.replace("localhost", "127.0.0.1")


def local_only(route) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def logged_in(browser, live_server, username="olga"):
    context = browser.new_context(viewport={"width": 1366, "height": 800}, locale="ru-RU")
    # Nothing may leave the machine: every request goes to the live server or fails.
    context.route("**/*", local_only)
    page = context.new_page()
    page.goto(f"{base(live_server)}/admin/login/?next=/inbox/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/inbox/")
    return page


def post_update(live_server, text: str, update_id: int = 815400001):
    payload = json.loads((FIXTURES / "message_text.json").read_text())
    payload["update_id"] = update_id
    payload["message"]["message_id"] = update_id - 815000000
    payload["message"]["text"] = text
    response = requests.post(
        f"{base(live_server)}/tg/webhook",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET},
        timeout=10,
    )
    assert response.status_code == 200


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_waiting_dialog_appears_is_taken_answered_and_given_back(browser, live_server, operator, locmem_channels):
    page = logged_in(browser, live_server)
    assert "Анна" not in page.inner_text("#rows")

    post_update(live_server, "Позовите, пожалуйста, живого оператора")

    row = page.locator("tr.waiting", has_text="Анна")
    row.wait_for(timeout=15_000)  # the list's poll, no reload
    screenshot(page, "inbox")
    with page.expect_navigation():
        row.locator("a").click()
    with page.expect_navigation():
        page.click("text=Взять")
    page.click("text=Предложить ответ")
    page.locator(".draft").wait_for()  # the assistant's draft, in the box, not sent
    assert page.input_value("#reply-text")
    assert locmem_channels.outbox[-1].author == "bot"
    page.fill("#reply-text", "")
    page.type("#reply-text", "/уточню ")  # a canned reply by its shortcut
    assert page.input_value("#reply-text") == "Сейчас уточню и вернусь к вам в течение нескольких минут."
    page.fill("#reply-text", "")
    page.click("button.canned-reply >> text=Доставка")  # and by a click
    assert page.input_value("#reply-text").startswith("Доставляем по Москве")
    page.fill("#reply-text", "Здравствуйте! Я Ольга, помогу с заказом.")
    with page.expect_navigation():
        page.press("#reply-text", "Enter")  # Enter sends
    page.locator(".msg.operator", has_text="Я Ольга").wait_for()
    screenshot(page, "dialog")
    assert "Здравствуйте! Я Ольга, помогу с заказом." in [m.text for m in locmem_channels.outbox]

    with page.expect_navigation():
        page.click("text=Вернуть боту")

    page.locator("#state", has_text="Отвечает бот").wait_for()
    conversation = Conversation.objects.get()
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.BOT, None)


def test_a_second_operator_sees_the_dialog_taken(browser, live_server, operator):
    staff_member("pavel")
    post_update(live_server, "Позовите оператора", update_id=815400002)
    conversation = Conversation.objects.get()
    olga = logged_in(browser, live_server, "olga")
    pavel = logged_in(browser, live_server, "pavel")
    pavel.goto(f"{base(live_server)}/inbox/{conversation.pk}/")

    olga.goto(f"{base(live_server)}/inbox/{conversation.pk}/")
    with olga.expect_navigation():
        olga.click("text=Взять")

    pavel.locator("#state", has_text="olga").wait_for(timeout=15_000)  # the dialog's poll
    olga.fill("#reply-text", "Сейчас всё уточню")
    with olga.expect_navigation():
        olga.press("#reply-text", "Enter")
    pavel.locator(".msg.operator", has_text="Сейчас всё уточню").wait_for(timeout=15_000)


@pytest.mark.parametrize("width", [1366, 390])
def test_the_inbox_fits_the_screen_without_scrolling_sideways(browser, live_server, operator, width):
    post_update(live_server, "Позовите оператора, пожалуйста, у меня длинный вопрос о доставке", update_id=815400010)
    page = logged_in(browser, live_server)
    page.set_viewport_size({"width": width, "height": 800})
    conversation = Conversation.objects.get()

    for path in ("/inbox/", f"/inbox/{conversation.pk}/"):
        page.goto(f"{base(live_server)}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    screenshot(page, f"dialog-{width}")


def test_the_reports_draw_their_charts_from_the_projects_own_files(browser, live_server, operator):
    post_update(live_server, "Есть икра кеты?", update_id=815400003)
    page = logged_in(browser, live_server)
    outside = []
    page.on("requestfailed", lambda request: outside.append(request.url))

    page.goto(f"{base(live_server)}/inbox/reports/")

    page.wait_for_function("document.body.dataset.chartsDrawn > 0")
    assert page.evaluate("document.querySelectorAll('canvas[data-report]').length") >= 4
    screenshot(page, "reports")
    assert outside == []
