"""The worker side shared by every chat channel: answer a recorded customer
message, retry a failed send with backoff, sweep up messages whose task was lost."""

import functools
import logging
import re
import threading
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from conversations.channels import DeliveryError
from conversations.models import Conversation, Message
from conversations.services import (
    DATABASE_DOWN,
    NOT_TO_SEND,
    deliver,
    hand_off,
    patiently,
    prune_received_events,
)
from integrations import answering, recovery, spool

logger = logging.getLogger(__name__)

_URL = re.compile(r"\w+://\S+")

SWEEP_BATCH = 200
# One sweep queues at most this many; the next minute's takes the rest.
SWEEP_MAX = 20_000
# A message queued by the sweep is left to its task this long before it is queued again.
SWEEP_REQUEUE_AFTER_S = 300

SWEEP_SCHEDULE = "integrations: answer messages left without a reply"


def enqueue_answer(message: Message) -> bool:
    return enqueue("integrations.tasks.answer", message.pk, task_name=f"answer-{message.pk}")


def enqueue(func: str, message_id: int | list[int], *, task_name: str) -> bool:
    """Queue a task about a recorded message from a webhook; False when the queue is out of reach.

    The message is stored by then, so the webhook still acknowledges it: the
    sweep answers a customer message left without a reply once the queue is
    back (an unanswered hand-off is finished then too, see integrations.answering.respond).
    """
    try:
        async_task(func, message_id, task_name=task_name)
    except Exception as exc:  # whatever the broker raises (Redis, or the database of the ORM broker)
        kept = _leave_behind(func, message_id, task_name)
        logger.warning(
            "task queue unavailable (%s): %s for message %s %s",
            type(exc).__name__,
            func,
            message_id,
            "queued once the queue is back (or by the sweep)" if kept else "left to the sweep",
        )
        return False
    if _left_behind:
        recovery.catch_up_soon()
    return True


# Tasks this process could not queue, by task name, queued by its catch-up
# thread the moment the broker answers again (integrations.recovery). Bounded:
# past that the sweep alone answers the rest.
MAX_LEFT_BEHIND = 20_000
_left_behind: dict[str, tuple[str, int]] = {}
_left_behind_lock = threading.Lock()


def _leave_behind(func: str, message_id: int, task_name: str) -> bool:
    with _left_behind_lock:
        if len(_left_behind) >= MAX_LEFT_BEHIND:
            return False
        _left_behind[task_name] = (func, message_id)
    recovery.catch_up_soon()
    return True


def requeue_left_behind() -> bool:
    """Queue what this process could not; True when nothing is left behind.

    A task queued twice this way (a sweep got there first) does no harm: a
    message's reply is unique and its send is claimed (conversations.services.deliver).
    """
    while True:
        with _left_behind_lock:
            if not _left_behind:
                return True
            task_name, (func, message_id) = next(iter(_left_behind.items()))
        try:
            async_task(func, message_id, task_name=task_name)
        except Exception:
            return False
        with _left_behind_lock:
            _left_behind.pop(task_name, None)


# A task that meets a database outage waits this long for it to end, then
# runs again in place: its message need not wait for the sweep (a minute or
# more), and an outage is not counted as a failure of the message.
DATABASE_PATIENCE_S = 60.0


def outlasting_database_outage(task):
    @functools.wraps(task)
    def run(message_id: int) -> str:
        try:
            return task(message_id)
        except DATABASE_DOWN as exc:
            if connection.in_atomic_block or not _database_back(DATABASE_PATIENCE_S):
                raise
            logger.warning("%s for message %s met a database outage (%s); run again", task.__name__, message_id, exc)
            return task(message_id)

    return run


def _database_back(patience_s: float) -> bool:
    connection.close()  # the one the outage broke
    try:
        patiently(connection.ensure_connection, "a task waits for the database", patience_s=patience_s)
    except DATABASE_DOWN:
        return False
    return True


