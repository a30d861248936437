"""The Yandex Market chats connector: listing, history from the cursor, senders, limits, errors, sends, notifications.

Market is stubbed at the HTTP layer with `responses`, with answers recorded
in its documented shape (fixtures/yandex_market/, see NOTES.md there); waits
go through an injected `sleep` that only records.
"""

import datetime
import json
import threading
import uuid
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
import responses
from django.core.cache import cache
from responses import matchers

from integrations.marketplaces import yandex_market
from integrations.marketplaces.base import (
    CHAT,
    CUSTOMER,
    SELLER,
    SYSTEM,
    MarketplaceApiError,
    MarketplaceHttp,
    SendOutcomeUnknown,
    Thread,
)
from integrations.marketplaces.models import MarketplaceAccount
from integrations.marketplaces.yandex_market import (
    MAX_IN_FLIGHT,
    RATE_LIMIT_BACKOFF_S,
    YandexMarketConnector,
    notification_answer,
)
from integrations.ratelimit import ConcurrencyLimit

FIXTURES = Path(__file__).parent / "fixtures" / "yandex_market"
API_KEY = "ACMA:I4c4CxCSYaI41RSC2uYWP2qj3Rhhm4knMiBEga5K:151c0664"
HOST = "https://api.partner.market.yandex.ru"
ORDER_CHAT = "41234567"
DIRECT_CHAT = "41234999"
# The chats' updatedAt in chats_page1.json and chats_page2.json.
ORDER_UPDATED = "2026-12-01T10:15:40+03:00"
DIRECT_UPDATED = "2026-12-01T11:40:02+03:00"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def url(business_id: str, path: str) -> str:
    return f"{HOST}/v2/businesses/{business_id}/{path}"


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    # The token buckets live in the cache, which outlives a test.
    settings.YANDEX_MARKET_RATE_PER_S = 1000.0
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def business_id():
    # Its own business per test: the process-local concurrency slots are keyed by it.
    return str(10_000_000 + uuid.uuid4().int % 80_000_000)


@pytest.fixture
def account(business_id):
    return MarketplaceAccount(marketplace="yandex_market", business_id=business_id, api_key=API_KEY)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def connector(account, sleeps):
    return YandexMarketConnector(account, MarketplaceHttp("yandex_market", backoff=0, sleep=sleeps.append))


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def chats(api, business_id, *names):
    for name in names:
        api.post(url(business_id, "chats"), json=fixture(name))


def history(api, business_id, chat_id, *names):
    for name in names:
        api.post(
            url(business_id, "chats/history"),
            json=fixture(name),
            match=[matchers.query_param_matcher({"chatId": chat_id}, strict_match=False)],
        )


def listing_updated_at(name: str, updated_at=ORDER_UPDATED) -> dict:
    """A chats fixture as the only page, with its chat's updatedAt replaced (None: left out)."""
    listing = fixture(name)
    listing["result"]["paging"] = {}
    (chat,) = listing["result"]["chats"]
    if updated_at is None:
        del chat["updatedAt"]
    else:
        chat["updatedAt"] = updated_at
    return listing


def body(call) -> dict:
    return json.loads(call.request.body)


def calls_to(api, path: str) -> list:
    return [call for call in api.calls if call.request.path_url.split("?")[0].endswith(f"/{path}")]


def all_items(connector, cursor=None):
    pages = list(connector.pages(CHAT, cursor or {}))
    return pages, [item for page in pages for item in page.items]


# Polling ------------------------------------------------------------------------


def test_waiting_chats_are_listed_page_by_page(connector, api, business_id):
    chats(api, business_id, "chats_page1.json", "chats_page2.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat.json")
    history(api, business_id, DIRECT_CHAT, "history_direct_chat_page1.json", "history_direct_chat_page2.json")

    _pages, items = all_items(connector)

    listing = calls_to(api, "chats")
    assert [body(call) for call in listing] == [{"statuses": ["WAITING_FOR_PARTNER", "NEW"]}] * 2
    assert "page_token" not in listing[0].request.params
    assert listing[1].request.params["page_token"] == "eyBuZXh0SWQ6IDQxMjM0NTY3IH0="
    assert {item.thread_id for item in items} == {ORDER_CHAT, DIRECT_CHAT}


def test_every_request_carries_the_api_key_header(connector, api, business_id):
    chats(api, business_id, "chats_page2.json")
    history(api, business_id, DIRECT_CHAT, "history_direct_chat_page1.json", "history_direct_chat_page2.json")

    all_items(connector)

    assert {call.request.headers["Api-Key"] for call in api.calls} == {API_KEY}


