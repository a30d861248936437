"""Recording messages: idempotent, also when the same event arrives twice at once."""

import threading

import pytest
from django.db import connection

from conversations.models import Conversation, Message
from conversations.services import (
    get_or_create_conversation,
    record_incoming,
    record_outgoing,
    strip_secrets,
)


@pytest.mark.django_db
def test_same_external_id_is_recorded_once():
    conversation = get_or_create_conversation(channel="telegram", external_id="chat-1")

    first, created_first = record_incoming(conversation=conversation, text="Привет", external_id="m-1")
    second, created_second = record_incoming(conversation=conversation, text="Привет", external_id="m-1")

    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_same_external_id_in_another_channel_is_another_message():
    telegram = get_or_create_conversation(channel="telegram", external_id="chat-1")
    bitrix = get_or_create_conversation(channel="bitrix24", external_id="chat-1")

    record_incoming(conversation=telegram, text="Привет", external_id="m-1")
    _, created = record_incoming(conversation=bitrix, text="Привет", external_id="m-1")

    assert created is True


@pytest.mark.django_db
def test_stored_payload_has_no_secrets():
    conversation = get_or_create_conversation(channel="bitrix24", external_id="chat-1")
    payload = {"data": {"PARAMS": {"MESSAGE": "Привет"}}, "auth": {"application_token": "abc", "domain": "x"}}

    message, _ = record_incoming(conversation=conversation, text="Привет", raw_payload=payload)

    assert message.raw_payload["auth"] == "***"
    assert message.raw_payload["data"]["PARAMS"]["MESSAGE"] == "Привет"
    assert strip_secrets({"access_token": "t", "nested": [{"client_secret": "s"}]}) == {
        "access_token": "***",
        "nested": [{"client_secret": "***"}],
    }


@pytest.mark.django_db
def test_messages_update_the_conversations_last_message_time():
    conversation = get_or_create_conversation(channel="telegram", external_id="chat-1")

    message, _ = record_incoming(conversation=conversation, text="Привет")
    reply = record_outgoing(conversation=conversation, text="Здравствуйте", in_reply_to=message)

    conversation.refresh_from_db()
    assert conversation.last_message_at == reply.created_at


def run_at_once(target, n=4):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_event_store_one_message(postgres_only):
    def deliver_event():
        conversation = get_or_create_conversation(channel="telegram", external_id="chat-race")
        return record_incoming(conversation=conversation, text="Есть икра?", external_id="race-1")[1]

    created, errors = run_at_once(deliver_event)

    assert errors == []
    assert sorted(created) == [False, False, False, True]
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_two_workers_holding_one_pending_reply_send_it_once(locmem_channels):
    from conversations.services import deliver

    conversation = get_or_create_conversation(channel="telegram", external_id="chat-1")
    question, _ = record_incoming(conversation=conversation, text="Есть икра?")
    reply = record_outgoing(conversation=conversation, text="Есть!", in_reply_to=question)
    first, second = Message.objects.get(pk=reply.pk), Message.objects.get(pk=reply.pk)

    assert deliver(first) is True
    assert deliver(second) is True  # already sent by the first: not sent again

    assert len(locmem_channels.outbox) == 1
    assert Message.objects.get(pk=reply.pk).delivery_attempts == 1
