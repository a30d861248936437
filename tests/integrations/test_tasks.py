"""The shared worker side: answering, retrying a failed send, sweeping lost messages."""

import contextlib
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django_q.models import Schedule

from conversations.channels import ChannelSender, DeliveryError, LocmemSender
from conversations.models import Conversation, Message
from conversations.services import get_or_create_conversation, record_incoming, record_outgoing, take_over
from integrations.tasks import (
    SWEEP_SCHEDULE,
    answer,
    deliver_message,
    enqueue_answer,
    requeue_left_behind,
    sweep_unanswered,
    unanswered_messages,
)
from tests.outages import cache_outage

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")

# How many sends FlakySender refuses before it lets one through.
failures_left = {"count": 0, "permanent": False}


class FlakySender(LocmemSender):
    """Refuses sends while failures_left says so, as a rate-limited channel would."""

    def send(self, message) -> str:
        if failures_left["count"] > 0:
            failures_left["count"] -= 1
            raise DeliveryError("QUERY_LIMIT_EXCEEDED", permanent=failures_left["permanent"])
        return super().send(message)


class GoneSender(ChannelSender):
    def send(self, message) -> str:
        raise DeliveryError("the customer blocked the bot", permanent=True)

    def hand_off(self, conversation, reason):
        return None


@pytest.fixture
def flaky(settings):
    settings.CHANNEL_SENDERS = {"*": f"{__name__}.FlakySender"}
    failures_left.update(count=0, permanent=False)
    yield failures_left
    failures_left.update(count=0, permanent=False)


@pytest.fixture
def dialog(db):
    return get_or_create_conversation(channel="telegram", external_id="chat-5")


def customer_says(conversation, text, *, minutes_ago=0):
    message, _ = record_incoming(conversation=conversation, text=text)
    if minutes_ago:
        Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
        message.refresh_from_db()
    return message


def test_answer_sends_the_reply(dialog, locmem_channels):
    message = customer_says(dialog, "сколько стоит доставка?")

    assert answer(message.pk) == "sent"
    assert "390 ₽" in locmem_channels.outbox[0].text


def test_failed_send_is_retried_later_with_the_attempt_recorded(dialog, flaky):
    flaky["count"] = 1
    message = customer_says(dialog, "сколько стоит доставка?")

    assert answer(message.pk) == "retry"

    reply = message.replies.get()
    assert (reply.delivery_state, reply.delivery_attempts) == (Message.Delivery.FAILED, 1)
    assert "QUERY_LIMIT_EXCEEDED" in reply.delivery_error
    retry = Schedule.objects.get(func="integrations.tasks.answer")
    assert retry.next_run > timezone.now()


def test_retry_delivers_the_same_reply_once(dialog, flaky, locmem_channels):
    flaky["count"] = 1
    message = customer_says(dialog, "сколько стоит доставка?")
    answer(message.pk)

    assert answer(message.pk) == "sent"  # what the scheduled retry runs

    assert message.replies.count() == 1
    assert message.replies.get().delivery_attempts == 2
    assert len(locmem_channels.outbox) == 1


def test_permanent_failure_is_not_retried(dialog, settings):
    settings.CHANNEL_SENDERS = {"*": f"{__name__}.GoneSender"}
    message = customer_says(dialog, "сколько стоит доставка?")

    assert answer(message.pk) == "failed"
    assert not Schedule.objects.filter(func="integrations.tasks.answer").exists()


def test_a_reply_given_up_on_is_not_swept_again_and_a_person_takes_the_dialog(dialog, settings):
    # It used to be logged as given up and then retried by the sweep every minute for a day.
    settings.CHANNEL_SENDERS = {"*": f"{__name__}.GoneSender"}
    message = customer_says(dialog, "сколько стоит доставка?", minutes_ago=5)

    answer(message.pk)

    assert message.pk not in set(unanswered_messages().values_list("pk", flat=True))
    dialog.refresh_from_db()
    assert dialog.state == Conversation.State.OPERATOR


