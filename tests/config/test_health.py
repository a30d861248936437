import pytest

from tests.outages import cache_outage


@pytest.mark.django_db
def test_health_is_ok_when_database_and_cache_answer(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}


@pytest.fixture
def dead_database(database_outage):
    database_outage()


def test_health_is_503_naming_the_database_when_it_is_down(client, dead_database):
    response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error", "cache": "ok"}


@pytest.mark.django_db
def test_health_is_503_naming_the_cache_when_it_is_down(client):
    with cache_outage():
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "cache": "error"}
