"""The Wildberries connector: buyer chat events and answers, questions and reviews, errors, the key check.

WB is stubbed at the HTTP layer with `responses`, answering with payloads in
WB's documented shape (fixtures/wildberries/, see NOTES.md there); waiting
goes through an injected `sleep` that only records, on a fixed clock.
"""

import json
from pathlib import Path

import pytest
import requests
import responses
from django.core.cache import cache
from responses import matchers

from conversations.models import ChannelAccount
from integrations.marketplaces.base import (
    CHAT,
    CUSTOMER,
    QUESTIONS,
    REVIEWS,
    SELLER,
    SYSTEM,
    MarketplaceApiError,
    MarketplaceHttp,
    SendOutcomeUnknown,
    Thread,
)
from integrations.marketplaces.models import MarketplaceAccount
from integrations.marketplaces.wildberries import WildberriesConnector

FIXTURES = Path(__file__).parent / "fixtures" / "wildberries"
CHAT_API = "https://buyer-chat-api.wildberries.ru"
FEEDBACKS_API = "https://feedbacks-api.wildberries.ru"
CHAT_KEY = "wb-chat-token-0123456789"
FEEDBACKS_KEY = "wb-feedbacks-token-9876543210"
NOW = 1_764_630_000.0

NEW_CHAT = "1:1e265a58-a120-b178-008c-60af2460207c"
NEW_CHAT_SIGN = "1:1e265a58-a120-b178-008c-60af2460207c:7f3c2a4e9b1d6e8f0a2b4c6d8e0f1a3b5c7d9e1f"
OLD_CHAT = "1:9c0d5e2a-77b1-4c1e-a3f2-0b8e6d4c2a10"
OLD_CHAT_SIGN = "1:9c0d5e2a-77b1-4c1e-a3f2-0b8e6d4c2a10:0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d"
PAGE_1_NEXT = 1796166061000
PAGE_2_NEXT = 1796166122000


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _fresh_buckets():
    # The rate-limit buckets live in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def account(db):
    channel_account = ChannelAccount.objects.create(channel="wildberries", key="wb-shop", name="WB shop")
    return MarketplaceAccount.objects.create(
        channel_account=channel_account,
        marketplace="wildberries",
        api_key=CHAT_KEY,
        feedbacks_api_key=FEEDBACKS_KEY,
    )


@pytest.fixture
def connector(account, sleeps):
    http = MarketplaceHttp("wildberries", sleep=sleeps.append, clock=lambda: NOW, backoff=0)
    return WildberriesConnector(account, http=http)


def events(api, name: str, next_value: int | None = None, **kwargs):
    query = {"next": str(next_value)} if next_value is not None else {}
    api.get(
        f"{CHAT_API}/api/v1/seller/events",
        json=fixture(name),
        match=[matchers.query_param_matcher(query)],
        **kwargs,
    )


def probe(api, name: str):
    api.get(f"{FEEDBACKS_API}/api/v1/new-feedbacks-questions", json=fixture(name))


def requested(api, path: str) -> list:
    return [call for call in api.calls if call.request.url.split("?")[0].endswith(path)]


def form_field(call, name: str) -> str:
    body = call.request.body
    marker = f'name="{name}"\r\n\r\n'.encode()
    start = body.index(marker) + len(marker)
    return body[start : body.index(b"\r\n", start)].decode()


# Buyer chat: polling ---------------------------------------------------------------


def test_events_are_read_by_next_until_wb_says_there_are_none_left(api, connector):
    events(api, "events_page_1.json")
    events(api, "events_page_2.json", PAGE_1_NEXT)
    events(api, "events_empty.json", PAGE_2_NEXT)
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))

    pages = list(connector.pages(CHAT, {}))

    assert [page.cursor for page in pages] == [{"next": PAGE_1_NEXT}, {"next": PAGE_2_NEXT}, {"next": PAGE_2_NEXT}]
    assert [page.more for page in pages] == [True, True, False]
    assert [len(page.items) for page in pages] == [2, 2, 0]
    assert [item.message_id for item in pages[0].items] == [
        "4d1f3b0e-6a5c-4a3e-9f0b-2f6c8f8e1a01",
        "4d1f3b0e-6a5c-4a3e-9f0b-2f6c8f8e1a02",
    ]
    assert len(requested(api, "/api/v1/seller/events")) == 3


def test_polling_the_stored_cursor_again_adds_nothing_when_wb_has_nothing_new(api, connector):
    events(api, "events_empty.json", PAGE_2_NEXT)

    pages = list(connector.pages(CHAT, {"next": PAGE_2_NEXT}))

    assert len(pages) == 1
    assert pages[0].items == []
    assert pages[0].cursor == {"next": PAGE_2_NEXT}
    assert pages[0].more is False
    assert len(api.calls) == 1


