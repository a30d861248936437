"""deliver() when the database or the cache fails around the channel's send: a
customer gets a message once, and a send that never started is not held back."""

import pytest
import responses
from django.db import OperationalError, connection, transaction

from conversations.channels import ChannelSender
from conversations.models import Message
from conversations.services import deliver
from integrations.http import OutboundHttp
from tests.factories import make_conversation, make_message


def bot_reply():
    return make_message(make_conversation("telegram", external_id="chat-7"), "Вот что есть", author="bot")


class FailingStatements:
    """Refuses the first `times` statements that contain every one of `parts`, as a restarting database would."""

    def __init__(self, *parts: str, times: int = 1):
        self.parts, self.left = parts, times

    def __call__(self, execute, sql, params, many, context):
        if self.left and all(part in sql for part in self.parts):
            self.left -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


@pytest.mark.django_db(transaction=True)
def test_a_sent_message_is_saved_as_sent_once_the_database_answers_again(locmem_channels):
    message = bot_reply()

    with connection.execute_wrapper(FailingStatements("UPDATE", '"delivered_at"', times=2)):
        assert deliver(message) is True

    message.refresh_from_db()
    assert message.delivery_state == Message.Delivery.SENT
    assert message.delivery_claimed_at is None
    assert len(locmem_channels.outbox) == 1


@pytest.mark.django_db
def test_a_send_that_could_not_be_saved_is_not_made_again_by_the_next_try(locmem_channels):
    message = bot_reply()
    with pytest.raises(OperationalError), transaction.atomic():
        with connection.execute_wrapper(FailingStatements("UPDATE", '"delivered_at"')):
            deliver(message)
    assert len(locmem_channels.outbox) == 1
    message.refresh_from_db()
    assert message.delivery_state != Message.Delivery.SENT

    assert deliver(message) is True

    message.refresh_from_db()
    assert message.delivery_state == Message.Delivery.SENT
    assert len(locmem_channels.outbox) == 1


@pytest.mark.django_db
def test_a_send_that_failed_before_the_channel_was_called_gives_its_claim_back(locmem_channels):
    message = bot_reply()

    with (
        connection.execute_wrapper(FailingStatements("SELECT", '"delivery_attempts"')),
        pytest.raises(OperationalError),
    ):
        deliver(message)

    message.refresh_from_db()
    assert message.delivery_claimed_at is None
    assert locmem_channels.outbox == []
    assert deliver(message) is True
    assert len(locmem_channels.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_statement_failed_is_given_back(locmem_channels):
    """The connection can die after the server committed the claim: the claim must not hold the reply."""
    message = bot_reply()

    def commit_then_fail(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("UPDATE") and '"delivery_claimed_at"' in sql and '"delivery_attempts"' in sql:
            raise OperationalError("consuming input failed: server closed the connection unexpectedly")
        return result

    with connection.execute_wrapper(commit_then_fail), pytest.raises(OperationalError):
        deliver(message)

    message.refresh_from_db()
    assert message.delivery_claimed_at is None
    assert deliver(message) is True
    assert len(locmem_channels.outbox) == 1


class DatabaseDownInTheSender(ChannelSender):
    """A sender that reads the database (an account, a portal's token) before its request, as the real ones do."""

    def send(self, message) -> str:
        raise OperationalError("consuming input failed: server closed the connection unexpectedly")


class DatabaseDownAfterTheRequest(ChannelSender):
    """A sender whose request went out through the HTTP seam before the database failed."""

    def send(self, message) -> str:
        OutboundHttp("test-channel").send("POST", "https://channel.test/send", json={"text": message.text})
        raise OperationalError("consuming input failed: server closed the connection unexpectedly")


@pytest.mark.django_db
def test_a_send_the_database_failed_inside_the_sender_before_any_request_gives_its_claim_back(settings):
    settings.CHANNEL_SENDERS = {"telegram": f"{__name__}.DatabaseDownInTheSender"}
    message = bot_reply()

    with pytest.raises(OperationalError):
        deliver(message)

    message.refresh_from_db()
    assert message.delivery_claimed_at is None


@pytest.mark.django_db
def test_a_send_whose_request_went_out_keeps_its_claim_so_it_is_not_repeated_at_once(settings):
    settings.CHANNEL_SENDERS = {"telegram": f"{__name__}.DatabaseDownAfterTheRequest"}
    message = bot_reply()

    with responses.RequestsMock() as http:
        http.post("https://channel.test/send", json={"ok": True})
        with pytest.raises(OperationalError):
            deliver(message)
        assert len(http.calls) == 1

    message.refresh_from_db()
    assert message.delivery_claimed_at is not None
    assert deliver(message) is False
