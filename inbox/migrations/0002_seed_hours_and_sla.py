"""Operators answer daily 9:00–21:00 (as the demo FAQ says), no holidays; a first
answer within 15 working minutes of a hand-off and the next ones within 30, in every
channel. All editable in admin."""

import datetime

from django.db import migrations

OPENS, CLOSES = datetime.time(9, 0), datetime.time(21, 0)
FIRST_RESPONSE_MINUTES, NEXT_RESPONSE_MINUTES = 15, 30


def seed(apps, schema_editor):
    WorkingHours = apps.get_model("inbox", "WorkingHours")
    for weekday in range(7):
        WorkingHours.objects.get_or_create(weekday=weekday, defaults={"opens_at": OPENS, "closes_at": CLOSES})
    SlaPolicy = apps.get_model("inbox", "SlaPolicy")
    SlaPolicy.objects.get_or_create(
        channel="",
        defaults={"first_response_minutes": FIRST_RESPONSE_MINUTES, "next_response_minutes": NEXT_RESPONSE_MINUTES},
    )


def unseed(apps, schema_editor):
    apps.get_model("inbox", "WorkingHours").objects.filter(opens_at=OPENS, closes_at=CLOSES, is_closed=False).delete()
    apps.get_model("inbox", "SlaPolicy").objects.filter(
        channel="", first_response_minutes=FIRST_RESPONSE_MINUTES, next_response_minutes=NEXT_RESPONSE_MINUTES
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("inbox", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
