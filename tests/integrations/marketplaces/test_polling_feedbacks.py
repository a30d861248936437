"""Polling Wildberries' questions and reviews (feedbacks API) end to end, stubbed at the HTTP layer in the recorded
shapes (fixtures/wildberries/): a question answered once by the worker, a low-star review held for an operator and
sent once approved (here or from the inbox), every text sent under the marketplace's rules."""

import copy
import datetime
import json
import re
from pathlib import Path

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from catalog.models import FAQEntry
from conversations.models import ChannelAccount, Conversation, Message
from conversations.services import approve_draft
from inbox import roles
from integrations.marketplaces.models import MarketplaceAccount
from integrations.marketplaces.polling import UNCONFIRMED_AFTER, poll

FIXTURES = Path(__file__).parent / "fixtures" / "wildberries"
FEEDBACKS_API = "https://feedbacks-api.wildberries.ru"
QUESTION = "2ncBtX4B9I0UHoornoqG"
REVIEW = "YX52RZEBhH9mrcYdEJuD"
CONTACTS = "Звоните +7 999 123-45-67, пишите shop@example.ru или на https://shop.example.ru/help."

pytestmark = pytest.mark.usefixtures("demo_store")


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def operator(client):
    person = get_user_model().objects.create_user("olga", password="pw", is_staff=True)
    person.groups.add(Group.objects.get(name=roles.GROUP_NAMES[roles.OPERATORS]))
    client.force_login(person)
    return person


def wb_account(questions="auto", reviews="auto"):
    channel_account = ChannelAccount.objects.create(channel="wildberries", key="wb-shop", name="WB shop")
    return MarketplaceAccount.objects.create(
        channel_account=channel_account,
        marketplace="wildberries",
        api_key="wb-chat-token-0123456789",
        feedbacks_api_key="wb-feedbacks-token-0123456789",
        chat_mode="off",
        questions_mode=questions,
        reviews_mode=reviews,
    )


def question(text="Сколько стоят мидии мясо 500 г?", article="MR-00038", name="Мидии мясо в/м, 500 г"):
    """questions_unanswered.json with the question's text and product changed."""
    page = copy.deepcopy(fixture("questions_unanswered.json"))
    item = page["data"]["questions"][0]
    item["text"] = text
    item["productDetails"].update(supplierArticle=article, productName=name)
    return page


def review(stars=2, pros="", cons="Мелкая, не понравилась", text="Икра мелкая, не понравилась"):
    page = copy.deepcopy(fixture("feedbacks_unanswered.json"))
    item = page["data"]["feedbacks"][0]
    item.update(productValuation=stars, pros=pros, cons=cons, text=text)
    return page


def serve(api, questions=None, feedbacks=None):
    api.get(f"{FEEDBACKS_API}/api/v1/new-feedbacks-questions", json=fixture("new_feedbacks_questions_new.json"))
    if questions is not None:
        api.get(f"{FEEDBACKS_API}/api/v1/questions", json=questions)
    if feedbacks is not None:
        api.get(f"{FEEDBACKS_API}/api/v1/feedbacks", json=feedbacks)
    api.patch(f"{FEEDBACKS_API}/api/v1/questions", json=fixture("question_answered.json"))
    api.post(f"{FEEDBACKS_API}/api/v1/feedbacks/answer", status=204)


def answers_to_questions(api) -> list[dict]:
    return [
        json.loads(call.request.body)
        for call in api.calls
        if call.request.method == "PATCH" and call.request.url.endswith("/api/v1/questions")
    ]


def answers_to_reviews(api) -> list[dict]:
    return [
        json.loads(call.request.body)
        for call in api.calls
        if call.request.method == "POST" and call.request.url.endswith("/api/v1/feedbacks/answer")
    ]


def review_draft(api, worker_capture, stars=2):
    account = wb_account()
    serve(api, feedbacks=review(stars=stars))
    with worker_capture(execute=True):
        poll(account, "reviews")
    return Message.objects.get(author=Message.Author.BOT)


# Questions ----------------------------------------------------------------------


def test_an_auto_account_answers_a_new_question_about_a_product_of_our_catalog(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = wb_account()
    serve(api, questions=question())

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "questions")

    (body,) = answers_to_questions(api)
    reply = Message.objects.get(author=Message.Author.BOT)
    assert body == {"id": QUESTION, "answer": {"text": reply.text}, "state": "wbRu"}
    assert "мидии" in reply.text.lower()
    assert reply.delivery_state == Message.Delivery.SENT
    assert reply.conversation.external_id == f"question:{QUESTION}"


def test_a_question_polled_twice_is_one_conversation_and_one_answer(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = wb_account()
    serve(api, questions=question())

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "questions")
    with django_capture_on_commit_callbacks(execute=True):
        again = poll(account, "questions")  # WB lists it until the answer shows

    assert (again.recorded, again.repeats) == (0, 1)
    assert Conversation.objects.count() == 1
    assert Message.objects.filter(author=Message.Author.BOT).count() == 1
    assert len(answers_to_questions(api)) == 1


def test_an_answer_that_timed_out_is_unknown_and_not_sent_again(db, api, worker, django_capture_on_commit_callbacks):
    account = wb_account()
    serve(api, questions=question())
    api.replace(responses.PATCH, f"{FEEDBACKS_API}/api/v1/questions", body=requests.Timeout("read timed out"))

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "questions")
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "questions")

    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.UNKNOWN
    assert len(answers_to_questions(api)) == 1


