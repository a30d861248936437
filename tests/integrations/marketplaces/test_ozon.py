"""The Ozon connector against Ozon's recorded answers (fixtures/ozon, NOTES.md there), stubbed at the HTTP layer."""

import datetime
import json
import pathlib

import pytest
import requests
import responses
from django.core.cache import cache
from responses import matchers

from conversations.models import ChannelAccount
from integrations.marketplaces.base import (
    CHAT,
    CUSTOMER,
    REVIEWS,
    SELLER,
    SYSTEM,
    MarketplaceApiError,
    MarketplaceHttp,
    SendOutcomeUnknown,
    Thread,
)
from integrations.marketplaces.models import MarketplaceAccount
from integrations.marketplaces.ozon import OzonConnector, author_of, ping_answer

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "ozon"
BASE = "https://ozon.test"
LIST_URL = f"{BASE}/v3/chat/list"
HISTORY_URL = f"{BASE}/v3/chat/history"
SEND_URL = f"{BASE}/v1/chat/send/message"
READ_URL = f"{BASE}/v2/chat/read"
REVIEWS_URL = f"{BASE}/v1/review/list"
BUYER_CHAT = "b646d975-0c9c-4872-9f41-8b1e57181063"
CLOSED_BUYER_CHAT = "e1c1b2aa-7d35-4f0b-9a3e-1f2d3c4b5a69"
SUPPORT_CHAT = "5e767w03-b400-4y1b-a841-75319ca8a5c8"
STORED_ID = "3000000000817031942"
REPLY = "Да, мидии варёно-мороженые. Доставка по городу бесплатная."


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def ozon():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


def ozon_connector(sleeps: list, **http_options) -> OzonConnector:
    channel_account = ChannelAccount(channel="ozon", key="ozon-shop", name="Морской магазин")
    account = MarketplaceAccount(
        id=41,
        channel_account=channel_account,
        marketplace="ozon",
        client_id="1943218",
        api_key="6c2a4f1e-secret-api-key",
        base_url=BASE,
    )
    return OzonConnector(account, http=MarketplaceHttp("ozon", sleep=sleeps.append, **http_options))


@pytest.fixture
def connector(sleeps):
    return ozon_connector(sleeps)


def known_cursor(**chats) -> dict:
    return {"chats": {BUYER_CHAT: STORED_ID, CLOSED_BUYER_CHAT: "3000000000900000012", **chats}}


def stub_chat_poll(ozon, history="chat_history_forward.json"):
    ozon.post(LIST_URL, json=fixture("chat_list.json"))
    ozon.post(HISTORY_URL, json=fixture(history))
    ozon.post(READ_URL, json=fixture("chat_read.json"))


def bodies(ozon, url: str) -> list[dict]:
    return [json.loads(call.request.body) for call in ozon.calls if call.request.url == url]


def polled_items(connector, cursor: dict) -> list:
    return [item for page in connector.pages(CHAT, cursor) for item in page.items]


# Reading chats -------------------------------------------------------------------


def test_only_buyer_chats_are_read_whatever_the_case_of_their_type(ozon, connector):
    stub_chat_poll(ozon, history="chat_history_latest.json")

    polled_items(connector, {"chats": {}})

    assert {body["chat_id"] for body in bodies(ozon, HISTORY_URL)} == {BUYER_CHAT, CLOSED_BUYER_CHAT}


def test_history_is_read_forward_from_the_stored_message(ozon, connector):
    stub_chat_poll(ozon)

    polled_items(connector, known_cursor())

    assert bodies(ozon, HISTORY_URL) == [
        {"chat_id": BUYER_CHAT, "direction": "Forward", "from_message_id": int(STORED_ID), "limit": 100}
    ]


def test_the_stored_message_itself_is_not_yielded_again(ozon, connector):
    stub_chat_poll(ozon)

    items = polled_items(connector, known_cursor())

    assert STORED_ID not in [item.message_id for item in items]


def test_message_ids_given_as_numbers_or_strings_are_strings(ozon, connector):
    stub_chat_poll(ozon)

    items = polled_items(connector, known_cursor())

    assert [item.message_id for item in items] == [
        "3000000000817031943",
        "3000000000817031944",
        "3000000000817031945",
    ]


def test_a_cyrillic_customer_is_the_customer(ozon, connector):
    stub_chat_poll(ozon)

    first = polled_items(connector, known_cursor())[0]

    assert (first.author, first.needs_reply, first.customer_id) == (CUSTOMER, True, "115568")


@pytest.mark.parametrize(
    ("user_type", "author"),
    [
        ("Сustomer", CUSTOMER),
        ("customer", CUSTOMER),
        ("CUSTOMER", CUSTOMER),
        ("seller", SELLER),
        ("Seller", SELLER),
        ("support", SYSTEM),
        ("NotificationUser", SYSTEM),
        ("crm", SYSTEM),
        ("", SYSTEM),
    ],
)
def test_user_types_are_folded_to_our_authors(user_type, author):
    assert author_of(user_type) == author


