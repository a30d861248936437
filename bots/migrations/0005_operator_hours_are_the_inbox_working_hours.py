"""The assistant's own operator hours give way to the inbox's working hours: one schedule
for the SLA and for what customers are told off duty.

Hours staff had set here are copied into the working hours; a shift over
midnight keeps its evening part (a day's hours end by midnight there). The
default (always on duty) copies nothing: the inbox's hours stand.
"""

import datetime

from django.db import migrations


def copy_hours(apps, schema_editor):
    AssistantSettings = apps.get_model("bots", "AssistantSettings")
    WorkingHours = apps.get_model("inbox", "WorkingHours")
    row = AssistantSettings.objects.filter(pk=1).first()
    if row is None:
        return
    start, end, days = row.operators_from, row.operators_until, row.operator_weekdays or "1234567"
    if start is None and end is None and set(days) == set("1234567"):
        return
    opens, closes = start or datetime.time.min, end or datetime.time.max
    if opens >= closes:
        closes = datetime.time.max
    for weekday in range(7):
        if str(weekday + 1) in days:
            values = {"is_closed": False, "opens_at": opens, "closes_at": closes}
        else:
            values = {"is_closed": True, "opens_at": None, "closes_at": None}
        WorkingHours.objects.update_or_create(weekday=weekday, defaults=values)


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0004_llm_settings_fall_back_to_environment"),
        ("inbox", "0002_seed_hours_and_sla"),
    ]

    operations = [
        migrations.RunPython(copy_hours, migrations.RunPython.noop),
        migrations.RemoveField(model_name="assistantsettings", name="operators_from"),
        migrations.RemoveField(model_name="assistantsettings", name="operators_until"),
        migrations.RemoveField(model_name="assistantsettings", name="operator_weekdays"),
    ]