def test_a_wb_system_message_is_system_and_needs_no_answer(api, connector):
    events(api, "events_page_1.json")
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))

    items = next(connector.pages(CHAT, {})).items

    system = items[1]
    assert system.author == SYSTEM
    assert system.needs_reply is False
    assert system.text.startswith("Покупатель начал чат")


def test_the_buyer_and_the_seller_are_told_apart(api, connector):
    events(api, "events_page_2.json", PAGE_1_NEXT)
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))

    seller, buyer = next(connector.pages(CHAT, {"next": PAGE_1_NEXT})).items

    assert (seller.author, seller.needs_reply) == (SELLER, False)
    assert (buyer.author, buyer.needs_reply) == (CUSTOMER, True)


def test_a_new_chat_event_gives_its_reply_sign_and_product(api, connector):
    events(api, "events_page_1.json")
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))

    first = next(connector.pages(CHAT, {})).items[0]

    assert first.thread_id == NEW_CHAT
    assert first.context["reply_sign"] == NEW_CHAT_SIGN
    assert first.context["is_new_chat"] is True
    assert first.context["nm_id"] == "183572195"
    assert first.customer_name == "Ольга"
    assert first.created_at.isoformat() == "2026-12-01T23:00:00+00:00"


def test_an_event_of_an_older_chat_gets_its_reply_sign_from_the_chat_list(api, connector):
    events(api, "events_page_2.json", PAGE_1_NEXT)
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))

    buyer = next(connector.pages(CHAT, {"next": PAGE_1_NEXT})).items[1]

    assert buyer.thread_id == OLD_CHAT
    assert buyer.context["reply_sign"] == OLD_CHAT_SIGN
    assert buyer.attachments[0]["kind"] == "photo"
    assert buyer.attachments[0]["file_id"] == "a1b2c3d4e5f6.jpg"


# Buyer chat: answers ---------------------------------------------------------------


def test_a_reply_carries_the_stored_reply_sign_in_a_multipart_body(api, connector):
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_sent.json"))

    connector.send(Thread(CHAT, OLD_CHAT, {"reply_sign": OLD_CHAT_SIGN}), "Заменим банку, напишите номер заказа")

    (call,) = api.calls
    assert call.request.headers["Content-Type"].startswith("multipart/form-data")
    assert call.request.headers["Authorization"] == CHAT_KEY
    assert form_field(call, "replySign") == OLD_CHAT_SIGN
    assert form_field(call, "message") == "Заменим банку, напишите номер заказа"


def test_a_missing_reply_sign_is_looked_up_in_the_chat_list(api, connector):
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_sent.json"))

    connector.send(Thread(CHAT, OLD_CHAT, {}), "Добрый день!")

    assert form_field(requested(api, "/api/v1/seller/message")[0], "replySign") == OLD_CHAT_SIGN


def test_no_reply_sign_anywhere_is_a_permanent_error_and_nothing_is_sent(api, connector):
    api.get(f"{CHAT_API}/api/v1/seller/chats", json={"result": [], "errors": None})

    with pytest.raises(MarketplaceApiError) as caught:
        connector.send(Thread(CHAT, OLD_CHAT, {}), "Добрый день!")

    assert caught.value.code == "NO_REPLY_SIGN"
    assert caught.value.permanent is True
    assert requested(api, "/api/v1/seller/message") == []


def test_a_file_answer_wb_holds_for_moderation_202_is_accepted(api, connector):
    api.post(f"{CHAT_API}/api/v1/seller/message", json=fixture("message_file_moderation.json"), status=202)

    result = connector.send(
        Thread(CHAT, OLD_CHAT, {"reply_sign": OLD_CHAT_SIGN}),
        "Инструкция по возврату",
        files=[("return.pdf", b"%PDF-1.4 test", "application/pdf")],
    )

    assert result == ""
    assert b'name="file"; filename="return.pdf"' in api.calls[0].request.body


