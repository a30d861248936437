"""Defects of the channel path found before Telegram was added, each pinned by a test.

- A delivered send whose channel id repeats in another portal or chat must be
  recorded as sent (it once failed on a unique constraint, stayed pending and
  was sent again by the sweep).
- A channel without a sender fails visibly instead of "sending" into a
  catch-all in-memory outbox.
- The assistant's suggested follow-ups reach the customer as buttons.
"""

import pytest

from conversations.channels import DeliveryError, LocmemSender, sender_for
from conversations.models import Message
from conversations.services import account_id_for, deliver, get_or_create_conversation, record_incoming
from integrations.answering import respond
from integrations.registry import CHANNELS
from integrations.tasks import answer, unanswered_messages

pytestmark = pytest.mark.usefixtures("demo_store")


class SameIdSender(LocmemSender):
    """A channel whose message ids are unique per portal or chat only: every send gets id 501."""

    def send(self, message) -> str:
        super().send(message)
        return "501"


@pytest.fixture
def same_ids(settings, locmem_channels):
    settings.CHANNEL_SENDERS = {"*": f"{__name__}.SameIdSender"}
    return locmem_channels


def customer_message(key: str, dialog: str, text: str = "Есть икра кеты?"):
    conversation = get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", key), external_id=f"{key}:{dialog}"
    )
    message, _ = record_incoming(conversation=conversation, text=text, external_id=f"{key}:m1")
    return message


def test_replies_given_the_same_id_by_two_portals_are_both_recorded_as_sent(same_ids):
    first = customer_message("portal-a", "1")
    second = customer_message("portal-b", "1")

    answer(first.pk)
    answer(second.pk)

    replies = Message.objects.filter(author=Message.Author.BOT)
    assert [r.delivery_state for r in replies] == [Message.Delivery.SENT, Message.Delivery.SENT]
    assert [r.external_id for r in replies] == ["501", "501"]


def test_the_sweep_does_not_send_again_what_was_delivered_with_a_repeated_id(same_ids, settings):
    settings.REPLY_SWEEP_AFTER_S = -1  # everything counts as old enough
    for dialog in ("1", "2", "3"):
        answer(customer_message("portal-a", dialog).pk)

    assert list(unanswered_messages()) == []
    assert len(same_ids.outbox) == 3


def test_one_message_id_in_two_portals_is_two_messages():
    first = customer_message("portal-a", "7")
    second = customer_message("portal-b", "7")

    assert first.pk != second.pk


# A registry in which Ozon has no entry, and so no sender.
WITHOUT_OZON = "tests.integrations.test_channel_defects.CHANNELS_BUT_OZON"
CHANNELS_BUT_OZON = [entry for entry in CHANNELS if entry.code != "ozon"]


def test_a_channel_without_a_sender_fails_permanently(settings):
    settings.CHANNEL_SENDERS = {}
    settings.CHANNEL_REGISTRY = WITHOUT_OZON

    with pytest.raises(DeliveryError) as failure:
        sender_for("ozon")

    assert failure.value.permanent


def test_a_reply_without_a_sender_is_recorded_as_failed_not_sent(settings):
    settings.CHANNEL_SENDERS = {}
    settings.CHANNEL_REGISTRY = WITHOUT_OZON
    conversation = get_or_create_conversation(channel="ozon", external_id="chat-1")
    message, _ = record_incoming(conversation=conversation, text="Есть икра кеты?")

    assert answer(message.pk) == "failed"

    reply = Message.objects.get(author=Message.Author.BOT)
    assert reply.delivery_state == Message.Delivery.FAILED
    assert "no sender" in reply.delivery_error


def test_the_admin_transcript_shows_why_a_reply_was_not_delivered(settings, admin_client):
    settings.CHANNEL_SENDERS = {}
    settings.CHANNEL_REGISTRY = WITHOUT_OZON
    conversation = get_or_create_conversation(channel="ozon", external_id="chat-1")
    message, _ = record_incoming(conversation=conversation, text="Есть икра кеты?")
    answer(message.pk)

    page = admin_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()

    assert "no sender for channel" in page


