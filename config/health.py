import logging
import uuid

from django.core.cache import cache
from django.db import connection
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


# Each part is "ok" or "error".
HEALTH = inline_serializer(
    "Health",
    {"status": serializers.CharField(), "database": serializers.CharField(), "cache": serializers.CharField()},
)


class HealthApi(APIView):
    authentication_classes = []
    permission_classes = []

    @extend_schema(
        # One body for both answers: 503 says which part is "error".
        responses={200: HEALTH, 503: HEALTH},
        description="Liveness of the service and its database and cache. 503 names the failing part.",
    )
    def get(self, request):
        parts = {"database": check_database(), "cache": check_cache()}
        body = {name: "ok" if ok else "error" for name, ok in parts.items()}
        healthy = all(parts.values())
        body = {"status": "ok" if healthy else "error", **body}
        return Response(body, status=200 if healthy else 503)
