"""Polling Ozon end to end: buyer chats (list + history + read) and reviews stubbed at the HTTP layer in the
recorded shapes (fixtures/ozon/), recorded once, answered once by the worker, our own sends not taken in again."""

import copy
import json
from pathlib import Path

import pytest
from django.utils import timezone
from responses import matchers

from conversations.models import ChannelAccount, Conversation, Message
from conversations.services import approve_draft
from integrations.marketplaces.models import MarketplaceAccount, PollCursor
from integrations.marketplaces.polling import poll

FIXTURES = Path(__file__).parent / "fixtures" / "ozon"
API = "https://api-seller.ozon.ru"
LIST_URL = f"{API}/v3/chat/list"
HISTORY_URL = f"{API}/v3/chat/history"
SEND_URL = f"{API}/v1/chat/send/message"
READ_URL = f"{API}/v2/chat/read"
REVIEWS_URL = f"{API}/v1/review/list"
COMMENT_URL = f"{API}/v1/review/comment/create"
CHAT = "b646d975-0c9c-4872-9f41-8b1e57181063"
FIVE_STARS = "01935b8e-41f0-7aa2-9c55-6e2f1d0a7b13"

pytestmark = pytest.mark.usefixtures("demo_store")


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def ozon_account(mode="auto", reviews_mode="draft"):
    channel_account = ChannelAccount.objects.create(channel="ozon", key="ozon-shop", name="Ozon shop")
    return MarketplaceAccount.objects.create(
        channel_account=channel_account,
        marketplace="ozon",
        client_id="1943218",
        api_key="6c2a4f1e-secret-api-key",
        chat_mode=mode,
        reviews_mode=reviews_mode,
    )


def now_iso() -> str:
    # Inside Ozon's 48-hour answering window whenever the tests run.
    return timezone.now().isoformat().replace("+00:00", "Z")


def message(message_id, text, user_type="customer", user_id="115568"):
    """One of Ozon's history messages, as chat_history_forward.json has them."""
    row = copy.deepcopy(fixture("chat_history_forward.json")["messages"][3])
    row.update(message_id=message_id, created_at=now_iso(), user={"id": user_id, "type": user_type})
    row["data"] = [text]
    return row


def chat_list(last_message_id, first_unread=None, unread=1):
    """chat_list.json with the buyer chat's last and first unread message ids changed."""
    listing = copy.deepcopy(fixture("chat_list.json"))
    buyer = listing["chats"][2]
    buyer.update(last_message_id=last_message_id, unread_count=unread)
    buyer["first_unread_message_id"] = first_unread if first_unread is not None else last_message_id
    return listing


def history(*messages, has_next=False):
    return {"has_next": has_next, "messages": list(messages)}


def serve_chat(api, listing, latest=None, forward=None, after_send=None):
    """Ozon's chat list, the buyer chat's latest page (a chat new to us) or its page forward, and the read mark."""
    api.post(LIST_URL, json=listing)
    if latest is not None:
        body = {"chat_id": CHAT, "direction": "Backward", "limit": 100}
        api.post(HISTORY_URL, json=latest, match=[matchers.json_params_matcher(body)])
    if forward is not None:
        api.post(
            HISTORY_URL,
            json=forward,
            match=[matchers.json_params_matcher({"direction": "Forward"}, strict_match=False)],
        )
    # The page read right after a send, to learn the id Ozon does not return.
    lookback = {"chat_id": CHAT, "direction": "Backward", "limit": 5}
    api.post(HISTORY_URL, json=after_send or history(), match=[matchers.json_params_matcher(lookback)])
    api.post(READ_URL, json=fixture("chat_read.json"))
    api.post(SEND_URL, json=fixture("chat_send.json"))


def calls_to(api, url: str) -> list[dict]:
    return [json.loads(call.request.body) for call in api.calls if call.request.url == url]


def customer_messages():
    return Message.objects.filter(author=Message.Author.CUSTOMER)