def test_an_unconfirmed_answer_to_a_question_is_failed_and_handed_to_a_person_after_a_while(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = wb_account()  # buyer chats off: questions and reviews only
    serve(api, questions=question())
    api.replace(responses.PATCH, f"{FEEDBACKS_API}/api/v1/questions", body=requests.Timeout("read timed out"))
    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "questions")
    reply = Message.objects.get(author=Message.Author.BOT)
    Message.objects.filter(pk=reply.pk).update(
        created_at=reply.created_at - UNCONFIRMED_AFTER - datetime.timedelta(minutes=1)
    )

    result = poll(account, "questions")

    assert not result.error
    reply.refresh_from_db()
    assert reply.delivery_state == Message.Delivery.FAILED
    assert reply.conversation.state == Conversation.State.OPERATOR
    assert len(answers_to_questions(api)) == 1


# Reviews ------------------------------------------------------------------------


def test_a_low_star_review_becomes_a_draft_and_nothing_is_sent(db, api, worker, django_capture_on_commit_callbacks):
    draft = review_draft(api, django_capture_on_commit_callbacks, stars=2)

    assert draft.delivery_state == Message.Delivery.DRAFT
    assert draft.conversation.state == Conversation.State.OPERATOR
    assert draft.conversation.channel_data["context"]["rating"] == 2
    assert answers_to_reviews(api) == []


def test_a_one_star_review_is_a_draft_too(db, api, worker, django_capture_on_commit_callbacks):
    draft = review_draft(api, django_capture_on_commit_callbacks, stars=1)

    assert draft.delivery_state == Message.Delivery.DRAFT
    assert answers_to_reviews(api) == []


def test_an_approved_review_draft_goes_to_the_review_api_once(
    db, api, worker, django_capture_on_commit_callbacks, django_user_model
):
    draft = review_draft(api, django_capture_on_commit_callbacks)
    person = django_user_model.objects.create_user("olga", password="pw", is_staff=True)

    approve_draft(message=draft, operator=person)
    approve_draft(message=draft, operator=person)

    draft.refresh_from_db()
    assert answers_to_reviews(api) == [{"id": REVIEW, "text": draft.text}]
    assert draft.delivery_state == Message.Delivery.SENT


def test_a_review_answered_by_an_operator_from_the_inbox_goes_to_the_review_api(
    db, api, worker, client, operator, django_capture_on_commit_callbacks
):
    draft = review_draft(api, django_capture_on_commit_callbacks)
    text = "Нам очень жаль, что икра не понравилась. Передали замечание поставщику."
    url = reverse("inbox:action", args=[draft.conversation.pk, "approve"])

    client.post(url, {"draft": draft.pk, "text": text})
    client.post(url, {"draft": draft.pk, "text": text})

    assert answers_to_reviews(api) == [{"id": REVIEW, "text": text}]
    draft.refresh_from_db()
    assert draft.delivery_state == Message.Delivery.SENT
    assert draft.operator == operator


# What reaches Wildberries -------------------------------------------------------


def test_an_operators_answer_reaches_wb_without_links_phones_or_emails(
    db, api, worker, client, operator, django_capture_on_commit_callbacks
):
    draft = review_draft(api, django_capture_on_commit_callbacks)
    text = f"Спасибо за отзыв! Работа над упаковкой идёт, на линии поддержки человек, а не робот. {CONTACTS}"

    client.post(reverse("inbox:action", args=[draft.conversation.pk, "approve"]), {"draft": draft.pk, "text": text})

    (body,) = answers_to_reviews(api)
    sent = body["text"]
    for contact in ("+7", "999", "@", "shop@example.ru", "http", "shop.example.ru"):
        assert contact not in sent
    for word in ("Работа", "робот", "линии"):
        assert word in sent
    draft.refresh_from_db()
    assert draft.text == sent  # the transcript shows what the buyer got


def test_the_bots_answer_reaches_wb_without_links_phones_or_emails(db, api, worker, django_capture_on_commit_callbacks):
    FAQEntry.objects.create(
        question="Гарантия свежести",
        keywords="гарантия, гарантии",
        answer="Гарантия свежести на всё. Работа склада под контролем, на линии поддержки человек, а не робот. "
        + CONTACTS,
        sort_order=-1,
    )
    account = wb_account()
    serve(api, questions=question(text="Какая у вас гарантия свежести?"))

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "questions")

    (body,) = answers_to_questions(api)
    sent = body["answer"]["text"]
    for contact in ("+7", "999", "@", "shop@example.ru", "http", "shop.example.ru"):
        assert contact not in sent
    for word in ("Работа", "робот", "линии"):
        assert word in sent
    assert Message.objects.get(author=Message.Author.BOT).text == sent


def test_a_five_star_reviews_public_answer_thanks_the_buyer_instead_of_listing_stock(
    db, api, worker, django_capture_on_commit_callbacks
):
    account = wb_account()
    serve(api, feedbacks=review(stars=5, pros="Крупная, вкусная", cons="", text="Икра кеты отличная, спасибо!"))

    with django_capture_on_commit_callbacks(execute=True):
        poll(account, "reviews")

    (body,) = answers_to_reviews(api)
    assert "в наличии" not in body["text"]
    assert re.search("спасибо|благодар", body["text"].lower())
