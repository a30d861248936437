"""Polling Yandex Market's chats end to end: waiting chats and their history stubbed at the HTTP layer in the
recorded shapes (fixtures/yandex_market/), recorded once, notifications at the push URL taken as polls,
answered once by the worker, a send of unknown outcome never repeated and settled by a later poll."""

import copy
import datetime
import json
import uuid
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from django.core.cache import cache
from responses import matchers

from conversations.models import ChannelAccount, Conversation, Message
from integrations import tasks
from integrations.marketplaces.models import MarketplaceAccount, PollCursor
from integrations.marketplaces.polling import UNCONFIRMED_AFTER, poll

FIXTURES = Path(__file__).parent / "fixtures" / "yandex_market"
HOST = "https://api.partner.market.yandex.ru"
API_KEY = "ACMA:I4c4CxCSYaI41RSC2uYWP2qj3Rhhm4knMiBEga5K:151c0664"
ORDER_CHAT = "41234567"
DIRECT_CHAT = "41234999"

pytestmark = pytest.mark.usefixtures("demo_store")


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _fresh_limits(settings):
    # The token buckets live in the cache, which outlives a test.
    settings.YANDEX_MARKET_RATE_PER_S = 1000.0
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def business_id():
    # Its own business per test: the concurrency slots are keyed by it.
    return str(10_000_000 + uuid.uuid4().int % 80_000_000)


@pytest.fixture
def market(db, business_id):
    def make(mode="auto"):
        channel_account = ChannelAccount.objects.create(channel="yandex_market", key="ym-shop", name="Market shop")
        return MarketplaceAccount.objects.create(
            channel_account=channel_account,
            marketplace="yandex_market",
            business_id=business_id,
            api_key=API_KEY,
            chat_mode=mode,
        )

    return make


def url(account, path: str) -> str:
    return f"{HOST}/v2/businesses/{account.business_id}/{path}"


def order_chat_only(updated_at=None):
    """chats_page1.json as the only page; `updated_at`: the chat's updatedAt moved (a message came since)."""
    listing = copy.deepcopy(fixture("chats_page1.json"))
    listing["result"]["paging"] = {}
    if updated_at:
        listing["result"]["chats"][0]["updatedAt"] = updated_at
    return listing


def order_history(*messages):
    """history_order_chat.json with its messages replaced (Market's own first one kept)."""
    page = copy.deepcopy(fixture("history_order_chat.json"))
    page["result"]["messages"] = [page["result"]["messages"][0], *messages]
    return page


def customer(message_id: int, text: str, sender="CUSTOMER"):
    return {"messageId": message_id, "createdAt": "2026-12-01T10:15:40+03:00", "sender": sender, "message": text}


def serve_history(api, account, chat_id, page, *, from_id=None, token=None):
    query = {"chatId": chat_id, "limit": "100", **({"page_token": token} if token else {})}
    api.post(
        url(account, "chats/history"),
        json=page,
        match=[
            matchers.query_param_matcher(query),
            matchers.json_params_matcher({"messageIdFrom": from_id} if from_id else {}),
        ],
    )


def serve_order_chat(api, account, first_page, *, from_id=None, later=None):
    """The order chat waiting for us: its history from the start, then from `from_id` on."""
    api.post(url(account, "chats"), json=order_chat_only())
    serve_history(api, account, ORDER_CHAT, first_page)
    if from_id:
        serve_history(api, account, ORDER_CHAT, later or order_history(), from_id=from_id)
    api.post(url(account, "chats/message"), json=fixture("send_message_ok.json"))


def sends(api) -> list[dict]:
    return [json.loads(call.request.body) for call in api.calls if "/chats/message" in call.request.url]


def history_calls(api) -> int:
    return sum("/chats/history" in call.request.url for call in api.calls)


def listing_calls(api) -> int:
    return sum(call.request.url.split("?")[0].endswith("/chats") for call in api.calls)


def customer_messages():
    return Message.objects.filter(author=Message.Author.CUSTOMER)


def test_waiting_chats_and_their_history_are_recorded_once(market, api):
    account = market(mode="draft")
    api.post(
        url(account, "chats"), json=fixture("chats_page1.json"), match=[matchers.query_param_matcher({"limit": "20"})]
    )
    token = fixture("chats_page1.json")["result"]["paging"]["nextPageToken"]
    api.post(
        url(account, "chats"),
        json=fixture("chats_page2.json"),
        match=[matchers.query_param_matcher({"limit": "20", "page_token": token})],
    )
    serve_history(api, account, ORDER_CHAT, fixture("history_order_chat.json"))
    serve_history(api, account, DIRECT_CHAT, fixture("history_direct_chat_page1.json"))
    direct_token = fixture("history_direct_chat_page1.json")["result"]["paging"]["nextPageToken"]
    serve_history(api, account, DIRECT_CHAT, fixture("history_direct_chat_page2.json"), token=direct_token)

    first = poll(account, "chat")
    PollCursor.objects.filter(account=account).update(cursor={})  # Market gives it all again
    again = poll(account, "chat")

    assert sorted(customer_messages().values_list("external_id", flat=True)) == ["900002", "900005", "910001", "910002"]
    assert (first.recorded, again.recorded) == (7, 0)
    assert again.repeats == 7
    order = Conversation.objects.get(external_id=ORDER_CHAT)
    assert order.channel_data["context"]["order_number"] == "51234567"
    # The store's earlier answer in the chat is an operator's; Market's and support's are the system's.
    assert order.messages.filter(author=Message.Author.OPERATOR).count() == 1


