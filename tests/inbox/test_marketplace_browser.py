"""A marketplace draft in a real browser: a Wildberries account in draft mode, a buyer's chat message
polled in (the WB API stubbed by `responses` in this process), the bot's answer kept as a draft and the
dialog handed to an operator. In Chromium the operator finds the dialog waiting in the inbox, sees the
draft beside the reply box, edits and approves it (sent once, as edited) or discards it (never sent).

Deliveries go to the locmem outbox, so the send needs no marketplace HTTP: while the browser works, a
`responses` mock with nothing registered stands in for the network of this process (the live server's
thread included), and the browser's own requests may only go to 127.0.0.1. Same skips and fixtures as
test_browser.py; the screenshot goes to $ARTIFACTS_DIR (default var/artifacts).
"""

import copy
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import responses
from django.core.cache import cache
from responses import matchers

from conversations.models import ChannelAccount, Conversation, Message
from inbox import roles
from integrations import tasks
from integrations.marketplaces.models import MarketplaceAccount
from integrations.marketplaces.polling import poll
from tests.inbox import test_browser as ui

# The browser and its settings (Conf.SYNC: the worker inline), as test_browser.py has them.
browser = ui.browser
browser_settings = ui.browser_settings
expect = ui.playwright_api.expect

pytestmark = [
    pytest.mark.skipif(not ui.CHROMIUM, reason="needs Debian's chromium (apt install chromium)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("locmem_channels", "demo_store"),
]

FIXTURES = Path(__file__).parents[1] / "integrations" / "marketplaces" / "fixtures" / "wildberries"
CHAT_API = "https://buyer-chat-api.wildberries.ru"
CHAT = "1:1e265a58-a120-b178-008c-60af2460207c"
QUESTION = "Есть икра горбуши?"
EDITED = "Здравствуйте, Ольга! Икра горбуши 250 г есть, отправим завтра."


@pytest.fixture(autouse=True)
def _fresh_buckets():
    cache.clear()  # the marketplace's rate-limit buckets
    yield
    cache.clear()


@pytest.fixture
def wb_operator(transactional_db):
    return ui.staff_member("olga", roles.OPERATORS)


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def draft_account() -> MarketplaceAccount:
    channel_account = ChannelAccount.objects.create(channel="wildberries", key="wb-sea", name="Морской WB")
    return MarketplaceAccount.objects.create(
        channel_account=channel_account,
        marketplace="wildberries",
        api_key="wb-chat-token-0123456789",
        chat_mode="draft",
    )


def buyer_polled_in(account, capture_on_commit) -> Message:
    """One buyer message on WB's events page, polled and answered by the (inline) worker: the bot's draft."""
    event = copy.deepcopy(fixture("events_page_1.json")["result"]["events"][0])
    event["message"]["text"] = QUESTION
    page = {"result": {"next": 1000, "totalEvents": 1, "events": [event]}, "errors": None}
    nothing_more = {"result": {"next": 1000, "totalEvents": 0, "events": []}, "errors": None}
    events = f"{CHAT_API}/api/v1/seller/events"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.get(events, json=page, match=[matchers.query_param_matcher({})])
        api.get(events, json=nothing_more, match=[matchers.query_param_matcher({"next": "1000"})])
        api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))
        with capture_on_commit(execute=True):
            result = poll(account, "chat")
        assert result.recorded == 1, result
        assert not [c for c in api.calls if c.request.method == "POST"]  # nothing sent to WB
    return Message.objects.get(author=Message.Author.BOT)


@pytest.fixture
def no_network():
    """No `requests` call of this process (the live server's included) gets anywhere while the browser works."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        assert [call.request.url for call in mock.calls] == []


def watched(page) -> list[str]:
    """The hosts of every request the page's browser context makes from now on."""
    hosts: list[str] = []
    page.context.on("request", lambda request: hosts.append(urlsplit(request.url).hostname))
    page.context.on("requestfailed", lambda request: hosts.append(f"failed: {request.url}"))
    return hosts


def open_the_waiting_dialog(page, conversation) -> None:
    row = page.locator("tr.waiting", has_text="Ольга")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Wildberries")
    expect(row.locator(".account")).to_have_text("Морской WB")
    expect(row.locator(".badge.waiting")).to_have_text("Ждёт оператора")
    with page.expect_navigation():
        row.locator("a").click()
    assert page.url.endswith(f"/inbox/{conversation.pk}/")