def test_buyer_messages_are_recorded_once_whatever_the_spelling_of_their_user_type(db, api):
    account = ozon_account(mode="draft")
    serve_chat(api, fixture("chat_list.json"), latest=fixture("chat_history_latest.json"))

    result = poll(account, "chat")

    # The seller's older message is before the first unread one: not imported.
    texts = list(customer_messages().order_by("external_id").values_list("external_id", "text"))
    assert result.recorded == 2
    assert texts == [
        ("3000000000817031943", fixture("chat_history_latest.json")["messages"][1]["data"][0]),  # «Сustomer»
        ("3000000000817031945", "И сколько стоит доставка?"),  # a number in the payload
    ]
    conversation = Conversation.objects.get(external_id=CHAT)
    assert conversation.channel_data["context"]["sku"] == "2206534"
    assert calls_to(api, READ_URL) == [{"chat_id": CHAT, "from_message_id": 3000000000817031945}]


def test_the_same_id_as_a_number_and_as_a_string_is_one_message(db, api):
    account = ozon_account(mode="draft")
    latest = history(
        message(3000000000817031945, "Есть икра горбуши?"), message("3000000000817031945", "Есть икра горбуши?")
    )
    serve_chat(api, chat_list(3000000000817031945), latest=latest)

    result = poll(account, "chat")

    assert (result.recorded, result.repeats) == (1, 1)
    assert customer_messages().get().external_id == "3000000000817031945"


def test_the_same_page_polled_twice_adds_nothing(db, api):
    account = ozon_account(mode="draft")
    serve_chat(api, fixture("chat_list.json"), latest=fixture("chat_history_latest.json"))
    poll(account, "chat")
    PollCursor.objects.filter(account=account).update(cursor={})  # Ozon gives the page again

    again = poll(account, "chat")

    assert (again.recorded, again.repeats) == (0, 2)
    assert customer_messages().count() == 2