def test_a_chat_never_seen_is_read_from_its_start(connector, api, business_id):
    chats(api, business_id, "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat.json")

    _pages, items = all_items(connector)

    assert body(calls_to(api, "chats/history")[0]) == {}
    assert [item.message_id for item in items] == ["900001", "900002", "900003", "900004", "900005"]


def test_history_is_read_forward_from_the_stored_last_id(connector, api, business_id):
    chats(api, business_id, "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat_from_900003.json")

    pages, items = all_items(connector, {"chats": {ORDER_CHAT: "900003"}})

    assert body(calls_to(api, "chats/history")[0]) == {"messageIdFrom": 900003}
    assert [item.message_id for item in items] == ["900004", "900005"]
    assert pages[-1].cursor == {"chats": {ORDER_CHAT: "900005"}, "updatedAt": {ORDER_CHAT: ORDER_UPDATED}}


def test_the_same_cursor_twice_adds_nothing(connector, api, business_id):
    chats(api, business_id, "chats_page2.json", "chats_page2.json")
    history(api, business_id, DIRECT_CHAT, "history_direct_chat_page1.json", "history_direct_chat_page2.json")
    first, _items = all_items(connector)

    second, items = all_items(connector, first[-1].cursor)

    assert (second, items) == ([], [])


def test_a_chat_whose_updated_at_has_not_moved_is_not_read_again(connector, api, business_id):
    for _poll in range(3):
        api.post(url(business_id, "chats"), json=listing_updated_at("chats_page1.json"))
    history(api, business_id, ORDER_CHAT, "history_order_chat.json")
    first, _items = all_items(connector)

    second, _items = all_items(connector, first[-1].cursor)
    third, _items = all_items(connector, first[-1].cursor)

    assert first[-1].cursor == {"chats": {ORDER_CHAT: "900005"}, "updatedAt": {ORDER_CHAT: ORDER_UPDATED}}
    assert (second, third) == ([], [])
    assert (len(calls_to(api, "chats")), len(calls_to(api, "chats/history"))) == (3, 1)


def test_a_chat_whose_updated_at_moved_is_read_again_from_its_last_id(connector, api, business_id):
    later = "2026-12-01T12:01:09+03:00"
    api.post(url(business_id, "chats"), json=listing_updated_at("chats_page1.json", later))
    history(api, business_id, ORDER_CHAT, "history_order_chat_from_900005.json")
    cursor = {"chats": {ORDER_CHAT: "900004"}, "updatedAt": {ORDER_CHAT: ORDER_UPDATED}}

    pages, items = all_items(connector, cursor)

    assert body(calls_to(api, "chats/history")[0]) == {"messageIdFrom": 900004}
    assert [item.message_id for item in items] == ["900005"]
    assert pages[-1].cursor == {"chats": {ORDER_CHAT: "900005"}, "updatedAt": {ORDER_CHAT: later}}


def test_an_old_cursor_without_updated_at_still_reads_and_then_keeps_it(connector, api, business_id):
    chats(api, business_id, "chats_page1.json", "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat_from_900003.json")

    first, items = all_items(connector, {"chats": {ORDER_CHAT: "900003"}})
    second, _items = all_items(connector, first[-1].cursor)

    assert body(calls_to(api, "chats/history")[0]) == {"messageIdFrom": 900003}
    assert [item.message_id for item in items] == ["900004", "900005"]
    assert (second, len(calls_to(api, "chats/history"))) == ([], 1)


def test_only_the_changed_chats_are_read(connector, api, business_id):
    chats(api, business_id, "chats_page1.json", "chats_page2.json")
    history(api, business_id, DIRECT_CHAT, "history_direct_chat_page1.json", "history_direct_chat_page2.json")
    cursor = {"chats": {ORDER_CHAT: "900005"}, "updatedAt": {ORDER_CHAT: ORDER_UPDATED}}

    pages, items = all_items(connector, cursor)

    assert {call.request.params["chatId"] for call in calls_to(api, "chats/history")} == {DIRECT_CHAT}
    assert [item.message_id for item in items] == ["910001", "910002"]
    assert pages[-1].cursor == {
        "chats": {ORDER_CHAT: "900005", DIRECT_CHAT: "910002"},
        "updatedAt": {ORDER_CHAT: ORDER_UPDATED, DIRECT_CHAT: DIRECT_UPDATED},
    }