def test_a_timeout_on_a_send_is_an_unknown_outcome_after_one_request(api, connector):
    api.post(f"{CHAT_API}/api/v1/seller/message", body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(SendOutcomeUnknown):
        connector.send(Thread(CHAT, OLD_CHAT, {"reply_sign": OLD_CHAT_SIGN}), "Добрый день!")

    assert len(api.calls) == 1


def test_a_gateway_timeout_on_a_send_is_an_unknown_outcome_too(api, connector):
    api.post(f"{CHAT_API}/api/v1/seller/message", body="<html>504 Gateway Time-out</html>", status=504)

    with pytest.raises(SendOutcomeUnknown):
        connector.send(Thread(CHAT, OLD_CHAT, {"reply_sign": OLD_CHAT_SIGN}), "Добрый день!")

    assert len(api.calls) == 1


def test_a_send_wb_refused_with_429_goes_again_after_x_ratelimit_retry(api, connector, sleeps):
    url = f"{CHAT_API}/api/v1/seller/message"
    api.post(url, json=fixture("error_429.json"), status=429, headers={"X-Ratelimit-Retry": "2"})
    api.post(url, json=fixture("message_sent.json"))

    connector.send(Thread(CHAT, OLD_CHAT, {"reply_sign": OLD_CHAT_SIGN}), "Добрый день!")

    assert sleeps[0] == 2.0
    assert len(api.calls) == 2


def test_a_server_error_on_a_send_is_not_repeated_within_the_call(api, connector):
    api.post(f"{FEEDBACKS_API}/api/v1/feedbacks/answer", json={"title": "internal error"}, status=500)

    with pytest.raises(MarketplaceApiError) as caught:
        connector.send(Thread(REVIEWS, "YX52RZEBhH9mrcYdEJuD"), "Спасибо!")

    assert caught.value.permanent is False
    assert len(api.calls) == 1


def test_a_text_over_1000_characters_is_refused_before_any_request(api, connector):
    with pytest.raises(MarketplaceApiError) as caught:
        connector.send(Thread(CHAT, OLD_CHAT, {"reply_sign": OLD_CHAT_SIGN}), "а" * 1001)

    assert caught.value.code == "TEXT_TOO_LONG"
    assert len(api.calls) == 0


# Errors ----------------------------------------------------------------------------


def test_401_stops_the_account(api, connector):
    api.get(f"{CHAT_API}/api/v1/seller/events", json=fixture("error_401.json"), status=401)

    with pytest.raises(MarketplaceApiError) as caught:
        list(connector.pages(CHAT, {}))

    assert caught.value.stops_account is True
    assert caught.value.permanent is True
    assert len(api.calls) == 1


def test_403_stops_the_account_and_names_the_missing_category(api, connector):
    api.get(f"{FEEDBACKS_API}/api/v1/new-feedbacks-questions", json=fixture("error_403_feedbacks.json"), status=403)

    with pytest.raises(MarketplaceApiError) as caught:
        list(connector.pages(QUESTIONS, {}))

    assert caught.value.stops_account is True
    assert "«Вопросы и отзывы»" in caught.value.description


def test_429_waits_as_long_as_x_ratelimit_retry_says(api, connector, sleeps):
    events(api, "error_429.json", PAGE_2_NEXT, status=429, headers={"X-Ratelimit-Retry": "7"})
    events(api, "events_empty.json", PAGE_2_NEXT)

    pages = list(connector.pages(CHAT, {"next": PAGE_2_NEXT}))

    assert pages[0].items == []
    assert sleeps[0] == 7.0
    assert len(api.calls) == 2


def test_a_server_error_on_a_read_is_retried(api, connector):
    events(api, "error_429.json", PAGE_2_NEXT, status=502)
    events(api, "events_empty.json", PAGE_2_NEXT)

    pages = list(connector.pages(CHAT, {"next": PAGE_2_NEXT}))

    assert pages[0].more is False
    assert len(api.calls) == 2


# Questions and reviews -------------------------------------------------------------


def test_unanswered_questions_are_listed_with_their_product(api, connector):
    probe(api, "new_feedbacks_questions_new.json")
    api.get(
        f"{FEEDBACKS_API}/api/v1/questions",
        json=fixture("questions_unanswered.json"),
        match=[matchers.query_param_matcher({"isAnswered": "false", "take": "500", "skip": "0", "order": "dateAsc"})],
    )

    pages = list(connector.pages(QUESTIONS, {}))

    (question,) = [item for page in pages for item in page.items]
    assert (question.thread_id, question.message_id) == ("2ncBtX4B9I0UHoornoqG", "2ncBtX4B9I0UHoornoqG")
    assert question.context == {
        "nm_id": "183572195",
        "offer_id": "MID-500",
        "product_name": "Мидии варёно-мороженые в раковине",
        "brand": "Северный берег",
    }
    assert question.needs_reply is True
    assert pages[-1].cursor == {"listed_at": NOW}
    assert pages[-1].more is False
    assert api.calls[0].request.headers["Authorization"] == FEEDBACKS_KEY


def test_unanswered_reviews_are_listed_with_stars_pros_and_cons(api, connector):
    probe(api, "new_feedbacks_questions_new.json")
    api.get(f"{FEEDBACKS_API}/api/v1/feedbacks", json=fixture("feedbacks_unanswered.json"))

    (review,) = [item for page in connector.pages(REVIEWS, {}) for item in page.items]

    assert review.thread_id == "YX52RZEBhH9mrcYdEJuD"
    assert review.context["rating"] == 4
    assert review.context["pros"] == "Крупные, вкусные"
    assert review.context["cons"] == "Одна банка пришла помятая"
    assert review.context["offer_id"] == "IKRA-100"
    assert review.text == "Достоинства: Крупные, вкусные\nНедостатки: Одна банка пришла помятая"
    assert review.customer_name == "Марина"
    assert review.attachments[0]["kind"] == "photo"


def test_the_probe_with_nothing_new_after_a_recent_listing_makes_no_list_request(api, connector):
    probe(api, "new_feedbacks_questions_nothing.json")

    pages = list(connector.pages(QUESTIONS, {"listed_at": NOW - 60}))

    assert len(api.calls) == 1
    assert [(page.items, page.cursor, page.more) for page in pages] == [([], {"listed_at": NOW - 60}, False)]


def test_the_first_poll_lists_even_when_the_probe_says_nothing_is_new(api, connector):
    probe(api, "new_feedbacks_questions_nothing.json")
    api.get(f"{FEEDBACKS_API}/api/v1/questions", json=fixture("questions_unanswered.json"))

    items = [item for page in connector.pages(QUESTIONS, {}) for item in page.items]

    assert len(items) == 1


def test_questions_are_paged_by_skip_while_pages_are_full(api, connector):
    connector.page_size = 1
    probe(api, "new_feedbacks_questions_new.json")
    for skip, body in ((0, fixture("questions_unanswered.json")), (1, {"data": {"questions": []}, "error": False})):
        api.get(
            f"{FEEDBACKS_API}/api/v1/questions",
            json=body,
            match=[matchers.query_param_matcher({"take": "1", "skip": str(skip)}, strict_match=False)],
        )

    pages = list(connector.pages(QUESTIONS, {}))

    assert [page.more for page in pages] == [True, True, False]
    assert pages[1].cursor == {}


def test_answering_a_question_patches_it_with_the_answer_and_state(api, connector):
    api.patch(f"{FEEDBACKS_API}/api/v1/questions", json=fixture("question_answered.json"))

    connector.send(Thread(QUESTIONS, "2ncBtX4B9I0UHoornoqG"), "Мидии в раковине, около 25 штук в 500 г.")

    assert json.loads(api.calls[0].request.body) == {
        "id": "2ncBtX4B9I0UHoornoqG",
        "answer": {"text": "Мидии в раковине, около 25 штук в 500 г."},
        "state": "wbRu",
    }


def test_answering_a_review_posts_its_id_and_text(api, connector):
    api.post(f"{FEEDBACKS_API}/api/v1/feedbacks/answer", status=204)

    connector.send(Thread(REVIEWS, "YX52RZEBhH9mrcYdEJuD"), "Марина, спасибо! Заменим помятую банку.")

    assert json.loads(api.calls[0].request.body) == {
        "id": "YX52RZEBhH9mrcYdEJuD",
        "text": "Марина, спасибо! Заменим помятую банку.",
    }


def test_editing_a_review_answer_patches_it(api, connector):
    api.patch(f"{FEEDBACKS_API}/api/v1/feedbacks/answer", status=204)

    connector.edit_answer(Thread(REVIEWS, "YX52RZEBhH9mrcYdEJuD"), "Марина, спасибо! Банку уже отправили.")

    (call,) = api.calls
    assert call.request.method == "PATCH"
    assert json.loads(call.request.body) == {
        "id": "YX52RZEBhH9mrcYdEJuD",
        "text": "Марина, спасибо! Банку уже отправили.",
    }


def test_questions_and_reviews_use_the_chat_key_when_they_have_none_of_their_own(api, connector, account):
    account.feedbacks_api_key = ""
    probe(api, "new_feedbacks_questions_nothing.json")

    list(connector.pages(REVIEWS, {"listed_at": NOW}))

    assert api.calls[0].request.headers["Authorization"] == CHAT_KEY


# Key check -------------------------------------------------------------------------


def test_the_key_check_tells_which_category_the_keys_open(api, connector):
    api.get(f"{CHAT_API}/api/v1/seller/chats", json=fixture("chats.json"))
    api.get(f"{FEEDBACKS_API}/api/v1/new-feedbacks-questions", json=fixture("error_401.json"), status=401)

    check = connector.check_key()

    assert check.ok is False
    assert check.capabilities == {"chat": True, "feedbacks": False}
    assert "«Чат с покупателями»: ключ работает." in check.detail
    assert "«Вопросы и отзывы»" in check.detail