def test_sweep_picks_up_a_message_whose_task_was_lost(dialog, locmem_channels, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    lost = customer_says(dialog, "Какая икра есть в наличии?", minutes_ago=2)

    assert sweep_unanswered() == 1

    assert lost.replies.get().delivery_state == Message.Delivery.SENT
    assert len(locmem_channels.outbox) == 1


def test_sweep_finishes_a_hand_off_whose_task_was_lost(dialog, locmem_channels, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    asked = customer_says(dialog, "Позвать оператора", minutes_ago=2)
    # Recorded in the webhook, but the task that hands off and sends it never ran.
    record_outgoing(conversation=dialog, text="Передаю оператору", in_reply_to=asked, reply_kind="handoff")

    sweep_unanswered()

    dialog.refresh_from_db()
    assert dialog.state == Conversation.State.OPERATOR
    assert [h.dialog for h in locmem_channels.handoffs] == ["chat-5"]
    assert [sent.text for sent in locmem_channels.outbox] == ["Передаю оператору"]


def test_sweep_leaves_fresh_answered_and_operator_messages_alone(dialog, admin_user):
    customer_says(dialog, "только что", minutes_ago=0)
    answered = customer_says(dialog, "доставка?", minutes_ago=3)
    reply = record_outgoing(conversation=dialog, text="390 ₽", in_reply_to=answered)
    Message.objects.filter(pk=reply.pk).update(delivery_state=Message.Delivery.SENT)
    other = get_or_create_conversation(channel="telegram", external_id="chat-6")
    customer_says(other, "оператор нужен", minutes_ago=3)
    take_over(conversation=other, operator=admin_user)

    assert list(unanswered_messages()) == []


def test_sweep_runs_every_minute():
    schedule = Schedule.objects.get(name=SWEEP_SCHEDULE)

    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "integrations.tasks.sweep_unanswered",
        Schedule.MINUTES,
        1,
    )


def test_recorded_message_is_delivered_by_the_worker(dialog, locmem_channels):
    welcome = record_outgoing(conversation=dialog, text="Здравствуйте! Я помогу выбрать.")

    assert deliver_message(welcome.pk) == "sent"
    assert locmem_channels.outbox[0].text == "Здравствуйте! Я помогу выбрать."
    assert Conversation.objects.get().state == Conversation.State.BOT


def test_the_sweep_forgets_event_ids_older_than_any_redelivery(db):
    from conversations.models import ReceivedEvent
    from conversations.services import account_id_for, take_event

    account_id = account_id_for("telegram")
    take_event(account_id=account_id, event_id="old")
    take_event(account_id=account_id, event_id="new")
    ReceivedEvent.objects.filter(event_id="old").update(received_at=timezone.now() - timedelta(days=8))

    sweep_unanswered()

    assert list(ReceivedEvent.objects.values_list("event_id", flat=True)) == ["new"]


@pytest.fixture
def broken(settings):
    """The model's provider answers with something that is not an answer: answering raises (a bug, not an outage)."""
    from bots.llm import locmem as llm
    from bots.models import AssistantSettings

    settings.ANSWER_MAX_ATTEMPTS = 3
    config = AssistantSettings.load()
    config.provider = "locmem"
    config.save()
    llm.script[:] = [object()] * 5
    yield llm
    llm.script.clear()


def test_a_task_that_raises_is_retried_later(dialog, broken):
    message = customer_says(dialog, "есть икра кеты?")

    assert answer(message.pk) == "retry"

    message.refresh_from_db()
    assert message.answer_failures == 1
    assert Schedule.objects.filter(func="integrations.tasks.answer").count() == 1


def test_a_task_that_always_raises_stops_at_the_cap_and_an_operator_gets_the_dialog(dialog, broken, locmem_channels):
    message = customer_says(dialog, "есть икра кеты?", minutes_ago=5)

    results = [answer(message.pk) for _ in range(3)]

    assert results == ["retry", "retry", "failed"]
    dialog.refresh_from_db()
    assert dialog.state == Conversation.State.OPERATOR
    assert len(locmem_channels.handoffs) == 1
    assert message.pk not in set(unanswered_messages().values_list("pk", flat=True))


def test_the_reason_a_message_was_not_answered_is_kept(dialog, broken):
    message = customer_says(dialog, "есть икра кеты?")

    answer(message.pk)

    message.refresh_from_db()
    assert message.answer_error.startswith("AttributeError")


class BrokenSender(LocmemSender):
    """A channel whose send raises what no channel should: a bug, not a DeliveryError."""

    def send(self, message) -> str:
        raise RuntimeError("boom at https://api.example/bot123:SECRET/sendMessage")


def test_the_reason_kept_has_no_urls_an_exception_quoted(dialog, settings):
    settings.CHANNEL_SENDERS = {"*": f"{__name__}.BrokenSender"}
    message = customer_says(dialog, "сколько стоит доставка?")

    answer(message.pk)

    message.refresh_from_db()
    assert message.answer_error == "RuntimeError: boom at <url>"


def backlog(conversation, count: int) -> list[int]:
    """Customer messages of an outage: recorded, their tasks never queued."""
    old = timezone.now() - timedelta(minutes=3)
    messages = [
        Message(conversation=conversation, channel="telegram", direction="in", author="customer", text=f"вопрос {n}")
        for n in range(count)
    ]
    Message.objects.bulk_create(messages)
    Message.objects.filter(conversation=conversation).update(created_at=old)
    return list(Message.objects.filter(conversation=conversation).values_list("pk", flat=True))


def test_one_sweep_queues_the_whole_backlog_after_a_queue_outage(dialog, queue):
    # It queued 200 a minute: 1,000 customers waited up to five minutes.
    backlog(dialog, 1000)

    assert sweep_unanswered() == 1000
    assert queue.queue_size() == 1000


def test_a_second_sweep_does_not_queue_again_what_is_waiting_in_the_queue(dialog, queue):
    backlog(dialog, 300)
    sweep_unanswered()

    assert sweep_unanswered() == 0
    assert queue.queue_size() == 300


@pytest.fixture
def queue_outage(queue, settings):
    """The task queue's broker out of reach while the context is open: Redis on a closed port, or the ORM
    broker's table refusing writes; the database itself keeps working."""

    @contextlib.contextmanager
    def outage():
        if settings.REDIS_URL:
            with cache_outage():
                yield
            return

        def refuse(execute, sql, params, many, context):
            if "django_q_ormq" in sql:
                raise OperationalError("could not connect to server")
            return execute(sql, params, many, context)

        # A savepoint: the refused write must not spoil the test's own transaction.
        with connection.execute_wrapper(refuse), transaction.atomic():
            yield

    return outage


def test_a_task_the_queue_could_not_take_is_queued_as_soon_as_the_queue_is_back(dialog, queue, queue_outage):
    message = customer_says(dialog, "Есть креветки?")
    with queue_outage():
        assert enqueue_answer(message) is False
    assert queue.queue_size() == 0

    assert requeue_left_behind() is True
    assert queue.queue_size() == 1


def test_a_task_left_behind_stays_until_the_queue_takes_it(dialog, queue, queue_outage):
    message = customer_says(dialog, "Есть креветки?")
    with queue_outage():
        enqueue_answer(message)
        assert requeue_left_behind() is False

    assert requeue_left_behind() is True
    assert queue.queue_size() == 1


def test_a_reply_another_worker_is_sending_is_looked_at_again_when_its_lease_ends(dialog, settings):
    # A worker that died mid-send held the reply until a sweep came by minutes later.
    message = customer_says(dialog, "Есть креветки?")
    claimed_at = timezone.now()
    record_outgoing(conversation=dialog, text="Есть!", in_reply_to=message)
    Message.objects.filter(in_reply_to=message).update(delivery_claimed_at=claimed_at)

    assert answer(message.pk) == Message.Delivery.PENDING

    check = Schedule.objects.get(func="integrations.tasks.answer", name__startswith="lease check")
    assert check.args == repr(message.pk)
    expected = claimed_at + timedelta(seconds=settings.REPLY_SEND_LEASE_S)
    assert expected < check.next_run <= expected + timedelta(seconds=2)