def test_a_chat_listed_without_updated_at_is_read_every_poll(connector, api, business_id):
    listing = listing_updated_at("chats_page1.json", None)
    api.post(url(business_id, "chats"), json=listing)
    api.post(url(business_id, "chats"), json=listing)
    history(api, business_id, ORDER_CHAT, "history_order_chat.json", "history_order_chat_from_900005.json")
    first, _items = all_items(connector)

    second, _items = all_items(connector, first[-1].cursor)

    assert first[-1].cursor == {"chats": {ORDER_CHAT: "900005"}}
    assert second == []
    assert body(calls_to(api, "chats/history")[1]) == {"messageIdFrom": 900005}


def test_a_history_cut_short_keeps_the_chat_unseen(connector, api, business_id):
    chats(api, business_id, "chats_page2.json")
    history(api, business_id, DIRECT_CHAT, "history_direct_chat_page1.json")
    api.post(url(business_id, "chats/history"), status=401, json=fixture("error_401.json"))
    pages = []

    with pytest.raises(MarketplaceApiError):
        for page in connector.pages(CHAT, {}):
            pages.append(page)

    # The poller stores this cursor: the next poll reads the chat again, from 910001.
    assert [page.cursor for page in pages] == [{"chats": {DIRECT_CHAT: "910001"}}]


def test_the_cursor_bound_forgets_a_chat_whole(connector, api, business_id, monkeypatch):
    monkeypatch.setattr(yandex_market, "MAX_CURSOR_CHATS", 2)
    chats(api, business_id, "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat_from_900005.json")
    cursor = {"chats": {"11": "10", "22": "20"}, "updatedAt": {"11": ORDER_UPDATED, "22": ORDER_UPDATED, "33": "x"}}

    pages, _items = all_items(connector, {**cursor, "chats": {**cursor["chats"], ORDER_CHAT: "900004"}})

    assert pages[-1].cursor == {
        "chats": {"22": "20", ORDER_CHAT: "900005"},
        "updatedAt": {"22": ORDER_UPDATED, ORDER_CHAT: ORDER_UPDATED},
    }


def test_each_history_page_is_a_page_with_the_cursor_after_it(connector, api, business_id):
    chats(api, business_id, "chats_page2.json")
    history(api, business_id, DIRECT_CHAT, "history_direct_chat_page1.json", "history_direct_chat_page2.json")

    pages, _items = all_items(connector, {"chats": {"77": "5"}})

    # The chat's updatedAt is kept with the last page only: its history is read to the end then.
    assert [([item.message_id for item in page.items], page.cursor, page.more) for page in pages] == [
        (["910001"], {"chats": {"77": "5", DIRECT_CHAT: "910001"}}, True),
        (["910002"], {"chats": {"77": "5", DIRECT_CHAT: "910002"}, "updatedAt": {DIRECT_CHAT: DIRECT_UPDATED}}, False),
    ]
    assert calls_to(api, "chats/history")[1].request.params["page_token"] == "eyBuZXh0SWQ6IDkxMDAwMSB9"


def test_senders_are_mapped_to_authors(connector, api, business_id):
    chats(api, business_id, "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat.json")

    _pages, items = all_items(connector)

    assert [(item.raw["sender"], item.author) for item in items] == [
        ("MARKET", SYSTEM),
        ("CUSTOMER", CUSTOMER),
        ("PARTNER", SELLER),
        ("SUPPORT", SYSTEM),
        ("CUSTOMER", CUSTOMER),
    ]


def test_only_customer_messages_need_a_reply(connector, api, business_id):
    chats(api, business_id, "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat.json")

    _pages, items = all_items(connector)

    assert [item.needs_reply for item in items] == [False, True, False, False, True]


def test_a_message_carries_its_order_customer_and_files(connector, api, business_id):
    chats(api, business_id, "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat_from_900005.json")

    _pages, [item] = all_items(connector, {"chats": {ORDER_CHAT: "900004"}})

    assert (item.thread_id, item.message_id, item.text) == (
        ORDER_CHAT,
        "900005",
        "Прикладываю фото упаковки, она пришла помятой.",
    )
    assert item.created_at == datetime.datetime(2026, 12, 1, 7, 15, 40, tzinfo=datetime.UTC)
    assert (item.customer_name, item.customer_id) == ("Ирина К.", "8kq2m1x0w7")
    assert item.context == {
        "order_number": "51234567",
        "chat_type": "CHAT",
        "context_type": "ORDER",
        "campaign_id": "21001234",
    }
    assert item.attachments == [
        {
            "kind": "photo",
            "file_id": fixture("history_order_chat_from_900005.json")["result"]["messages"][0]["payload"][0]["url"],
            "url": fixture("history_order_chat_from_900005.json")["result"]["messages"][0]["payload"][0]["url"],
            "file_name": "IMG_2031.jpg",
            "file_size": 184320,
        }
    ]


