"""accept_incoming: a channel's parsed message into a conversation, once.

PostgreSQL records it with one statement, other databases step by step; both
keep the same contract, so every test runs against each one the database has.
"""

import pytest
from django.db import connection

from conversations import services
from conversations.incoming import IncomingMessage
from conversations.models import Conversation, Message
from tests.conversations.test_recording import run_at_once
from tests.factories import make_conversation


@pytest.fixture(params=["upsert", "step_by_step"])
def accept(request, db):
    if request.param == "upsert" and connection.vendor != "postgresql":
        pytest.skip("the one-statement upsert is PostgreSQL's (set DATABASE_URL)")
    return {"upsert": services._accept_upsert, "step_by_step": services._accept_step_by_step}[request.param]


def incoming(**fields) -> IncomingMessage:
    values = {
        "channel": "bitrix24",
        "dialog_id": "m1:42",
        "message_id": "m1:1001",
        "text": "Есть икра кеты?",
        "customer_name": "Анна",
        "customer_id": "42",
        "channel_data": {"dialog_id": "42", "bot_id": "7"},
        "raw_payload": {"data": {"PARAMS": {"MESSAGE": "Есть икра кеты?"}}, "auth": {"application_token": "s3"}},
    }
    return IncomingMessage(**{**values, **fields})


def test_first_message_opens_a_conversation_with_the_customer(accept):
    message, created = accept(incoming())

    conversation = Conversation.objects.get()
    assert created is True
    assert (conversation.channel, conversation.external_id) == ("bitrix24", "m1:42")
    assert (conversation.customer_name, conversation.customer_external_id) == ("Анна", "42")
    assert conversation.state == Conversation.State.BOT
    assert conversation.channel_data == {"dialog_id": "42", "bot_id": "7"}
    assert conversation.context_started_at is not None
    assert conversation.last_message_at == message.created_at
    assert message.conversation == conversation


def test_message_is_stored_as_the_customer_wrote_it_without_secrets(accept):
    message, _ = accept(incoming())

    stored = Message.objects.get()
    assert stored.pk == message.pk
    assert (stored.direction, stored.author, stored.text) == ("in", "customer", "Есть икра кеты?")
    assert stored.external_id == "m1:1001"
    assert stored.raw_payload == {"data": {"PARAMS": {"MESSAGE": "Есть икра кеты?"}}, "auth": "***"}
    assert message.raw_payload == stored.raw_payload
    assert message.created_at == stored.created_at


def test_repeated_delivery_returns_the_first_message_and_changes_nothing(accept):
    first, _ = accept(incoming())
    before = Conversation.objects.get().last_message_at

    again, created = accept(incoming(text="другой текст"))

    assert created is False
    assert again.pk == first.pk and again.text == "Есть икра кеты?"
    assert Message.objects.count() == 1
    assert Conversation.objects.get().last_message_at == before


def test_next_message_in_the_dialog_joins_its_conversation(accept):
    first, _ = accept(incoming())

    second, created = accept(incoming(message_id="m1:1002", text="А доставка?"))

    assert created is True
    assert second.conversation.pk == first.conversation.pk
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().last_message_at == second.created_at


def test_later_message_merges_channel_data_and_renames_the_customer(accept):
    accept(incoming())

    accept(incoming(message_id="m1:1002", customer_name="Анна П.", channel_data={"chat_id": "9"}))

    conversation = Conversation.objects.get()
    assert conversation.customer_name == "Анна П."
    assert conversation.channel_data == {"dialog_id": "42", "bot_id": "7", "chat_id": "9"}


def test_message_without_a_name_keeps_the_customers_name(accept):
    accept(incoming())

    accept(incoming(message_id="m1:1002", customer_name=""))

    assert Conversation.objects.get().customer_name == "Анна"


def test_operator_writing_in_the_channel_takes_the_dialog_over(accept):
    accept(incoming())

    message, created = accept(incoming(message_id="m1:1002", author="operator", customer_name="Оператор Олег"))

    conversation = Conversation.objects.get()
    assert created is True
    assert conversation.state == Conversation.State.OPERATOR
    assert conversation.handed_off_at is not None
    assert conversation.customer_name == "Анна"  # an operator is not the customer
    assert message.conversation.state == Conversation.State.OPERATOR


def test_operator_opening_a_dialog_takes_it_over_from_the_start(accept):
    message, _ = accept(incoming(author="operator", customer_name="Оператор Олег"))

    conversation = Conversation.objects.get()
    assert conversation.state == Conversation.State.OPERATOR
    assert conversation.customer_name == ""
    assert message.author == Message.Author.OPERATOR


def test_customer_message_leaves_a_closed_dialog_closed(accept):
    conversation = make_conversation(channel="bitrix24", external_id="m1:42")
    services.close(conversation=conversation)

    message, _ = accept(incoming())

    assert message.conversation.state == Conversation.State.CLOSED
    assert Conversation.objects.get().state == Conversation.State.CLOSED


def test_repeated_operator_message_does_not_take_a_returned_dialog_again(accept):
    accept(incoming(author="operator"))
    Conversation.objects.update(state=Conversation.State.BOT)

    accept(incoming(author="operator"))

    assert Conversation.objects.get().state == Conversation.State.BOT


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_event_are_accepted_once(postgres_only):
    created, errors = run_at_once(lambda: services.accept_incoming(incoming())[1])

    assert errors == []
    assert sorted(created) == [False, False, False, True]
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_message_is_recorded_when_the_database_dropped_the_connection(postgres_only):
    services.accept_incoming(incoming())
    backend = connection.connection.info.backend_pid
    with psycopg_admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])

    message, created = services.accept_incoming(incoming(message_id="m1:1002", text="А доставка?"))

    assert created is True
    assert connection.connection.info.backend_pid != backend
    assert Message.objects.filter(pk=message.pk, text="А доставка?").exists()


def psycopg_admin():
    """A connection of its own to the test database, beside Django's."""
    import psycopg

    params = connection.get_connection_params()
    return psycopg.connect(
        **{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")}, autocommit=True
    )


def test_an_event_id_is_recorded_with_its_message(accept):
    from conversations.models import ReceivedEvent

    accept(incoming(event_id="815240101"))

    assert list(ReceivedEvent.objects.values_list("event_id", flat=True)) == ["815240101"]


def test_a_redelivered_event_is_a_repeat(accept):
    first, _ = accept(incoming(event_id="815240101"))

    again, created = accept(incoming(event_id="815240101"))

    assert (created, again.pk) == (False, first.pk)
    assert Message.objects.count() == 1


def test_two_events_of_one_message_are_one_message(accept):
    accept(incoming(event_id="1"))

    _again, created = accept(incoming(event_id="2"))

    assert created is False
    assert Message.objects.count() == 1


def test_an_event_id_taken_by_another_kind_of_event_still_records_the_message(accept):
    from conversations.services import account_id_for, take_event

    take_event(account_id=account_id_for("bitrix24"), event_id="77")

    message, created = accept(incoming(event_id="77"))

    assert created is True
    assert Message.objects.get().pk == message.pk