def test_an_edited_draft_is_approved_and_goes_out_once(
    browser, live_server, wb_operator, locmem_channels, django_capture_on_commit_callbacks, no_network
):
    draft = buyer_polled_in(draft_account(), django_capture_on_commit_callbacks)
    conversation = Conversation.objects.get()
    assert draft.delivery_state == Message.Delivery.DRAFT
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.OPERATOR, None)
    assert locmem_channels.outbox == []

    page = ui.logged_in(browser, live_server)
    hosts = watched(page)
    page.reload()
    open_the_waiting_dialog(page, conversation)

    expect(page.locator("aside h2", has_text="Морской WB")).to_have_text("Wildberries · Морской WB")
    expect(page.locator("dl.marketplace")).to_contain_text("Чат с покупателем")
    expect(page.locator(".msg.customer")).to_contain_text(QUESTION)
    expect(page.locator(f"#m{draft.pk} .how")).to_contain_text("Черновик")
    expect(page.locator("#pending-draft #draft-text")).to_have_value(draft.text)
    expect(page.locator("#reply-text")).to_be_visible()  # the reply box, beside the draft
    ui.screenshot(page, "marketplace-draft")
    assert locmem_channels.outbox == []

    page.fill("#draft-text", EDITED)
    with page.expect_navigation():
        page.locator("#pending-draft button", has_text="Одобрить и отправить").click()

    expect(page.locator("#pending-draft")).to_have_count(0)
    sent = page.locator(f"#m{draft.pk}")
    expect(sent.locator(".text")).to_have_text(EDITED)
    expect(sent.locator(".how")).not_to_contain_text("Черновик")
    assert [(m.channel, m.dialog, m.text) for m in locmem_channels.outbox] == [("wildberries", CHAT, EDITED)]
    draft.refresh_from_db()
    assert (draft.delivery_state, draft.text, draft.operator) == (Message.Delivery.SENT, EDITED, wb_operator)

    page.reload()  # the redirect after the POST: a reload sends nothing again
    expect(page.locator("#pending-draft")).to_have_count(0)
    assert len(locmem_channels.outbox) == 1
    assert hosts and set(hosts) == {"127.0.0.1"}, hosts


def test_a_discarded_draft_is_never_sent(
    browser, live_server, wb_operator, locmem_channels, django_capture_on_commit_callbacks, no_network, settings
):
    draft = buyer_polled_in(draft_account(), django_capture_on_commit_callbacks)
    conversation = Conversation.objects.get()

    page = ui.logged_in(browser, live_server)
    hosts = watched(page)
    page.reload()
    open_the_waiting_dialog(page, conversation)
    expect(page.locator("#draft-text")).to_have_value(draft.text)

    with page.expect_navigation():
        page.locator("#pending-draft button", has_text="Отклонить").click()

    expect(page.locator("#pending-draft")).to_have_count(0)
    expect(page.locator(f"#m{draft.pk} .how")).to_contain_text("Отклонённый черновик")
    draft.refresh_from_db()
    assert draft.delivery_state == Message.Delivery.DISCARDED
    # The sweep of unanswered messages does not answer it again either.
    settings.REPLY_SWEEP_AFTER_S = 0
    tasks.sweep_unanswered()
    page.reload()
    expect(page.locator("#pending-draft")).to_have_count(0)
    assert locmem_channels.outbox == []
    assert Message.objects.filter(author=Message.Author.BOT).count() == 1
    assert hosts and set(hosts) == {"127.0.0.1"}, hosts


def test_a_wildberries_dialog_fits_the_screen_without_scrolling_sideways(
    browser, live_server, wb_operator, django_capture_on_commit_callbacks
):
    buyer_polled_in(draft_account(), django_capture_on_commit_callbacks)
    conversation = Conversation.objects.get()
    page = ui.logged_in(browser, live_server)

    page.goto(f"{ui.base(live_server)}/inbox/{conversation.pk}/")

    expect(page.locator("dl.marketplace")).to_contain_text("7a1f0b2c3d4e5f60718293a4b5c6d7e8.0.0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