def test_a_waiting_chat_with_nothing_new_gives_a_page_of_no_items_keeping_its_updated_at(connector, api, business_id):
    chats(api, business_id, "chats_page1.json")
    history(api, business_id, ORDER_CHAT, "history_order_chat_from_900005.json")

    pages, _items = all_items(connector, {"chats": {ORDER_CHAT: "900005"}})

    # Stored, it spares the next poll this chat's history.
    assert [(page.items, page.cursor, page.more) for page in pages] == [
        ([], {"chats": {ORDER_CHAT: "900005"}, "updatedAt": {ORDER_CHAT: ORDER_UPDATED}}, False)
    ]


# Limits and errors ------------------------------------------------------------------


def test_420_backs_off_then_succeeds(connector, api, business_id, sleeps):
    api.post(url(business_id, "chats"), status=420, json=fixture("error_420_parallel.json"))
    chats(api, business_id, "chats_empty.json")

    pages, _items = all_items(connector)

    assert (pages, sleeps, len(api.calls)) == ([], [RATE_LIMIT_BACKOFF_S], 2)


def test_420_until_a_far_reset_goes_to_the_caller_with_the_wait(connector, api, business_id, sleeps):
    reset = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(minutes=40)
    api.post(
        url(business_id, "chats"),
        status=420,
        json=fixture("error_420_resource.json"),
        headers={"X-RateLimit-Resource-Until": format_datetime(reset, usegmt=True)},
    )

    with pytest.raises(MarketplaceApiError) as caught:
        all_items(connector)

    assert (caught.value.code, caught.value.permanent, caught.value.stops_account) == ("RATE_LIMITED", False, False)
    assert caught.value.retry_after == pytest.approx(40 * 60, abs=5)
    assert (sleeps, len(api.calls)) == ([], 1)


def test_429_is_a_back_off_too(connector, api, business_id, sleeps):
    api.post(url(business_id, "chats"), status=429, headers={"Retry-After": "3"}, json={"status": "ERROR"})
    chats(api, business_id, "chats_empty.json")

    all_items(connector)

    assert sleeps == [3.0]


def test_5xx_is_retried(connector, api, business_id):
    api.post(url(business_id, "chats"), status=500, json=fixture("error_500.json"))
    chats(api, business_id, "chats_empty.json")

    pages, _items = all_items(connector)

    assert (pages, len(api.calls)) == ([], 2)


def test_401_stops_the_account(connector, api, business_id):
    api.post(url(business_id, "chats"), status=401, json=fixture("error_401.json"))

    with pytest.raises(MarketplaceApiError) as caught:
        all_items(connector)

    error = caught.value
    assert (error.stops_account, error.permanent, error.status, len(api.calls)) == (True, True, 401, 1)
    assert "Маркет не принял ключ API" in error.description
    assert API_KEY not in str(error)


def test_403_stops_the_account(connector, api, business_id):
    api.post(url(business_id, "chats"), status=403, json=fixture("error_403.json"))

    with pytest.raises(MarketplaceApiError) as caught:
        all_items(connector)

    assert (caught.value.stops_account, caught.value.permanent) == (True, True)
    assert "communication" in caught.value.description


def test_a_business_with_every_slot_taken_gets_no_request_in(account, api, business_id):
    connector = YandexMarketConnector(account, MarketplaceHttp("yandex_market", max_wait=0.2, sleep=lambda s: None))
    holders = [ConcurrencyLimit(f"ym:{business_id}", MAX_IN_FLIGHT) for _ in range(MAX_IN_FLIGHT)]
    for holder in holders:
        holder.acquire()
    try:
        with pytest.raises(MarketplaceApiError) as caught:
            all_items(connector)
    finally:
        for holder in holders:
            holder.release()

    assert (caught.value.code, caught.value.permanent, len(api.calls)) == ("RATE_LIMITED", False, 0)


def test_requests_in_flight_never_pass_four_per_business(account, api, business_id):
    in_flight, peak, lock = [0], [0], threading.Lock()
    gate = threading.Event()

    def slow_chats(request):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        gate.wait(0.3)
        with lock:
            in_flight[0] -= 1
        return 200, {}, json.dumps(fixture("chats_empty.json"))

    api.add_callback(responses.POST, url(business_id, "chats"), callback=slow_chats)
    errors = []

    def poll():
        try:
            all_items(YandexMarketConnector(account, MarketplaceHttp("yandex_market")))
        except Exception as exc:  # the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(MAX_IN_FLIGHT + 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert (errors, peak[0], len(api.calls)) == ([], MAX_IN_FLIGHT, MAX_IN_FLIGHT + 3)


