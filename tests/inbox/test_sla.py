"""SLA deadlines in working time (inbox.sla), with the seeded hours: daily 09:00–21:00 (Europe/Moscow)."""

import datetime
from zoneinfo import ZoneInfo

import pytest

from conversations.models import Conversation, Message
from inbox.models import Holiday, SlaPolicy, WorkingHours
from inbox.sla import (
    WorkingSchedule,
    add_working_minutes,
    deadline_for,
    due_soon,
    is_overdue,
    with_sla_fields,
    working_minutes_between,
)
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")


def at(day: int, hour: int, minute: int = 0, *, month: int = 12, year: int = 2026, zone=MSK) -> datetime.datetime:
    # December 2026: the 1st is a Tuesday, the 4th a Friday, the 7th a Monday.
    return datetime.datetime(year, month, day, hour, minute, tzinfo=zone)


def close_weekends():
    WorkingHours.objects.filter(weekday__in=[5, 6]).update(is_closed=True, opens_at=None, closes_at=None)


def test_the_seeded_week_is_daily_nine_to_nine():
    schedule = WorkingSchedule.load()

    assert schedule.weekly == ((datetime.time(9), datetime.time(21)),) * 7


def test_a_dialog_waiting_at_ten_to_nine_in_the_evening_is_due_at_five_past_nine_next_morning():
    assert add_working_minutes(at(1, 20, 50), 15) == at(2, 9, 5)


def test_minutes_inside_working_hours_are_added_as_they_are():
    assert add_working_minutes(at(1, 12, 0), 15) == at(1, 12, 15)


def test_a_deadline_falling_on_closing_time_stays_on_that_day():
    assert add_working_minutes(at(1, 20, 45), 15) == at(1, 21, 0)


def test_a_start_before_opening_counts_from_the_opening():
    assert add_working_minutes(at(1, 7, 0), 15) == at(1, 9, 15)


def test_closed_weekends_are_skipped():
    close_weekends()

    assert add_working_minutes(at(4, 20, 50), 15) == at(7, 9, 5)


def test_a_holiday_closed_all_day_is_skipped():
    Holiday.objects.create(date=datetime.date(2026, 12, 2), name="Выходной")

    assert add_working_minutes(at(1, 20, 50), 15) == at(3, 9, 5)


def test_a_holiday_with_its_own_hours_counts_from_its_opening():
    Holiday.objects.create(
        date=datetime.date(2026, 12, 31),
        name="Канун",
        is_closed=False,
        opens_at=datetime.time(10),
        closes_at=datetime.time(15),
    )

    assert add_working_minutes(at(31, 9, 30), 15) == at(31, 10, 15)


def test_a_holiday_with_its_own_hours_closes_early():
    Holiday.objects.create(
        date=datetime.date(2026, 12, 31),
        name="Канун",
        is_closed=False,
        opens_at=datetime.time(10),
        closes_at=datetime.time(15),
    )

    assert add_working_minutes(at(31, 14, 50), 15) == at(1, 9, 5, month=1, year=2027)


def test_zero_minutes_outside_hours_is_the_next_opening():
    assert add_working_minutes(at(1, 22, 0), 0) == at(2, 9, 0)


def test_zero_minutes_inside_hours_is_the_start_itself():
    assert add_working_minutes(at(1, 12, 0), 0) == at(1, 12, 0)


def test_a_start_given_in_utc_is_read_in_the_store_time_zone():
    # 17:50 UTC is 20:50 in Moscow.
    start = datetime.datetime(2026, 12, 1, 17, 50, tzinfo=datetime.UTC)

    assert add_working_minutes(start, 15) == at(2, 9, 5)


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError):
        add_working_minutes(datetime.datetime(2026, 12, 1, 12, 0), 15)


def test_the_night_before_a_dst_change_keeps_the_wall_clock_opening(settings):
    # Berlin moves its clocks forward at 02:00 on 29 March 2026: 09:05 that morning is 07:05 UTC, not 08:05.
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")

    due = add_working_minutes(at(28, 20, 50, month=3, zone=berlin), 15)

    assert due.astimezone(datetime.UTC) == datetime.datetime(2026, 3, 29, 7, 5, tzinfo=datetime.UTC)


def test_working_minutes_across_a_dst_change_are_real_minutes(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")
    WorkingHours.objects.filter(weekday=6).update(opens_at=datetime.time(1), closes_at=datetime.time(4))

    # 01:00–04:00 on the night the clocks jump from 02:00 to 03:00 is two hours.
    assert working_minutes_between(at(29, 0, 0, month=3, zone=berlin), at(29, 5, 0, month=3, zone=berlin)) == 120


def test_working_minutes_between_spans_the_night():
    assert working_minutes_between(at(1, 20, 30), at(2, 9, 30)) == 60


def test_working_minutes_between_skips_closed_weekends():
    close_weekends()

    assert working_minutes_between(at(4, 20, 0), at(7, 10, 0)) == 120


def test_working_minutes_between_a_later_and_an_earlier_time_are_none():
    assert working_minutes_between(at(2, 12, 0), at(1, 12, 0)) == 0


def test_working_minutes_between_undo_adding_them():
    close_weekends()
    start = at(4, 15, 17)

    assert working_minutes_between(start, add_working_minutes(start, 1000)) == 1000


def test_without_any_open_day_there_is_no_deadline():
    WorkingHours.objects.update(is_closed=True, opens_at=None, closes_at=None)
    conversation = waiting_since(at(1, 20, 50))

    assert deadline_for(conversation) is None


# Conversations


def _set_time(message: Message, moment: datetime.datetime) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=moment)
    message.created_at = moment
    return message


