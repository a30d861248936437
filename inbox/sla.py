"""SLA deadlines counted in working time: the store's hours and holidays, in its time zone.

A dialog handed to a person must get an operator's first answer within the
channel's first-response minutes of the hand-off; after that, each customer
message waits at most the next-response minutes. Minutes count only while
the store works (inbox.models.WorkingHours, Holiday): a dialog handed off at
20:50 with 15 minutes and hours 9:00–21:00 is due at 09:05 the next day.

Arithmetic runs in UTC between the day's opening and closing instants, so a
DST change inside a day costs or gives no minutes of its own.

A list of many dialogs loads one WorkingSchedule and annotates its queryset
with `with_sla_fields`, then calls `deadline_for(conversation, schedule)`:
no query per dialog.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce

from conversations.models import Conversation, Message

UTC = datetime.UTC

# Used when no SLA policy row applies (the seeded default row was deleted).
FALLBACK_MINUTES = (15, 30)

# A schedule without one open day in this many days has no working time at all.
_HORIZON_DAYS = 2 * 366

Hours = tuple[datetime.time, datetime.time]

_WEEKDAYS = ["пн", "вт", "ср", "чт", "пт", "сб", "вс"]


@dataclass(frozen=True)
class AnswerRule:
    """A marketplace account's answer deadline: for a stream (and reviews of at most `max_rating` stars)."""

    stream: str
    max_rating: int | None
    minutes: int
    in_working_hours: bool
    warn_before_minutes: int

    def covers(self, stream: str, rating) -> bool:
        if self.stream != stream:
            return False
        return self.max_rating is None or (isinstance(rating, int) and rating <= self.max_rating)


class NoWorkingTime(ValueError):
    """The schedule has no working time ahead: every day is closed."""


@dataclass(frozen=True)
class WorkingSchedule:
    """The week's hours, the holidays and the SLA policies, read once."""

    # Index 0 is Monday; None is a closed day.
    weekly: tuple[Hours | None, ...]
    holidays: dict[datetime.date, Hours | None] = field(default_factory=dict)
    # channel -> (first_response_minutes, next_response_minutes); "" is any other channel.
    policies: dict[str, tuple[int, int]] = field(default_factory=dict)
    # A marketplace channel account's id -> its answer rules (integrations.marketplaces AnswerDeadline).
    answer_rules: dict[int, list[AnswerRule]] = field(default_factory=dict)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(settings.TIME_ZONE))

    @classmethod
    def load(cls) -> WorkingSchedule:
        from inbox.models import Holiday, SlaPolicy, WorkingHours
        from integrations.marketplaces.models import AnswerDeadline

        rows = {row.weekday: row.hours() for row in WorkingHours.objects.all()}
        answer_rules: dict[int, list[AnswerRule]] = {}
        for rule in AnswerDeadline.objects.select_related("account"):
            answer_rules.setdefault(rule.account.channel_account_id, []).append(
                AnswerRule(rule.stream, rule.max_rating, rule.minutes, rule.in_working_hours, rule.warn_before_minutes)
            )
        return cls(
            answer_rules=answer_rules,
            # A weekday without a row is closed: staff deleted it.
            weekly=tuple(rows.get(day) for day in range(7)),
            holidays={row.date: row.hours() for row in Holiday.objects.all()},
            policies={
                row.channel: (row.first_response_minutes, row.next_response_minutes) for row in SlaPolicy.objects.all()
            },
        )

    def hours_on(self, day: datetime.date) -> Hours | None:
        if day in self.holidays:
            return self.holidays[day]
        return self.weekly[day.weekday()]

    def is_open(self, moment: datetime.datetime) -> bool:
        """Whether operators work at `moment` (an aware datetime)."""
        local = _aware(moment).astimezone(self.zone)
        hours = self.hours_on(local.date())
        return hours is not None and hours[0] <= local.time() < hours[1]

    def describe(self) -> str:
        """The week's hours as a customer reads them: «ежедневно с 09:00 до 21:00», «пн–пт с 09:00 до 18:00, сб …»."""
        runs: list[tuple[int, int, Hours]] = []
        for day, hours in enumerate(self.weekly):
            if hours is None:
                continue
            if runs and runs[-1][1] == day - 1 and runs[-1][2] == hours:
                runs[-1] = (runs[-1][0], day, hours)
            else:
                runs.append((day, day, hours))
        if not runs:
            return ""
        parts = []
        for first, last, (opens, closes) in runs:
            if (first, last) == (0, 6):
                days = "ежедневно"
            elif first == last:
                days = _WEEKDAYS[first]
            elif last == first + 1:
                days = f"{_WEEKDAYS[first]}, {_WEEKDAYS[last]}"
            else:
                days = f"{_WEEKDAYS[first]}–{_WEEKDAYS[last]}"
            if opens == datetime.time.min and closes >= datetime.time(23, 59):
                parts.append(f"{days} круглосуточно")
            else:
                parts.append(f"{days} с {opens:%H:%M} до {closes:%H:%M}")
        return ", ".join(parts)

    def minutes_for(self, channel: str, *, first: bool) -> int:
        first_minutes, next_minutes = self.policies.get(channel) or self.policies.get("") or FALLBACK_MINUTES
        return first_minutes if first else next_minutes

    def _windows_from(self, start: datetime.datetime):
        """The working spans (UTC opening, UTC closing) from the day `start` falls on, in order."""
        day = start.astimezone(self.zone).date()
        for offset in range(_HORIZON_DAYS):
            current = day + datetime.timedelta(days=offset)
            hours = self.hours_on(current)
            if hours is None:
                continue
            opens, closes = (datetime.datetime.combine(current, t, tzinfo=self.zone).astimezone(UTC) for t in hours)
            yield opens, closes