def test_a_poll_cut_short_before_its_cursor_was_saved_replays_without_duplicates_or_second_answers(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = ozon_account()
    serve_chat(api, chat_list(3000000000817031950), latest=history(message(3000000000817031950, "Есть икра горбуши?")))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    assert len(calls_to(api, SEND_URL)) == 1
    # A crash between recording the page and saving its cursor leaves the old cursor.
    PollCursor.objects.filter(account=account).update(cursor={}, leased_until=None)

    with django_capture_on_commit_callbacks(execute=True):
        replay = poll(account, "chat")

    assert replay.recorded == 0
    assert customer_messages().count() == 1
    assert len(calls_to(api, SEND_URL)) == 1


def test_an_auto_account_answers_a_buyer_question_end_to_end(db, api, worker, django_capture_on_commit_callbacks):
    account = ozon_account()
    serve_chat(api, chat_list(3000000000817031950), latest=history(message(3000000000817031950, "Есть икра горбуши?")))

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")

    (body,) = calls_to(api, SEND_URL)
    reply = Message.objects.get(author=Message.Author.BOT)
    assert body["chat_id"] == CHAT
    assert body["text"] == reply.text
    assert "горбуш" in body["text"].lower()
    assert reply.delivery_state == Message.Delivery.SENT


def test_our_answer_coming_back_in_the_next_history_page_is_not_stored_again(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = ozon_account()
    serve_chat(api, chat_list(3000000000817031950), latest=history(message(3000000000817031950, "Есть икра горбуши?")))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    sent = Message.objects.get(author=Message.Author.BOT)
    assert sent.external_id == ""  # the look-up right after the send found nothing yet
    api.reset()
    echo = message(3000000000817031951, sent.text, user_type="seller", user_id="7")
    serve_chat(api, chat_list(3000000000817031951, first_unread=0, unread=0), forward=history(echo))

    result = poll(account, "chat")

    sent.refresh_from_db()
    assert (result.own_sends, result.recorded) == (1, 0)
    assert sent.external_id == "3000000000817031951"
    assert Message.objects.filter(author=Message.Author.OPERATOR).count() == 0
    assert Conversation.objects.get(external_id=CHAT).state == Conversation.State.BOT


def test_a_rate_limited_poll_backs_off(db, api):
    account = ozon_account(mode="draft")
    api.post(LIST_URL, json=fixture("error_429.json"), status=429, headers={"Retry-After": "120"})

    result = poll(account, "chat")

    cursor = PollCursor.objects.get(account=account)
    assert result.error
    assert cursor.not_before is not None
    assert (cursor.not_before - cursor.last_polled_at).total_seconds() >= 119
    assert poll(account, "chat").skipped == "backing off"


def test_a_refused_key_stops_the_account(db, api):
    account = ozon_account(mode="draft")
    api.post(LIST_URL, json=fixture("error_401.json"), status=401)

    poll(account, "chat")

    account.refresh_from_db()
    assert account.stopped_at is not None
    assert account.stop_reason
    assert poll(account, "chat").skipped == "stopped"


# Reviews ------------------------------------------------------------------------


def review_page(rating=5, text=None):
    page = copy.deepcopy(fixture("review_list.json"))
    review = page["reviews"][0]
    review["rating"] = rating
    if text is not None:
        review["text"] = text
    return page


def serve_reviews(api, page):
    api.post(REVIEWS_URL, json=page)
    api.post(COMMENT_URL, json=fixture("review_comment_create.json"))


def test_a_five_star_review_is_answered_automatically_through_the_review_comment_api(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = ozon_account(reviews_mode="auto")
    serve_reviews(api, review_page(rating=5))

    with django_capture_on_commit_callbacks(execute=True):
        result = poll(account, "reviews")

    # The 3★ review processed in the cabinet is recorded, not answered.
    assert result.recorded == 2
    (body,) = calls_to(api, COMMENT_URL)
    reply = Message.objects.get(author=Message.Author.BOT)
    assert body == {"review_id": FIVE_STARS, "text": reply.text, "mark_review_as_processed": True}
    assert reply.delivery_state == Message.Delivery.SENT
    assert reply.external_id == "01936a77-0c1d-7e42-8f3a-5b6c7d8e9f01"


def test_a_one_star_review_becomes_a_draft(db, api, worker, django_capture_on_commit_callbacks):
    account = ozon_account(reviews_mode="auto")
    serve_reviews(api, review_page(rating=1, text="Мидии с песком, есть невозможно."))

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "reviews")

    draft = Message.objects.get(author=Message.Author.BOT)
    assert draft.delivery_state == Message.Delivery.DRAFT
    assert draft.conversation.state == Conversation.State.OPERATOR
    assert calls_to(api, COMMENT_URL) == []


def test_an_approved_review_draft_goes_to_the_review_comment_api_once(
    db, api, worker, django_capture_on_commit_callbacks, django_user_model
):
    account = ozon_account(reviews_mode="auto")
    serve_reviews(api, review_page(rating=1, text="Мидии с песком, есть невозможно."))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "reviews")
    draft = Message.objects.get(author=Message.Author.BOT)
    operator = django_user_model.objects.create_user("olga", password="pw", is_staff=True)
    text = "Нам очень жаль. Напишите, пожалуйста, номер заказа в чат, заменим товар."

    approve_draft(message=draft, operator=operator, text=text)
    approve_draft(message=draft, operator=operator, text=text)

    assert calls_to(api, COMMENT_URL) == [{"review_id": FIVE_STARS, "text": text, "mark_review_as_processed": True}]
    draft.refresh_from_db()
    assert draft.delivery_state == Message.Delivery.SENT


def test_a_five_star_reviews_public_answer_thanks_the_buyer_instead_of_listing_stock(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = ozon_account(reviews_mode="auto")
    serve_reviews(api, review_page(rating=5))

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "reviews")

    (body,) = calls_to(api, COMMENT_URL)
    assert "в наличии" not in body["text"]
    assert "спасибо" in body["text"].lower()