@outlasting_database_outage
def answer(message_id: int) -> str:
    message = Message.objects.select_related("conversation").get(pk=message_id)
    try:
        reply = answering.respond(message)
    except DATABASE_DOWN:
        raise
    except DeliveryError as exc:
        reply = Message.objects.filter(in_reply_to=message, author=Message.Author.BOT).first()
        attempts = reply.delivery_attempts if reply else 0
        if exc.permanent or attempts >= settings.REPLY_MAX_ATTEMPTS:
            _give_up_delivery(message, attempts, exc)
            return "failed"
        _retry_later(message_id, attempts)
        return "retry"
    except Exception as exc:
        # A bug or an outage inside answering: retried a few times, then the
        # dialog goes to a person, never retried for ever by the sweep.
        return _answer_failed(message, exc)
    if reply is None:
        return "silent"
    _check_when_the_lease_ends(reply, "integrations.tasks.answer", message_id)
    return reply.delivery_state


def answer_each(message_ids: list[int]) -> dict:
    """Several recorded messages answered in one task (a marketplace poll's page), each as `answer` would.

    A message that fails is left to its own retry or the sweep; the rest are still answered.
    """
    outcomes = {}
    for message_id in message_ids:
        try:
            outcomes[message_id] = answer(message_id)
        except Exception as exc:  # one message's failure must not keep the others waiting
            logger.warning("answering message %s failed (%s); left to the sweep", message_id, type(exc).__name__)
            outcomes[message_id] = "left to the sweep"
    return outcomes


def _check_when_the_lease_ends(outgoing: Message, func: str, task_arg: int) -> None:
    """A send claimed by another worker: looked at again once its lease is out, in
    case that worker died mid-send (the sweep would leave it for minutes)."""
    if outgoing.delivery_state == Message.Delivery.SENT or outgoing.delivery_claimed_at is None:
        return
    at = outgoing.delivery_claimed_at + timedelta(seconds=settings.REPLY_SEND_LEASE_S + 1)
    Schedule.objects.get_or_create(
        name=f"lease check {outgoing.pk} {at.timestamp():.0f}",
        defaults={
            "func": func,
            "args": repr(task_arg),
            "schedule_type": Schedule.ONCE,
            "repeats": 1,
            "next_run": at,
        },
    )


def _give_up_delivery(message: Message, attempts: int, exc: DeliveryError) -> None:
    """No more tries for this reply: the sweep leaves the message, a person takes the dialog (unless blocked)."""
    Message.objects.filter(pk=message.pk).update(needs_reply=False)
    blocked = message.conversation.blocked_at is not None
    logger.warning(
        "reply to message %s not delivered after %s attempts (%s); not retried, %s",
        message.pk,
        attempts,
        exc,
        "the customer blocked the bot" if blocked else "the dialog goes to an operator",
    )
    if not blocked:
        hand_off(conversation=message.conversation, reason=f"the bot's reply could not be delivered ({exc})"[:500])


def _answer_failed(message: Message, exc: Exception) -> str:
    # URLs out: an exception's text may quote one, and with it a token.
    reason = f"{type(exc).__name__}: {_URL.sub('<url>', str(exc))}"[:500]
    Message.objects.filter(pk=message.pk).update(answer_failures=F("answer_failures") + 1, answer_error=reason)
    message.refresh_from_db(fields=["answer_failures"])
    if message.answer_failures < settings.ANSWER_MAX_ATTEMPTS:
        logger.warning(
            "answering message %s failed (attempt %s of %s), retrying later: %s",
            message.pk,
            message.answer_failures,
            settings.ANSWER_MAX_ATTEMPTS,
            type(exc).__name__,
            exc_info=True,
        )
        _retry_later(message.pk, message.answer_failures)
        return "retry"
    Message.objects.filter(pk=message.pk).update(needs_reply=False)
    logger.error(
        "answering message %s failed %s times; the dialog goes to an operator: %s",
        message.pk,
        message.answer_failures,
        reason,
        exc_info=True,
    )
    hand_off(conversation=message.conversation, reason=f"the bot could not answer a message ({reason})")
    return "failed"


def enqueue_delivery(message: Message) -> bool:
    """Send an outgoing message that is already recorded (a welcome, a notice) from the worker."""
    return enqueue("integrations.tasks.deliver_message", message.pk, task_name=f"deliver-{message.pk}")


@outlasting_database_outage
def deliver_message(message_id: int) -> str:
    return _send_recorded(message_id, deliver, "integrations.tasks.deliver_message")


@outlasting_database_outage
def hand_off_and_notify(notice_id: int) -> str:
    """A hand-off the customer asked for with a button or command: made, then the customer told so."""
    return _send_recorded(notice_id, answering.hand_off_and_notify, "integrations.tasks.hand_off_and_notify")