def test_repeated_notifications_at_the_push_url_ask_for_polls_that_add_nothing_new(
    market, api, client, worker, django_capture_on_commit_callbacks
):
    account = market(mode="draft")
    serve_order_chat(
        api,
        account,
        fixture("history_order_chat.json"),
        from_id=900005,
        later=fixture("history_order_chat_from_900005.json"),
    )
    push_url = f"/mp/{account.pk}/{account.push_secret}/"

    for notification in fixture("notifications_repeated.json"):
        response = client.post(push_url, data=json.dumps(notification), content_type="application/json")
        assert response.status_code == 200
    assert history_calls(api) == 1  # a burst of repeats is one poll
    recorded = Message.objects.count()
    cache.clear()  # the burst's few seconds are over: Market repeats the notification later

    for notification in fixture("notifications_repeated.json"):
        client.post(push_url, data=json.dumps(notification), content_type="application/json")

    # The poll lists the chats; the chat's updatedAt has not moved, so its history is not read again.
    assert (listing_calls(api), history_calls(api)) == (2, 1)
    assert Message.objects.count() == recorded
    assert sorted(customer_messages().values_list("external_id", flat=True)) == ["900002", "900005"]


def test_a_420_backs_off_until_market_lets_us_in(market, api):
    account = market(mode="draft")
    reset = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(minutes=40)
    api.post(
        url(account, "chats"),
        status=420,
        json=fixture("error_420_resource.json"),
        headers={"X-RateLimit-Resource-Until": format_datetime(reset, usegmt=True)},
    )

    result = poll(account, "chat")

    cursor = PollCursor.objects.get(account=account)
    assert result.error
    assert cursor.not_before is not None
    assert (cursor.not_before - cursor.last_polled_at).total_seconds() >= 29 * 60  # up to the longest back-off
    assert poll(account, "chat").skipped == "backing off"
    account.refresh_from_db()
    assert account.stopped_at is None


def test_a_403_stops_the_account(market, api):
    account = market(mode="draft")
    api.post(url(account, "chats"), status=403, json=fixture("error_403.json"))

    poll(account, "chat")

    account.refresh_from_db()
    assert account.stopped_at is not None
    assert account.stop_reason
    assert poll(account, "chat").skipped == "stopped"


def test_an_auto_account_answers_once(market, api, worker, django_capture_on_commit_callbacks):
    account = market()
    serve_order_chat(api, account, order_history(customer(900002, "Есть икра горбуши?")), from_id=900002)

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")

    (body,) = sends(api)
    reply = Message.objects.get(author=Message.Author.BOT)
    assert body == {"message": reply.text}
    assert "горбуш" in reply.text.lower()
    assert reply.delivery_state == Message.Delivery.SENT


def test_a_send_that_timed_out_is_unknown_never_resent_and_failed_once_no_poll_confirms_it(
    market, api, worker, django_capture_on_commit_callbacks
):
    account = market()
    api.post(url(account, "chats"), json=order_chat_only())
    serve_history(api, account, ORDER_CHAT, order_history(customer(900002, "Есть икра горбуши?")))
    serve_history(api, account, ORDER_CHAT, order_history(), from_id=900002)
    api.post(url(account, "chats/message"), body=requests.Timeout("read timed out"))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    question = customer_messages().get()
    reply = Message.objects.get(author=Message.Author.BOT)
    assert reply.delivery_state == Message.Delivery.UNKNOWN

    tasks.answer(question.pk)  # a retry, or the sweep

    assert len(sends(api)) == 1
    reply.refresh_from_db()
    assert reply.delivery_state == Message.Delivery.UNKNOWN
    Message.objects.filter(pk=reply.pk).update(
        created_at=reply.created_at - UNCONFIRMED_AFTER - datetime.timedelta(minutes=1)
    )

    result = poll(account, "chat")

    assert not result.error
    reply.refresh_from_db()
    assert reply.delivery_state == Message.Delivery.FAILED
    assert reply.delivery_error
    assert Conversation.objects.get(external_id=ORDER_CHAT).state == Conversation.State.OPERATOR
    assert len(sends(api)) == 1


def test_a_send_that_timed_out_is_settled_when_the_next_poll_shows_it_in_the_chat(
    market, api, worker, django_capture_on_commit_callbacks
):
    account = market()
    api.post(url(account, "chats"), json=order_chat_only())
    serve_history(api, account, ORDER_CHAT, order_history(customer(900002, "Есть икра горбуши?")))
    api.post(url(account, "chats/message"), body=requests.Timeout("read timed out"))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    reply = Message.objects.get(author=Message.Author.BOT)
    assert reply.delivery_state == Message.Delivery.UNKNOWN
    # Market gives no id for a send: ours comes back as the store's (PARTNER) message with its text,
    # and the chat's updatedAt moves with it.
    api.post(url(account, "chats"), json=order_chat_only(updated_at="2026-12-01T10:16:02+03:00"))
    serve_history(
        api, account, ORDER_CHAT, order_history(customer(900003, reply.text, sender="PARTNER")), from_id=900002
    )

    result = poll(account, "chat")

    reply.refresh_from_db()
    assert (result.own_sends, result.recorded) == (1, 0)
    assert (reply.delivery_state, reply.external_id) == (Message.Delivery.SENT, "900003")
    assert Message.objects.filter(author=Message.Author.OPERATOR).count() == 0
    assert Conversation.objects.get(external_id=ORDER_CHAT).state == Conversation.State.BOT
    assert len(sends(api)) == 1