# Sending ----------------------------------------------------------------------------


def test_send_posts_the_text_to_the_chat(connector, api, business_id):
    api.post(url(business_id, "chats/message"), json=fixture("send_message_ok.json"))

    message_id = connector.send(Thread(CHAT, ORDER_CHAT), "Добрый день! Отправили сегодня.")

    assert message_id == ""
    assert api.calls[0].request.params == {"chatId": ORDER_CHAT}
    assert body(api.calls[0]) == {"message": "Добрый день! Отправили сегодня."}


def test_a_timeout_on_send_is_an_unknown_outcome_sent_once(connector, api, business_id):
    api.post(url(business_id, "chats/message"), body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(SendOutcomeUnknown):
        connector.send(Thread(CHAT, ORDER_CHAT), "Добрый день!")

    assert len(api.calls) == 1


def test_a_lost_connection_on_send_is_an_unknown_outcome_sent_once(connector, api, business_id):
    api.post(url(business_id, "chats/message"), body=requests.exceptions.ConnectionError("reset by peer"))

    with pytest.raises(SendOutcomeUnknown):
        connector.send(Thread(CHAT, ORDER_CHAT), "Добрый день!")

    assert len(api.calls) == 1


def test_a_send_refused_with_420_is_sent_again(connector, api, business_id, sleeps):
    api.post(url(business_id, "chats/message"), status=420, json=fixture("error_420_parallel.json"))
    api.post(url(business_id, "chats/message"), json=fixture("send_message_ok.json"))

    connector.send(Thread(CHAT, ORDER_CHAT), "Добрый день!")

    assert (len(api.calls), sleeps) == (2, [RATE_LIMIT_BACKOFF_S])


def test_a_send_answered_with_500_is_not_sent_again(connector, api, business_id):
    api.post(url(business_id, "chats/message"), status=500, json=fixture("error_500.json"))

    with pytest.raises(MarketplaceApiError) as caught:
        connector.send(Thread(CHAT, ORDER_CHAT), "Добрый день!")

    assert (caught.value.permanent, len(api.calls)) == (False, 1)


def test_a_text_over_4096_characters_is_refused_before_sending(connector, api):
    with pytest.raises(MarketplaceApiError) as caught:
        connector.send(Thread(CHAT, ORDER_CHAT), "я" * 4097)

    assert (caught.value.code, caught.value.permanent, len(api.calls)) == ("TEXT_TOO_LONG", True, 0)


# Key check --------------------------------------------------------------------------


def test_check_key_reads_one_chat(connector, api, business_id):
    chats(api, business_id, "chats_page1.json")

    check = connector.check_key()

    assert (check.ok, check.detail) == (True, f"Ключ работает: чаты кабинета {business_id} доступны.")
    assert api.calls[0].request.params == {"limit": "1"}


def test_check_key_with_a_wrong_key_says_so_in_russian(connector, api, business_id):
    api.post(url(business_id, "chats"), status=401, json=fixture("error_401.json"))

    check = connector.check_key()

    assert check.ok is False
    assert check.detail.startswith("Маркет не принял ключ API (HTTP 401)")


def test_check_key_without_a_business_id_calls_nothing(api):
    connector = YandexMarketConnector(MarketplaceAccount(marketplace="yandex_market", api_key=API_KEY))

    check = connector.check_key()

    assert (check.ok, len(api.calls)) == (False, 0)
    assert "businessId" in check.detail


# Notifications ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "notification_chat_created.json",
        "notification_chat_message_sent.json",
        "notification_chat_arbitrage_started.json",
        "notification_chat_arbitrage_finished.json",
    ],
)
def test_chat_notifications_ask_for_a_chat_poll(connector, name):
    assert connector.poll_hint(fixture(name)) == [CHAT]


@pytest.mark.parametrize("name", ["notification_ping.json", "notification_order_created.json"])
def test_other_notifications_ask_for_nothing(connector, name):
    assert connector.poll_hint(fixture(name)) == []


def test_repeated_notifications_give_the_same_hint(connector):
    assert [connector.poll_hint(payload) for payload in fixture("notifications_repeated.json")] == [[CHAT]] * 3


def test_the_answer_to_a_notification_names_us_and_the_time(connector):
    moment = datetime.datetime(2026, 12, 1, 11, 0, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=3)))

    answer = notification_answer(fixture("notification_ping.json"), now=moment)

    assert answer == {"version": "0.1", "name": "storebot", "time": "2026-12-01T08:00:01Z"}