def customer_writes(conversation, moment, text="Когда доставите?"):
    return _set_time(make_message(conversation, text), moment)


def operator_writes(conversation, moment, text="Сегодня вечером."):
    return _set_time(make_message(conversation, text, author=Message.Author.OPERATOR), moment)


def waiting_since(handed_off_at, channel="telegram"):
    conversation = make_conversation(channel)
    customer_writes(conversation, handed_off_at - datetime.timedelta(minutes=1), "Позовите оператора")
    Conversation.objects.filter(pk=conversation.pk).update(
        state=Conversation.State.OPERATOR, handed_off_at=handed_off_at
    )
    conversation.refresh_from_db()
    return conversation


def test_a_dialog_waiting_for_an_operator_is_due_the_first_response_minutes_after_the_hand_off():
    conversation = waiting_since(at(1, 20, 50))

    assert deadline_for(conversation) == at(2, 9, 5)


def test_the_channel_policy_replaces_the_default_one():
    SlaPolicy.objects.create(channel="telegram", first_response_minutes=5, next_response_minutes=10)
    conversation = waiting_since(at(1, 20, 50))

    assert deadline_for(conversation) == at(1, 20, 55)


def test_after_an_operator_answered_a_new_customer_message_is_due_the_next_response_minutes_later():
    conversation = waiting_since(at(1, 20, 50))
    operator_writes(conversation, at(2, 10, 0))
    customer_writes(conversation, at(2, 10, 10))
    customer_writes(conversation, at(2, 10, 20), "Алло?")

    # From the oldest message not answered, with the default 30 minutes.
    assert deadline_for(conversation) == at(2, 10, 40)


def test_a_dialog_the_operator_answered_last_awaits_nothing():
    conversation = waiting_since(at(1, 20, 50))
    operator_writes(conversation, at(2, 10, 0))

    assert deadline_for(conversation) is None


def test_an_operator_answer_before_the_latest_hand_off_does_not_count():
    conversation = waiting_since(at(1, 20, 50))
    operator_writes(conversation, at(1, 12, 0))

    assert deadline_for(conversation) == at(2, 9, 5)


def test_a_dialog_with_the_bot_has_no_deadline():
    conversation = make_conversation()
    customer_writes(conversation, at(1, 12, 0))

    assert deadline_for(conversation) is None


def test_a_closed_dialog_has_no_deadline():
    conversation = waiting_since(at(1, 20, 50))
    Conversation.objects.filter(pk=conversation.pk).update(state=Conversation.State.CLOSED)
    conversation.refresh_from_db()

    assert deadline_for(conversation) is None


def test_a_list_of_dialogs_gets_its_deadlines_in_one_query(django_assert_num_queries):
    waiting = waiting_since(at(1, 20, 50))
    answered = waiting_since(at(1, 11, 0))
    operator_writes(answered, at(1, 11, 5))
    customer_writes(answered, at(1, 11, 30))
    schedule = WorkingSchedule.load()

    with django_assert_num_queries(1):
        deadlines = {c.pk: deadline_for(c, schedule) for c in with_sla_fields(Conversation.objects.all())}

    assert deadlines == {waiting.pk: at(2, 9, 5), answered.pk: at(1, 12, 0)}


def test_a_dialog_is_overdue_after_its_deadline():
    conversation = waiting_since(at(1, 20, 50))

    assert is_overdue(conversation, at(2, 9, 6))


def test_a_dialog_answered_at_its_deadline_is_not_overdue():
    conversation = waiting_since(at(1, 20, 50))

    assert not is_overdue(conversation, at(2, 9, 5))


def test_a_deadline_ten_working_minutes_away_is_due_within_fifteen():
    conversation = waiting_since(at(1, 20, 50))

    # 20:55 to 21:00 and 09:00 to 09:05.
    assert due_soon(conversation, at(1, 20, 55), 15)


def test_a_deadline_fifteen_working_minutes_away_is_not_due_within_five():
    conversation = waiting_since(at(1, 20, 50))

    assert not due_soon(conversation, at(1, 20, 50), 5)


def test_an_overdue_dialog_is_not_due_soon():
    conversation = waiting_since(at(1, 20, 50))

    assert not due_soon(conversation, at(2, 9, 6), 15)