def test_registered_channels_have_their_own_sender_by_default(settings):
    settings.CHANNEL_SENDERS = {}

    assert type(sender_for("bitrix24")).__name__ == "Bitrix24Sender"
    assert type(sender_for("telegram")).__name__ == "TelegramSender"


def test_the_assistants_suggestions_are_stored_on_the_reply_and_sent(locmem_channels):
    conversation = get_or_create_conversation(channel="telegram", external_id="chat-9")
    message, _ = record_incoming(conversation=conversation, text="сколько стоит доставка?")

    reply = respond(message)

    assert reply.suggestions
    assert locmem_channels.outbox[0].suggestions == reply.suggestions


def test_a_delivered_message_keeps_the_channels_id_for_reference(same_ids):
    conversation = get_or_create_conversation(channel="telegram", external_id="chat-3")
    message, _ = record_incoming(conversation=conversation, text="Есть икра кеты?")
    reply = respond(message)
    reply.refresh_from_db()

    assert (reply.delivery_state, reply.external_id) == (Message.Delivery.SENT, "501")
    assert deliver(reply) is True  # sending it again is a no-op, not a second message
    assert len(same_ids.outbox) == 1


class ReentrantSender(LocmemSender):
    """While its send is in flight, the sweep's task for the same message runs (another worker would)."""

    def send(self, message) -> str:
        if len(outbox_during_send) == 0:
            outbox_during_send.append(answer(message.in_reply_to_id))
        return super().send(message)


outbox_during_send: list = []


def test_a_reply_being_sent_is_not_sent_again_by_the_sweeps_task(settings, locmem_channels):
    # Seen in the Telegram bench: a backlog let the sweep queue a second task
    # for a message whose reply was already going out, and the customer got it twice.
    settings.CHANNEL_SENDERS = {"*": f"{__name__}.ReentrantSender"}
    outbox_during_send.clear()
    conversation = get_or_create_conversation(channel="telegram", external_id="chat-11")
    message, _ = record_incoming(conversation=conversation, text="сколько стоит доставка?")

    answer(message.pk)

    assert outbox_during_send == ["pending"]  # the second task left the send in flight alone
    assert len(locmem_channels.outbox) == 1
    assert Message.objects.get(author=Message.Author.BOT).delivery_state == Message.Delivery.SENT


def test_a_send_whose_worker_died_is_taken_up_again_after_its_lease(settings, locmem_channels):
    from datetime import timedelta

    from django.utils import timezone

    conversation = get_or_create_conversation(channel="telegram", external_id="chat-12")
    message, _ = record_incoming(conversation=conversation, text="сколько стоит доставка?")
    reply = respond_without_sending(message)
    Message.objects.filter(pk=reply.pk).update(
        delivery_claimed_at=timezone.now() - timedelta(seconds=settings.REPLY_SEND_LEASE_S + 1), delivery_attempts=1
    )

    answer(message.pk)

    reply.refresh_from_db()
    assert (reply.delivery_state, reply.delivery_attempts) == (Message.Delivery.SENT, 2)
    assert len(locmem_channels.outbox) == 1


def test_a_send_still_within_its_lease_is_left_alone(settings, locmem_channels):
    from django.utils import timezone

    conversation = get_or_create_conversation(channel="telegram", external_id="chat-13")
    message, _ = record_incoming(conversation=conversation, text="сколько стоит доставка?")
    reply = respond_without_sending(message)
    Message.objects.filter(pk=reply.pk).update(delivery_claimed_at=timezone.now(), delivery_attempts=1)

    assert answer(message.pk) == "pending"
    assert locmem_channels.outbox == []


def respond_without_sending(message):
    from conversations.services import record_outgoing

    return record_outgoing(conversation=message.conversation, text="Доставка 390 ₽", in_reply_to=message)