def _aware(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("SLA arithmetic needs aware datetimes")
    return moment.astimezone(UTC)


def add_working_minutes(
    start: datetime.datetime, minutes: int, schedule: WorkingSchedule | None = None
) -> datetime.datetime:
    """`start` plus `minutes` of working time, in the store's time zone.

    A start outside working hours counts from the next opening, so zero
    minutes outside hours is the next opening; inside hours it is `start`.
    """
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    schedule = schedule or WorkingSchedule.load()
    cursor = _aware(start)
    remaining = datetime.timedelta(minutes=minutes)
    for opens, closes in schedule._windows_from(cursor):
        if closes <= cursor:
            continue
        cursor = max(cursor, opens)
        if remaining <= closes - cursor:
            return (cursor + remaining).astimezone(schedule.zone)
        remaining -= closes - cursor
        cursor = closes
    raise NoWorkingTime("no working hours ahead")


def working_minutes_between(
    a: datetime.datetime, b: datetime.datetime, schedule: WorkingSchedule | None = None
) -> float:
    """Working minutes from `a` to `b` (0 when `b` is not after `a`)."""
    schedule = schedule or WorkingSchedule.load()
    a, b = _aware(a), _aware(b)
    total = datetime.timedelta()
    if b <= a:
        return 0.0
    for opens, closes in schedule._windows_from(a):
        if opens >= b:
            break
        total += max(datetime.timedelta(), min(closes, b) - max(opens, a))
    return total.total_seconds() / 60


def deadline(
    waiting_since: datetime.datetime,
    channel: str,
    *,
    first: bool = True,
    schedule: WorkingSchedule | None = None,
) -> datetime.datetime | None:
    """When an answer to what has waited since `waiting_since` is due in `channel`; None when nobody ever works."""
    schedule = schedule or WorkingSchedule.load()
    try:
        return add_working_minutes(waiting_since, schedule.minutes_for(channel, first=first), schedule)
    except NoWorkingTime:
        return None


def with_sla_fields(conversations):
    """The queryset annotated with what deadline_for reads, so a list of dialogs needs no query per row.

    sla_operator_replied_at: the latest operator message; sla_unanswered_since:
    the oldest customer message after it. sla_seller_replied_at: the latest
    answer that went out, the bot's or an operator's; sla_buyer_waiting_since:
    the oldest customer message after it (a marketplace's clock).
    """
    dialog_messages = Message.objects.filter(conversation=OuterRef("pk"))
    last_operator = dialog_messages.filter(author=Message.Author.OPERATOR).order_by("-created_at", "-id")
    last_sent = dialog_messages.filter(direction=Message.Direction.OUT, delivery_state=Message.Delivery.SENT).order_by(
        "-created_at", "-id"
    )
    return (
        conversations.annotate(sla_operator_replied_at=Subquery(last_operator.values("created_at")[:1]))
        .annotate(
            sla_unanswered_since=Subquery(
                Message.objects.filter(
                    conversation=OuterRef("pk"),
                    author=Message.Author.CUSTOMER,
                    created_at__gt=OuterRef("sla_operator_replied_at"),
                )
                .order_by("created_at", "id")
                .values("created_at")[:1]
            )
        )
        # Only a marketplace's dialogs need these: CASE leaves the others' subqueries unrun.
        .annotate(
            sla_seller_replied_at=Case(
                When(channel__in=MARKETPLACES, then=Subquery(last_sent.values("created_at")[:1])), default=None
            )
        )
        .annotate(
            sla_buyer_waiting_since=Case(
                When(
                    channel__in=MARKETPLACES,
                    then=Subquery(
                        Message.objects.filter(
                            conversation=OuterRef("pk"),
                            author=Message.Author.CUSTOMER,
                            created_at__gt=Coalesce(OuterRef("sla_seller_replied_at"), Value(_EPOCH)),
                        )
                        .order_by("created_at", "id")
                        .values("created_at")[:1]
                    ),
                ),
                default=None,
            )
        )
    )


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
MARKETPLACES = frozenset({"ozon", "wildberries", "yandex_market"})


def deadline_and_warning(
    conversation: Conversation, schedule: WorkingSchedule | None = None
) -> tuple[datetime.datetime | None, datetime.timedelta | None]:
    """The deadline and, for a marketplace's rule, how long before it staff are warned (None: the inbox's default).

    A marketplace dialog follows its account's answer rules: from the oldest
    buyer message not yet answered, until an answer goes out, in calendar
    time or working time as the rule says; the earliest rule that applies
    wins. Without a rule that applies, the channel's SLA policy does.
    """
    schedule = schedule or WorkingSchedule.load()
    if conversation.channel in MARKETPLACES and conversation.state == Conversation.State.OPERATOR:
        data = conversation.channel_data or {}
        stream = data.get("stream") or "chat"
        rating = (data.get("context") or {}).get("rating")
        rules = [r for r in schedule.answer_rules.get(conversation.account_id, []) if r.covers(stream, rating)]
        if rules:
            since = _buyer_waiting_since(conversation)
            if since is None:
                return None, None
            best = None
            for rule in rules:
                try:
                    due = (
                        add_working_minutes(since, rule.minutes, schedule)
                        if rule.in_working_hours
                        else since + datetime.timedelta(minutes=rule.minutes)
                    )
                except NoWorkingTime:
                    continue
                if best is None or due < best[0]:
                    best = (due, datetime.timedelta(minutes=rule.warn_before_minutes))
            return best or (None, None)
    return deadline_for(conversation, schedule), None


def _buyer_waiting_since(conversation: Conversation) -> datetime.datetime | None:
    if hasattr(conversation, "sla_buyer_waiting_since"):
        return conversation.sla_buyer_waiting_since
    row = with_sla_fields(Conversation.objects.filter(pk=conversation.pk)).values("sla_buyer_waiting_since").first()
    return (row or {}).get("sla_buyer_waiting_since")


def deadline_for(conversation: Conversation, schedule: WorkingSchedule | None = None) -> datetime.datetime | None:
    """When an operator's answer is due in this dialog, or None: with the bot, closed, or nothing awaits an answer.

    Before any operator message since the hand-off, the first-response
    deadline counts from the hand-off; after one, the next-response deadline
    counts from the oldest customer message since the operator's last one.
    Reads the annotations of with_sla_fields when present, else two queries.
    """
    if conversation.state != Conversation.State.OPERATOR:
        return None
    if hasattr(conversation, "sla_operator_replied_at"):
        replied_at = conversation.sla_operator_replied_at
        unanswered_since = conversation.sla_unanswered_since
    else:
        annotated = with_sla_fields(Conversation.objects.filter(pk=conversation.pk)).values(
            "sla_operator_replied_at", "sla_unanswered_since"
        )
        row = annotated.first() or {}
        replied_at, unanswered_since = row.get("sla_operator_replied_at"), row.get("sla_unanswered_since")
    handed_off_at = conversation.handed_off_at
    if handed_off_at is not None and (replied_at is None or replied_at < handed_off_at):
        return deadline(handed_off_at, conversation.channel, first=True, schedule=schedule)
    if replied_at is not None and unanswered_since is not None:
        return deadline(unanswered_since, conversation.channel, first=False, schedule=schedule)
    return None


def is_overdue(conversation: Conversation, now: datetime.datetime, schedule: WorkingSchedule | None = None) -> bool:
    """The answer was due before `now` and has not come."""
    due = deadline_for(conversation, schedule)
    return due is not None and now > due


def due_soon(
    conversation: Conversation,
    now: datetime.datetime,
    within_minutes: int,
    schedule: WorkingSchedule | None = None,
) -> bool:
    """Not yet overdue, but due within `within_minutes` working minutes of `now`: time for a notice.

    Working minutes, as the deadline is: at 20:55 an answer due at 09:05 is
    ten minutes away, so the evening shift is told before it leaves.
    """
    schedule = schedule or WorkingSchedule.load()
    due = deadline_for(conversation, schedule)
    return due is not None and now <= due and working_minutes_between(now, due, schedule) <= within_minutes
