import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule, Task
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception as exc:  # any driver error means "down" to a monitor
        logger.warning("health: database check failed: %s", type(exc).__name__)
        return False


def check_cache() -> bool:
    key = f"health:{uuid.uuid4().hex}"
    try:
        cache.set(key, "1", timeout=5)
        ok = cache.get(key) == "1"
        cache.delete(key)
        return ok
    except Exception as exc:
        logger.warning("health: cache check failed: %s", type(exc).__name__)
        return False


# The task worker (qcluster) proves it is alive by finishing tasks: the heartbeat
# schedule gives it one a minute when it has nothing else to do. django-q2's own
# cluster status (django_q.status.Stat) lives in the broker's cache, which with the
# embedded ORM broker is each process's local memory, invisible to the web server;
# the result of every finished task is in the database with either broker.
HEARTBEAT_SCHEDULE = "health: worker heartbeat"
HEARTBEAT_FUNC = "config.health.worker_heartbeat"

# When this web process started. A worker started with it (make run; compose starts
# the worker once web is healthy) reports within a minute or so: until the heartbeat
# may be that old, no recent one means "starting", not "gone".
STARTED_AT = time.monotonic()


def worker_heartbeat() -> str:
    """The heartbeat task: finishing is all it has to do."""
    return "ok"


def ensure_heartbeat_schedule() -> None:
    Schedule.objects.get_or_create(
        name=HEARTBEAT_SCHEDULE,
        defaults={"func": HEARTBEAT_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )


def last_worker_heartbeat() -> datetime | None:
    """When the worker last finished a task, any task (a busy worker's heartbeat may be pruned, its work is not)."""
    return Task.objects.order_by("-stopped").values_list("stopped", flat=True).first()


def check_worker() -> tuple[str, datetime | None]:
    """("ok" | "starting" | "gone" | "unknown" | "unchecked", the last heartbeat)."""
    max_age = settings.Q_HEARTBEAT_MAX_AGE_S
    if max_age <= 0:
        return "unchecked", None
    try:
        last = last_worker_heartbeat()
    except Exception as exc:  # the database check names the cause; this part cannot know
        logger.warning("health: worker heartbeat unreadable: %s", type(exc).__name__)
        return "unknown", None
    if last is not None and timezone.now() - last <= timedelta(seconds=max_age):
        return "ok", last
    if time.monotonic() - STARTED_AT < max_age:
        return "starting", last
    return "gone", last


# Each of database and cache is "ok" or "error"; worker is "ok", "starting" (no
# heartbeat yet, this web process is younger than Q_HEARTBEAT_MAX_AGE_S), "gone"
# (the 503 case), "unknown" (the database cannot say) or "unchecked"
# (Q_HEARTBEAT_MAX_AGE_S=0).
HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.CharField(),
        "database": serializers.CharField(),
        "cache": serializers.CharField(),
        "worker": serializers.CharField(),
        "worker_heartbeat": serializers.DateTimeField(allow_null=True),
    },
)


class HealthApi(APIView):
    authentication_classes = []
    permission_classes = []

    @extend_schema(
        # One body for both answers: 503 says which part is "error".
        responses={200: HEALTH, 503: HEALTH},
        description=(
            "Liveness of the service, its database and cache, and the task worker's last heartbeat. "
            "503 names the failing part."
        ),
    )
    def get(self, request):
        parts = {"database": check_database(), "cache": check_cache()}
        body = {name: "ok" if ok else "error" for name, ok in parts.items()}
        worker, heartbeat = check_worker() if parts["database"] else ("unknown", None)
        healthy = all(parts.values()) and worker != "gone"
        body = {
            "status": "ok" if healthy else "error",
            **body,
            "worker": worker,
            "worker_heartbeat": timezone.localtime(heartbeat).isoformat(timespec="seconds") if heartbeat else None,
        }
        return Response(body, status=200 if healthy else 503)