def test_ozons_notifications_are_recorded_but_not_answered(ozon, connector):
    stub_chat_poll(ozon)

    notice = polled_items(connector, known_cursor())[1]

    assert (notice.author, notice.needs_reply) == (SYSTEM, False)


def test_a_message_carries_its_product_order_and_reply_window(ozon, connector):
    stub_chat_poll(ozon)

    first = polled_items(connector, known_cursor())[0]

    assert first.created_at == datetime.datetime(2026, 12, 1, 9, 58, 4, 528000, tzinfo=datetime.UTC)
    assert first.context == {
        "sku": "2206534",
        "order_number": "37841023-0001",
        "customer_message_at": "2026-12-01T09:58:04.528000+00:00",
        "reply_window_hours": 48,
    }


def test_a_page_cursor_counts_the_messages_of_that_page(ozon, connector):
    stub_chat_poll(ozon)

    first_page = next(iter(connector.pages(CHAT, known_cursor())))

    assert first_page.cursor["chats"][BUYER_CHAT] == "3000000000817031945"


def test_a_second_poll_with_the_returned_cursor_reads_nothing_when_nothing_is_new(ozon, connector):
    stub_chat_poll(ozon)
    cursor = [page.cursor for page in connector.pages(CHAT, known_cursor())][-1]
    ozon.calls.reset()

    pages = list(connector.pages(CHAT, cursor))

    assert pages == []
    assert bodies(ozon, HISTORY_URL) == []


def test_the_chat_is_marked_read_up_to_the_newest_message(ozon, connector):
    stub_chat_poll(ozon)

    polled_items(connector, known_cursor())

    assert bodies(ozon, READ_URL) == [{"chat_id": BUYER_CHAT, "from_message_id": 3000000000817031945}]


def test_the_first_poll_gives_unread_messages_and_only_remembers_the_rest(ozon, connector):
    stub_chat_poll(ozon, history="chat_history_latest.json")

    pages = list(connector.pages(CHAT, {}))

    assert [item.message_id for page in pages for item in page.items] == ["3000000000817031943", "3000000000817031945"]
    assert [body["chat_id"] for body in bodies(ozon, HISTORY_URL)] == [BUYER_CHAT]
    assert pages[-1].cursor == {"chats": {CLOSED_BUYER_CHAT: "3000000000900000012", BUYER_CHAT: "3000000000817031945"}}


def test_a_401_stops_the_account(ozon, connector):
    ozon.post(LIST_URL, status=401, json=fixture("error_401.json"))

    with pytest.raises(MarketplaceApiError) as raised:
        list(connector.pages(CHAT, known_cursor()))

    assert (raised.value.stops_account, raised.value.permanent, raised.value.code) == (True, True, "OZON_UNAUTHORIZED")


def test_a_403_on_reading_stops_the_account(ozon, connector):
    ozon.post(LIST_URL, json=fixture("chat_list.json"))
    ozon.post(HISTORY_URL, status=403, json=fixture("error_403.json"))

    with pytest.raises(MarketplaceApiError) as raised:
        list(connector.pages(CHAT, known_cursor()))

    assert (raised.value.stops_account, raised.value.permanent) == (True, True)


def test_a_429_is_retried_after_retry_after(ozon, connector, sleeps):
    ozon.post(LIST_URL, status=429, json=fixture("error_429.json"), headers={"Retry-After": "3"})
    ozon.post(LIST_URL, json=fixture("chat_list.json"))

    list(
        connector.pages(CHAT, {"chats": {BUYER_CHAT: "3000000000817031945", CLOSED_BUYER_CHAT: "3000000000900000012"}})
    )

    assert 3.0 in sleeps
    assert len(bodies(ozon, LIST_URL)) == 2


def test_headers_carry_client_id_and_api_key(ozon, connector):
    stub_chat_poll(ozon)

    polled_items(connector, known_cursor())

    headers = ozon.calls[0].request.headers
    assert (headers["Client-Id"], headers["Api-Key"]) == ("1943218", "6c2a4f1e-secret-api-key")


# Sending -------------------------------------------------------------------------


def chat_thread() -> Thread:
    return Thread(stream=CHAT, thread_id=BUYER_CHAT)


def connector_at(moment: datetime.datetime) -> OzonConnector:
    return ozon_connector([], clock=moment.timestamp)


def test_send_posts_the_chat_and_text_and_returns_the_new_message_id(ozon):
    ozon.post(SEND_URL, json=fixture("chat_send.json"))
    ozon.post(HISTORY_URL, json=fixture("chat_history_after_send.json"))
    connector = connector_at(datetime.datetime(2026, 12, 1, 10, 3, 11, tzinfo=datetime.UTC))

    message_id = connector.send(chat_thread(), REPLY)

    assert bodies(ozon, SEND_URL) == [{"chat_id": BUYER_CHAT, "text": REPLY}]
    assert message_id == "3000000000817031950"


