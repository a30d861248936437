import pytest
from django.db import connection


@pytest.fixture
def postgres_only(db):
    """For behaviour that only the PostgreSQL search has (stemming, trigrams)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
