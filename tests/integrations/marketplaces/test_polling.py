"""Polling a marketplace end to end: Wildberries' buyer chat stubbed at the HTTP layer (recorded shapes,
fixtures/wildberries/), recorded once, answered once by the worker, our own sends not taken in again."""

import copy
import json
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from responses import matchers

from conversations.models import ChannelAccount, Conversation, Message
from integrations import tasks
from integrations.marketplaces.models import MarketplaceAccount, PollCursor
from integrations.marketplaces.polling import poll

FIXTURES = Path(__file__).parent / "fixtures" / "wildberries"
CHAT_API = "https://buyer-chat-api.wildberries.ru"
CHAT = "1:1e265a58-a120-b178-008c-60af2460207c"
SIGN = "1:1e265a58-a120-b178-008c-60af2460207c:7f3c2a4e9b1d6e8f0a2b4c6d8e0f1a3b5c7d9e1f"

pytestmark = pytest.mark.usefixtures("demo_store")


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def wb_account(mode="auto"):
    channel_account = ChannelAccount.objects.create(channel="wildberries", key="wb-shop", name="WB shop")
    return MarketplaceAccount.objects.create(
        channel_account=channel_account, marketplace="wildberries", api_key="wb-chat-token-0123456789", chat_mode=mode
    )


def buyer_event(text="Есть ли икра горбуши?", event_id="ev-1", sender="client", **changes):
    event = copy.deepcopy(fixture("events_page_1.json")["result"]["events"][0])
    # Written just now: a message from weeks ago is backlog, not answered.
    now = timezone.now()
    event.update(addTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"), addTimestamp=int(now.timestamp() * 1000))
    event.update(eventID=event_id, sender=sender, **changes)
    event["message"]["text"] = text
    return event


def serve_events(api, *pages):
    """WB's events, page after page by `next`, then nothing more."""
    for n, page in enumerate(pages):
        query = {"next": str(1000 + n - 1)} if n else {}
        body = {"result": {"next": 1000 + n, "totalEvents": len(page), "events": page}, "errors": None}
        api.get(f"{CHAT_API}/api/v1/seller/events", json=body, match=[matchers.query_param_matcher(query)])
    empty = {"result": {"next": 1000 + len(pages) - 1, "totalEvents": 0, "events": []}, "errors": None}
    api.get(
        f"{CHAT_API}/api/v1/seller/events",
        json=empty,
        match=[matchers.query_param_matcher({"next": str(1000 + len(pages) - 1)})],
    )
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))


def sends(api) -> list:
    return [call for call in api.calls if call.request.url.endswith("/api/v1/seller/message")]


def form_field(call, name: str) -> str:
    body = call.request.body
    marker = f'name="{name}"\r\n\r\n'.encode()
    start = body.index(marker) + len(marker)
    return body[start : body.index(b"\r\n", start)].decode()


def customer_messages():
    return Message.objects.filter(author=Message.Author.CUSTOMER)


def test_a_buyer_message_is_recorded_once_with_its_chat(db, api):
    account = wb_account(mode="draft")
    serve_events(api, [buyer_event()])

    result = poll(account, "chat")

    (message,) = customer_messages()
    assert (result.recorded, message.text) == (1, "Есть ли икра горбуши?")
    assert message.conversation.external_id == CHAT
    assert message.conversation.channel_data["context"]["reply_sign"] == SIGN


def test_the_same_page_polled_twice_adds_nothing(db, api):
    account = wb_account(mode="draft")
    serve_events(api, [buyer_event(), buyer_event("А мидии?", "ev-2")])
    poll(account, "chat")
    PollCursor.objects.filter(account=account).update(cursor={})  # the marketplace gives the page again

    again = poll(account, "chat")

    assert (again.recorded, again.repeats) == (0, 2)
    assert customer_messages().count() == 2


