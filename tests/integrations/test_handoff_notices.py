"""What a customer handed to a person is told: when operators are off duty, and once
that a person will answer when they write again (Telegram updates, the worker inline)."""

import json
from datetime import datetime, time
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.conf import Conf

from bots.models import AssistantSettings

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


def operators(**fields):
    config = AssistantSettings.load()
    for name, value in {"contacts": CONTACTS, **fields}.items():
        setattr(config, name, value)
    config.save()


def every_day_but_today() -> str:
    return "".join(str(d) for d in range(1, 8) if d != timezone.localtime().isoweekday())


def test_a_hand_off_while_operators_are_off_duty_says_when_they_work_and_how_to_reach_the_store(
    client, locmem_channels
):
    operators(operator_weekdays=every_day_but_today(), operators_from=time(9), operators_until=time(21))

    say(client, "позовите менеджера", 1)

    (handoff,) = locmem_channels.outbox
    assert "не на связи" in handoff.text
    assert "с 09:00 до 21:00" in handoff.text
    assert CONTACTS in handoff.text


def test_a_hand_off_while_operators_are_on_duty_says_nothing_of_hours(client, locmem_channels):
    operators(operator_weekdays="1234567")

    say(client, "позовите менеджера", 1)

    (handoff,) = locmem_channels.outbox
    assert "не на связи" not in handoff.text


def test_a_customer_writing_again_after_a_hand_off_is_told_once_a_person_will_answer(client, locmem_channels):
    say(client, "хочу поговорить с живым человеком", 1)
    say(client, "алло?", 2)
    say(client, "есть кто?", 3)

    texts = [sent.text for sent in locmem_channels.outbox]
    assert len(texts) == 2
    assert texts[1] == AssistantSettings.load().waiting_text


def test_the_waiting_notice_says_when_operators_work_off_duty(client, locmem_channels):
    operators(operator_weekdays=every_day_but_today())
    say(client, "оператор", 1)

    say(client, "ау", 2)

    assert "не на связи" in locmem_channels.outbox[-1].text


@pytest.mark.parametrize(
    ("start", "end", "at", "on_duty"),
    [
        (time(9), time(21), time(12), True),
        (time(9), time(21), time(21, 30), False),
        (time(22), time(6), time(23), True),
        (time(22), time(6), time(3), True),
        (time(22), time(6), time(12), False),
        (None, None, time(4), True),
    ],
)
def test_operators_on_duty_by_the_clock_night_shifts_included(db, start, end, at, on_duty):
    config = AssistantSettings.load()
    config.operators_from, config.operators_until = start, end
    moment = timezone.make_aware(datetime.combine(timezone.localdate(), at))

    assert config.operators_on_duty(moment) is on_duty
