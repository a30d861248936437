"""Outages of the services a test talks to, made at the connection: the code under test is not touched."""

import copy

from django.db import connections
from django.test import override_settings

# Redis on a port nothing listens on, with short timeouts: every call fails at once.
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
}


def cache_outage():
    """The cache (and with REDIS_URL, the task queue's broker) out of reach inside the block."""
    return override_settings(CACHES=UNREACHABLE_REDIS)


class DatabaseOutage:
    """The default connection swapped for one to a database that cannot be reached, until end()."""

    def __init__(self):
        self._original = connections["default"]
        settings_dict = copy.deepcopy(self._original.settings_dict)
        if self._original.vendor == "postgresql":
            settings_dict.update(HOST="127.0.0.1", PORT="1")
        else:
            settings_dict.update(NAME="/nonexistent-dir/storebot.sqlite3")
        connections["default"] = self._original.__class__(settings_dict, "default")

    def end(self):
        if connections["default"] is not self._original:
            connections["default"].close()
            connections["default"] = self._original