def test_a_poll_cut_short_before_its_cursor_was_saved_replays_without_duplicates_or_second_answers(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = wb_account()
    serve_events(api, [buyer_event()])
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_sent.json"))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    # A crash between recording the page and saving its cursor leaves the old cursor.
    PollCursor.objects.filter(account=account).update(cursor={}, leased_until=None)

    with django_capture_on_commit_callbacks(execute=True):
        replay = poll(account, "chat")

    assert replay.recorded == 0
    assert customer_messages().count() == 1
    assert len(sends(api)) == 1


def test_an_auto_account_answers_a_buyer_question_end_to_end(db, api, worker, django_capture_on_commit_callbacks):
    account = wb_account()
    serve_events(api, [buyer_event("Есть икра горбуши?")])
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_sent.json"))

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")

    (call,) = sends(api)
    reply = Message.objects.get(author=Message.Author.BOT)
    assert form_field(call, "replySign") == SIGN
    assert "горбуш" in form_field(call, "message").lower()
    assert reply.delivery_state == Message.Delivery.SENT


def test_our_answer_coming_back_through_the_next_poll_is_not_taken_in_again(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = wb_account()
    serve_events(api, [buyer_event("Есть икра горбуши?")])
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_sent.json"))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    sent = Message.objects.get(author=Message.Author.BOT)
    api.reset()
    echo = buyer_event(sent.text, "ev-ours", sender="seller", isNewChat=False)
    serve_events(api, [echo])
    PollCursor.objects.filter(account=account).update(cursor={})

    result = poll(account, "chat")

    sent.refresh_from_db()
    assert (result.own_sends, result.recorded) == (1, 0)
    assert sent.external_id == "ev-ours"
    assert Message.objects.filter(author=Message.Author.OPERATOR).count() == 0


def test_a_seller_message_written_in_the_cabinet_takes_the_dialog_from_the_bot(db, api):
    account = wb_account(mode="draft")
    serve_events(api, [buyer_event(), buyer_event("Да, будет в четверг.", "ev-2", sender="seller")])

    poll(account, "chat")

    conversation = Conversation.objects.get(external_id=CHAT)
    assert conversation.state == Conversation.State.OPERATOR
    assert conversation.messages.filter(author=Message.Author.OPERATOR).count() == 1


def test_a_draft_account_keeps_the_answer_for_an_operator(db, api, worker, django_capture_on_commit_callbacks):
    account = wb_account(mode="draft")
    serve_events(api, [buyer_event("Есть икра горбуши?")])

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")

    draft = Message.objects.get(author=Message.Author.BOT)
    assert draft.delivery_state == Message.Delivery.DRAFT
    assert draft.conversation.state == Conversation.State.OPERATOR
    assert sends(api) == []


def test_a_defect_is_never_answered_automatically(db, api, worker, django_capture_on_commit_callbacks):
    account = wb_account(mode="auto")
    serve_events(api, [buyer_event("Пришла банка икры с браком, крышка вздута")])

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")

    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.DRAFT
    assert sends(api) == []


def test_a_send_that_timed_out_is_not_resent_and_is_settled_by_the_next_poll(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = wb_account()
    serve_events(api, [buyer_event("Есть икра горбуши?")])
    api.post(f"{CHAT_API}/api/v1/seller/message", body=requests.Timeout("read timed out"))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")
    reply = Message.objects.get(author=Message.Author.BOT)
    assert reply.delivery_state == Message.Delivery.UNKNOWN
    api.reset()
    serve_events(api, [buyer_event(reply.text, "ev-ours", sender="seller", isNewChat=False)])
    PollCursor.objects.filter(account=account).update(cursor={})

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "chat")

    reply.refresh_from_db()
    assert reply.delivery_state == Message.Delivery.SENT
    assert sends(api) == []


def test_a_rate_limited_poll_backs_off_for_what_wb_asks(db, api):
    account = wb_account(mode="draft")
    api.get(
        f"{CHAT_API}/api/v1/seller/events",
        json=fixture("error_429.json"),
        status=429,
        headers={"X-Ratelimit-Retry": "120"},
    )

    result = poll(account, "chat")

    cursor = PollCursor.objects.get(account=account)
    assert result.error
    assert (cursor.not_before - cursor.last_polled_at).total_seconds() >= 119
    assert poll(account, "chat").skipped == "backing off"


def test_a_refused_key_stops_the_account_with_the_reason(db, api):
    account = wb_account(mode="draft")
    api.get(f"{CHAT_API}/api/v1/seller/events", json=fixture("error_401.json"), status=401)

    poll(account, "chat")

    account.refresh_from_db()
    assert account.stopped_at is not None
    assert account.stop_reason
    assert poll(account, "chat").skipped == "stopped"


def test_what_a_first_poll_finds_from_weeks_ago_is_recorded_but_not_answered(db, api):
    account = wb_account()
    serve_events(api, [buyer_event(addTime="2026-01-10T10:00:00Z", addTimestamp=1768039200000)])

    result = poll(account, "chat")

    (message,) = customer_messages()
    assert result.queued == []
    assert message.needs_reply is False


def test_a_nul_character_in_a_message_does_not_stall_the_stream(db, api):
    account = wb_account(mode="draft")
    serve_events(api, [buyer_event("Есть\x00 икра?")])

    poll(account, "chat")

    assert customer_messages().get().text == "Есть икра?"
    assert PollCursor.objects.get(account=account).cursor != {}


def test_a_page_of_several_buyers_is_answered_once_each(db, api, worker, django_capture_on_commit_callbacks):
    account = wb_account()
    chats = [f"1:chat-{n}" for n in range(3)]
    page = [
        buyer_event("Есть икра горбуши?", f"ev-{n}", chatID=chat, replySign=f"{chat}:sign")
        for n, chat in enumerate(chats)
    ]
    serve_events(api, page)
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_sent.json"))

    with django_capture_on_commit_callbacks(execute=True):
        result = poll(account, "chat")

    assert len(result.queued) == 3
    assert sorted(form_field(call, "replySign") for call in sends(api)) == [f"{chat}:sign" for chat in chats]


def test_the_product_a_buyer_writes_from_is_the_dialogs_subject_when_our_catalog_has_its_article(db, api):
    from tests.factories import make_product

    product = make_product(title="Мидии в раковине 1 кг", sku="183572195")  # the WB card's nmID
    account = wb_account(mode="draft")
    serve_events(api, [buyer_event("А они варёные?")])

    poll(account, "chat")

    conversation = Conversation.objects.get(external_id=CHAT)
    assert conversation.dialog_context["focus"] == product.pk


def test_a_page_half_recorded_by_a_crashed_poll_is_finished_without_duplicates_or_second_answers(
    db, api, worker, django_capture_on_commit_callbacks
):
    from conversations.services import accept_incoming
    from integrations.marketplaces.connectors import connector_for
    from integrations.marketplaces.polling import _incoming, dialog_id

    account = wb_account()
    chats = [f"1:chat-{n}" for n in range(4)]
    page = [
        buyer_event("Есть икра горбуши?", f"ev-{n}", chatID=chat, replySign=f"{chat}:sign")
        for n, chat in enumerate(chats)
    ]
    serve_events(api, page)
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_sent.json"))
    # What a poll killed after its first two messages left behind (recorded, answered, cursor not saved).
    first = next(connector_for(account).pages("chat", {}))
    for item in first.items[:2]:
        message, _ = accept_incoming(_incoming(account, "chat", dialog_id("chat", item.thread_id), item))
        with django_capture_on_commit_callbacks(execute=True):
            tasks.answer(message.pk)
    api.calls.reset()

    with django_capture_on_commit_callbacks(execute=True):
        result = poll(account, "chat")

    assert (result.recorded, result.repeats) == (2, 2)
    assert customer_messages().count() == 4
    assert sorted(form_field(call, "replySign") for call in sends(api)) == [f"{chat}:sign" for chat in chats[2:]]
