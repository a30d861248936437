import copy

import pytest
from django.db import connections
from django.test import override_settings


@pytest.mark.django_db
def test_health_is_ok_when_database_and_cache_answer(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}


@pytest.fixture
def dead_database(db):
    """Swap the default connection for one to a database that cannot be reached."""
    original = connections["default"]
    settings_dict = copy.deepcopy(original.settings_dict)
    if original.vendor == "postgresql":
        settings_dict.update(HOST="127.0.0.1", PORT="1")
    else:
        settings_dict.update(NAME="/nonexistent-dir/storebot.sqlite3")
    connections["default"] = original.__class__(settings_dict, "default")
    yield
    connections["default"].close()
    connections["default"] = original


def test_health_is_503_naming_the_database_when_it_is_down(client, dead_database):
    response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error", "cache": "ok"}


@pytest.mark.django_db
def test_health_is_503_naming_the_cache_when_it_is_down(client):
    unreachable = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=unreachable):
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "cache": "error"}
