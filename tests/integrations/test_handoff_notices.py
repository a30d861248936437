"""What a customer handed to a person is told: when operators are off duty, and once
that a person will answer when they write again (Telegram updates, the worker inline).
Operators' hours are the inbox's working hours and holidays."""

import json
from datetime import datetime, time
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.conf import Conf

from bots.models import AssistantSettings
from inbox.models import Holiday, WorkingHours
from inbox.sla import WorkingSchedule

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels", "worker")

URL = "/tg/webhook"
SECRET = "tg-webhook-secret-0123456789"
FIXTURE = Path(__file__).parent / "telegram" / "fixtures" / "message_text.json"
CONTACTS = "Телефон: +7 495 123-45-67"


@pytest.fixture(autouse=True)
def bot(settings):
    settings.TELEGRAM_BOT_TOKEN = "6891234567:AAHk-test-token-abcdefghijklmnopqrs"
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET


@pytest.fixture
def worker(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)


def say(client, text: str, n: int):
    payload = json.loads(FIXTURE.read_text())
    payload["update_id"] += n
    payload["message"]["message_id"] += n
    payload["message"]["text"] = text
    response = client.post(
        URL, data=json.dumps(payload), content_type="application/json", HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=SECRET
    )
    assert response.status_code == 200


def contacts():
    config = AssistantSettings.load()
    config.contacts = CONTACTS
    config.save()


def hours(opens=time(9), closes=time(21), *, closed_today=False):
    """The inbox's working hours, every day alike; today closed if asked."""
    today = timezone.localdate().weekday()
    for weekday in range(7):
        closed = closed_today and weekday == today
        WorkingHours.objects.update_or_create(
            weekday=weekday,
            defaults={
                "is_closed": closed,
                "opens_at": None if closed else opens,
                "closes_at": None if closed else closes,
            },
        )


def test_a_hand_off_while_operators_are_off_duty_says_when_they_work_and_how_to_reach_the_store(
    client, locmem_channels
):
    contacts()
    hours(closed_today=True)

    say(client, "позовите менеджера", 1)

    (handoff,) = locmem_channels.outbox
    assert "не на связи" in handoff.text
    assert "с 09:00 до 21:00" in handoff.text
    assert CONTACTS in handoff.text


def test_a_hand_off_while_operators_are_on_duty_says_nothing_of_hours(client, locmem_channels):
    hours(time.min, time.max)

    say(client, "позовите менеджера", 1)

    (handoff,) = locmem_channels.outbox
    assert "не на связи" not in handoff.text


def test_a_holiday_is_off_duty_whatever_the_weekday_says(client, locmem_channels):
    hours(time.min, time.max)
    Holiday.objects.create(date=timezone.localdate(), name="Новый год")

    say(client, "позовите менеджера", 1)

    assert "не на связи" in locmem_channels.outbox[0].text


def test_a_customer_writing_again_after_a_hand_off_is_told_once_a_person_will_answer(client, locmem_channels):
    hours(time.min, time.max)
    say(client, "хочу поговорить с живым человеком", 1)
    say(client, "алло?", 2)
    say(client, "есть кто?", 3)

    texts = [sent.text for sent in locmem_channels.outbox]
    assert len(texts) == 2
    assert texts[1] == AssistantSettings.load().waiting_text


def test_the_waiting_notice_says_when_operators_work_off_duty(client, locmem_channels):
    hours(closed_today=True)
    say(client, "оператор", 1)

    say(client, "ау", 2)

    assert "не на связи" in locmem_channels.outbox[-1].text


@pytest.mark.parametrize(
    ("opens", "closes", "at", "on_duty"),
    [
        (time(9), time(21), time(12), True),
        (time(9), time(21), time(21, 30), False),
        (time(9), time(21), time(8, 59), False),
        (time.min, time.max, time(4), True),
    ],
)
def test_operators_are_on_duty_within_the_days_hours(db, opens, closes, at, on_duty):
    hours(opens, closes)
    moment = timezone.make_aware(datetime.combine(timezone.localdate(), at))

    assert WorkingSchedule.load().is_open(moment) is on_duty


@pytest.mark.parametrize(
    ("week", "said"),
    [
        ([(9, 21)] * 7, "ежедневно с 09:00 до 21:00"),
        ([(9, 18)] * 5 + [None, None], "пн–пт с 09:00 до 18:00"),
        ([(9, 18)] * 5 + [(10, 16), None], "пн–пт с 09:00 до 18:00, сб с 10:00 до 16:00"),
        ([(0, None)] * 7, "ежедневно круглосуточно"),
    ],
)
def test_the_hours_are_told_as_a_customer_reads_them(db, week, said):
    for weekday, span in enumerate(week):
        opens, closes = (time(span[0]), time(span[1]) if span[1] else time.max) if span else (None, None)
        WorkingHours.objects.filter(weekday=weekday).update(is_closed=span is None, opens_at=opens, closes_at=closes)

    assert WorkingSchedule.load().describe() == said
