"""respond() records a new reply already claimed for its send, in the commit of
its INSERT, and only while the dialog is the bot's: no second write claims it,
no other worker sends it, and a dialog taken meanwhile gets nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import bots.assistant
from conversations.models import Conversation, Message
from conversations.services import get_or_create_conversation, mark_blocked, record_incoming
from integrations import answering
from integrations.answering import respond

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")


@pytest.fixture
def dialog(db):
    return get_or_create_conversation(channel="telegram", external_id="chat-claim", customer_name="Анна")


def test_a_new_reply_is_sent_once_with_one_attempt_and_no_claim_left(dialog, locmem_channels):
    question, _ = record_incoming(conversation=dialog, text="Какая икра есть в наличии?")

    reply = respond(question)

    reply.refresh_from_db()
    assert reply.delivery_state == Message.Delivery.SENT
    assert reply.delivery_attempts == 1
    assert reply.delivery_claimed_at is None
    assert len(locmem_channels.outbox) == 1
    assert locmem_channels.outbox[0].products == [p.title for p in reply.products.all()]
    assert respond(question).pk == reply.pk
    assert len(locmem_channels.outbox) == 1


def test_the_reply_is_claimed_in_the_commit_that_records_it(dialog, monkeypatch):
    question, _ = record_incoming(conversation=dialog, text="привет")
    seen = {}

    def send(message, *, claimed_at=None):
        # What another worker would read by now: the reply, claimed.
        stored = Message.objects.get(pk=message.pk)
        seen.update(claimed=stored.delivery_claimed_at, attempts=stored.delivery_attempts, given=claimed_at)
        return True

    monkeypatch.setattr(answering, "deliver", send)

    with CaptureQueriesContext(connection) as queries:
        respond(question)

    assert seen["claimed"] is not None and seen["claimed"] == seen["given"]
    assert seen["attempts"] == 1
    assert not any(q["sql"].startswith("UPDATE") and "delivery_attempts" in q["sql"] for q in queries.captured_queries)


def test_no_reply_is_recorded_when_an_operator_takes_the_dialog_while_it_is_composed(
    dialog, locmem_channels, monkeypatch
):
    question, _ = record_incoming(conversation=dialog, text="Какая икра есть в наличии?")
    compose = bots.assistant.reply

    def slow_reply(conversation, message):
        answer = compose(conversation, message)
        Conversation.objects.filter(pk=conversation.pk).update(state=Conversation.State.OPERATOR)
        return answer

    monkeypatch.setattr(bots.assistant, "reply", slow_reply)

    assert respond(question) is None
    assert not Message.objects.filter(in_reply_to=question).exists()
    assert locmem_channels.outbox == []


def test_a_reply_into_a_blocked_dialog_is_recorded_as_failed_not_sent(dialog, locmem_channels):
    mark_blocked(conversation=dialog, blocked=True)
    question, _ = record_incoming(conversation=dialog, text="привет")

    with pytest.raises(Exception, match="blocked"):
        respond(question)

    reply = Message.objects.get(in_reply_to=question)
    assert reply.delivery_state == Message.Delivery.FAILED
    assert reply.delivery_claimed_at is None
    assert locmem_channels.outbox == []


def test_a_hand_off_that_failed_gives_the_claim_back_for_the_retry(dialog, locmem_channels, monkeypatch):
    question, _ = record_incoming(conversation=dialog, text="позовите оператора")
    hand_off = answering.hand_off

    def failing_hand_off(**kwargs):
        raise RuntimeError("the queue is down")

    monkeypatch.setattr(answering, "hand_off", failing_hand_off)
    with pytest.raises(RuntimeError):
        respond(question)

    notice = Message.objects.get(in_reply_to=question)
    assert notice.delivery_claimed_at is None
    assert locmem_channels.outbox == []

    monkeypatch.setattr(answering, "hand_off", hand_off)
    assert respond(question).delivery_state == Message.Delivery.SENT
    assert len(locmem_channels.outbox) == 1
    dialog.refresh_from_db()
    assert dialog.state == Conversation.State.OPERATOR
