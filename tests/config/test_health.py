import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from config import health
from tests.outages import cache_outage


def finished_task(*, ago: timedelta) -> Task:
    """What the worker leaves behind when it finishes a task."""
    stopped = timezone.now() - ago
    return Task.objects.create(
        id=uuid.uuid4().hex,
        name="some-task",
        func="integrations.tasks.answer",
        started=stopped - timedelta(seconds=1),
        stopped=stopped,
        success=True,
    )


def local_iso(task: Task) -> str:
    return timezone.localtime(task.stopped).isoformat(timespec="seconds")


@pytest.fixture
def web_up_for_an_hour(monkeypatch):
    """This web process started long before the heartbeat's age limit: a worker has had time to report."""
    monkeypatch.setattr(health, "STARTED_AT", time.monotonic() - 3600)


@pytest.fixture
def web_just_started(monkeypatch):
    monkeypatch.setattr(health, "STARTED_AT", time.monotonic())


@pytest.fixture
def worker_alive(db):
    return finished_task(ago=timedelta(seconds=30))


@pytest.mark.django_db
def test_health_is_ok_when_database_cache_and_worker_answer(client, worker_alive, web_up_for_an_hour):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "cache": "ok",
        "worker": "ok",
        "worker_heartbeat": local_iso(worker_alive),
    }


@pytest.fixture
def dead_database(database_outage):
    database_outage()


def test_health_is_503_naming_the_database_when_it_is_down(client, dead_database):
    response = client.get("/health")

    assert response.status_code == 503
    # The worker's heartbeat is in the database: with it down, nothing is known of the worker.
    assert response.json() == {
        "status": "error",
        "database": "error",
        "cache": "ok",
        "worker": "unknown",
        "worker_heartbeat": None,
    }


@pytest.mark.django_db
def test_health_is_503_naming_the_cache_when_it_is_down(client, worker_alive):
    with cache_outage():
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["cache"] == "error"
    assert response.json()["database"] == "ok"
    assert response.json()["worker"] == "ok"


@pytest.mark.django_db
def test_health_is_503_naming_the_worker_when_its_heartbeat_is_old(client, settings, web_up_for_an_hour):
    settings.Q_HEARTBEAT_MAX_AGE_S = 120
    last = finished_task(ago=timedelta(minutes=10))

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "database": "ok",
        "cache": "ok",
        "worker": "gone",
        "worker_heartbeat": local_iso(last),
    }


@pytest.mark.django_db
def test_health_is_503_when_no_worker_ever_reported_long_after_the_start(client, web_up_for_an_hour):
    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["worker"] == "gone"
    assert response.json()["worker_heartbeat"] is None


@pytest.mark.django_db
def test_a_worker_not_reported_yet_after_the_web_start_is_starting_not_gone(client, web_just_started):
    # docker compose starts the worker only once web is healthy; make run starts both at once.
    finished_task(ago=timedelta(days=2))

    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["worker"] == "starting"


@pytest.mark.django_db
def test_the_newest_finished_task_is_the_heartbeat(client, web_up_for_an_hour):
    finished_task(ago=timedelta(hours=3))
    newest = finished_task(ago=timedelta(seconds=5))

    assert client.get("/health").json()["worker_heartbeat"] == local_iso(newest)


@pytest.mark.django_db
def test_a_heartbeat_age_of_zero_turns_the_worker_check_off(client, settings, web_up_for_an_hour):
    settings.Q_HEARTBEAT_MAX_AGE_S = 0

    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["worker"] == "unchecked"


@pytest.mark.django_db
def test_the_heartbeat_schedule_runs_every_minute_and_its_task_makes_health_ok(client, web_up_for_an_hour):
    # Made by post_migrate (integrations.tasks.ensure_sweep_schedule), like the sweep's.
    schedule = Schedule.objects.get(name=health.HEARTBEAT_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "config.health.worker_heartbeat",
        Schedule.MINUTES,
        1,
        -1,
    )
    assert client.get("/health").status_code == 503

    async_task(schedule.func, sync=True)

    assert client.get("/health").json()["worker"] == "ok"
