"""The assistant's own operator hours, set by staff before, become the inbox's working hours."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("bots", "0004_llm_settings_fall_back_to_environment"), ("inbox", "0002_seed_hours_and_sla")]
AFTER = [("bots", "0005_operator_hours_are_the_inbox_working_hours")]


def migrate_with(**operator_hours):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("bots", "AssistantSettings")
    old.objects.create(pk=1, store_name="Морской рынок", **operator_hours)
    # The seeded week (a test database with transactions is flushed of seeded rows).
    seeded = executor.loader.project_state(BEFORE).apps.get_model("inbox", "WorkingHours")
    for weekday in range(7):
        seeded.objects.get_or_create(
            weekday=weekday, defaults={"opens_at": datetime.time(9), "closes_at": datetime.time(21)}
        )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        hours = executor.loader.project_state(AFTER).apps.get_model("inbox", "WorkingHours")
        return [(row.weekday, row.is_closed, row.opens_at, row.closes_at) for row in hours.objects.order_by("weekday")]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_weekday_hours_set_for_the_bot_become_the_working_hours():
    rows = migrate_with(operators_from=datetime.time(10), operators_until=datetime.time(19), operator_weekdays="12345")

    ten, seven = datetime.time(10), datetime.time(19)
    assert rows == [(day, False, ten, seven) for day in range(5)] + [(5, True, None, None), (6, True, None, None)]


@pytest.mark.django_db(transaction=True)
def test_the_default_always_on_duty_keeps_the_inbox_hours():
    rows = migrate_with(operators_from=None, operators_until=None, operator_weekdays="1234567")

    assert rows == [(day, False, datetime.time(9), datetime.time(21)) for day in range(7)]