def test_an_older_answer_with_the_same_text_is_not_taken_for_the_sent_one(ozon):
    ozon.post(SEND_URL, json=fixture("chat_send.json"))
    ozon.post(HISTORY_URL, json=fixture("chat_history_after_send.json"))
    connector = connector_at(datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC))

    assert connector.send(chat_thread(), REPLY) == ""


def test_a_403_on_send_says_premium_is_needed(ozon, connector):
    ozon.post(SEND_URL, status=403, json=fixture("error_403.json"))

    with pytest.raises(MarketplaceApiError) as raised:
        connector.send(chat_thread(), REPLY)

    error = raised.value
    assert (error.code, error.permanent, error.stops_account) == ("OZON_PREMIUM_REQUIRED", True, False)
    assert error.capabilities == {"chat_send": False}
    assert "Premium Plus" in error.description


def test_a_timeout_on_send_is_an_unknown_outcome_and_never_sent_twice(ozon, connector):
    ozon.post(SEND_URL, body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(SendOutcomeUnknown):
        connector.send(chat_thread(), REPLY)

    assert len(ozon.calls) == 1


def test_a_text_over_1000_characters_is_refused_before_sending(ozon, connector):
    with pytest.raises(MarketplaceApiError) as raised:
        connector.send(chat_thread(), "ы" * 1001)

    assert (raised.value.code, len(ozon.calls)) == ("OZON_TEXT_TOO_LONG", 0)


# Reviews -------------------------------------------------------------------------


def test_reviews_are_read_oldest_first_and_processed_ones_are_not_answered(ozon, connector):
    ozon.post(REVIEWS_URL, json=fixture("review_list.json"))

    pages = list(connector.pages(REVIEWS, {}))

    assert [(item.message_id, item.needs_reply, item.context) for item in pages[0].items] == [
        ("01935b8e-41f0-7aa2-9c55-6e2f1d0a7b13", True, {"sku": "2206534", "rating": 5}),
        ("01935c1a-5d2e-7c3f-a3b1-0d7e5f9c2b44", False, {"sku": "2206871", "rating": 3}),
    ]
    assert pages[-1].cursor == {"last_id": "01935c1a-5d2e-7c3f-a3b1-0d7e5f9c2b44"}
    assert bodies(ozon, REVIEWS_URL) == [{"limit": 100, "sort_dir": "ASC", "status": "ALL"}]


def test_a_403_on_reviews_means_no_subscription_not_a_stopped_account(ozon, connector):
    ozon.post(REVIEWS_URL, status=403, json=fixture("error_403.json"))

    with pytest.raises(MarketplaceApiError) as raised:
        list(connector.pages(REVIEWS, {}))

    assert (raised.value.capabilities, raised.value.stops_account) == ({"reviews": False}, False)


def test_a_review_answer_is_a_comment_that_marks_it_processed(ozon, connector):
    ozon.post(f"{BASE}/v1/review/comment/create", json=fixture("review_comment_create.json"))

    comment_id = connector.send(Thread(stream=REVIEWS, thread_id="01935b8e-41f0-7aa2-9c55-6e2f1d0a7b13"), "Спасибо!")

    assert comment_id == "01936a77-0c1d-7e42-8f3a-5b6c7d8e9f01"
    assert json.loads(ozon.calls[0].request.body)["mark_review_as_processed"] is True


# Key check -----------------------------------------------------------------------


def test_a_working_key_is_reported_with_what_reviews_allow(ozon, connector):
    ozon.post(
        LIST_URL, json=fixture("chat_list.json"), match=[matchers.json_params_matcher({"limit": 1}, strict_match=False)]
    )
    ozon.post(REVIEWS_URL, status=403, json=fixture("error_403.json"))

    check = connector.check_key()

    assert check.ok
    assert check.detail.startswith("Ключ работает")
    assert check.capabilities == {"chat_read": True, "reviews": False}


def test_a_rejected_key_says_what_to_check(ozon, connector):
    ozon.post(LIST_URL, status=401, json=fixture("error_401.json"))

    check = connector.check_key()

    assert (check.ok, check.detail) == (False, "Ozon не принял ключ: проверьте Client-Id и Api-Key")


# Push notifications --------------------------------------------------------------


def test_a_new_message_notification_asks_for_a_chat_poll(connector):
    assert connector.poll_hint(fixture("push_new_message.json")) == [CHAT]


def test_a_ping_asks_for_no_poll(connector):
    assert connector.poll_hint(fixture("push_ping.json")) == []


def test_a_notification_about_a_support_chat_asks_for_no_poll(connector):
    payload = {**fixture("push_new_message.json"), "chat_type": "Seller_Support"}

    assert connector.poll_hint(payload) == []


def test_the_ping_answer_names_us_and_gives_the_utc_time():
    now = datetime.datetime(2026, 12, 1, 23, 5, 7, 250000, tzinfo=datetime.UTC)

    assert ping_answer(fixture("push_ping.json"), now=now) == {
        "version": "0.1",
        "name": "storebot",
        "time": "2026-12-01T23:05:07Z",
    }