def _send_recorded(message_id: int, send, func: str) -> str:
    """Run `send` on a recorded outgoing message; a failed send is scheduled again with backoff."""
    message = Message.objects.select_related("conversation").get(pk=message_id)
    if message.delivery_state == Message.Delivery.SENT:
        return "sent"
    try:
        send(message)
    except DeliveryError as exc:
        message.refresh_from_db(fields=["delivery_attempts"])
        if exc.permanent or message.delivery_attempts >= settings.REPLY_MAX_ATTEMPTS:
            return "failed"
        # The notice is recorded and the hand-off made by then: a retry only sends.
        _retry_later(message_id, message.delivery_attempts, func="integrations.tasks.deliver_message")
        return "retry"
    _check_when_the_lease_ends(message, func, message_id)
    return message.delivery_state


def _retry_later(message_id: int, attempts: int, *, func: str = "integrations.tasks.answer") -> None:
    delay = min(5 * 2 ** max(attempts - 1, 0), 300)
    Schedule.objects.create(
        name=f"retry answer {message_id} #{attempts}",
        func=func,
        args=repr(message_id),
        schedule_type=Schedule.ONCE,
        repeats=1,
        next_run=timezone.now() + timedelta(seconds=delay),
    )


def unanswered_messages():
    """Customer messages in bot dialogs, older than the sweep delay, with no delivered reply."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.REPLY_SWEEP_AFTER_S)
    # A reply held back (a draft, a send of unknown outcome) is not made again either.
    delivered = Message.objects.filter(author=Message.Author.BOT, delivery_state__in=NOT_TO_SEND).values("in_reply_to")
    exhausted = Message.objects.filter(
        author=Message.Author.BOT, delivery_attempts__gte=settings.REPLY_MAX_ATTEMPTS
    ).values("in_reply_to")
    return (
        Message.objects.filter(
            direction=Message.Direction.IN,
            author=Message.Author.CUSTOMER,
            created_at__lt=cutoff,
            created_at__gte=now - timedelta(days=1),
            needs_reply=True,
            conversation__state=Conversation.State.BOT,
            conversation__blocked_at__isnull=True,
        )
        .exclude(pk__in=delivered)
        .exclude(pk__in=exhausted)
        .order_by("created_at")
    )


def sweep_unanswered() -> int:
    """Queue an answer for every message left without one, in batches until none is left.

    After a queue outage the backlog can be thousands of messages: all of them
    go back in one sweep, not 200 a minute. A message the sweep queued is not
    queued again while its task may still be waiting (SWEEP_REQUEUE_AFTER_S).
    """
    # Events a web node kept while the database was down, where the spool is
    # shared with the worker: recorded first, so they are swept with the rest.
    spool.replay()
    queued, last_pk = 0, 0
    while queued < SWEEP_MAX:
        rows = list(
            unanswered_messages().filter(pk__gt=last_pk).order_by("pk").values_list("pk", "created_at")[:SWEEP_BATCH]
        )
        if not rows:
            break
        last_pk = rows[-1][0]
        for message_id, created_at in rows:
            # add() is atomic in Redis: two sweeps never both queue one message.
            # The time is in the key so it never outlives a database that was reset.
            key = f"sweep-queued:{message_id}:{created_at.timestamp()}"
            if cache.add(key, 1, SWEEP_REQUEUE_AFTER_S):
                async_task("integrations.tasks.answer", message_id, task_name=f"sweep-answer-{message_id}")
                queued += 1
    if queued:
        logger.info("sweep queued %s messages left without a reply", queued)
    prune_received_events()
    return queued


def ensure_sweep_schedule() -> None:
    Schedule.objects.get_or_create(
        name=SWEEP_SCHEDULE,
        defaults={
            "func": "integrations.tasks.sweep_unanswered",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    # The Bitrix24 catalog import's, made with the integrations' own schedules (idle while it is off).
    from integrations.bitrix24.catalog_tasks import ensure_catalog_import_schedule

    ensure_catalog_import_schedule()
    # Each marketplace account's polls, one schedule per stream.
    from integrations.marketplaces.tasks import ensure_poll_schedules

    ensure_poll_schedules()
    # The worker's heartbeat, which /health reads.
    from config.health import ensure_heartbeat_schedule

    ensure_heartbeat_schedule()
