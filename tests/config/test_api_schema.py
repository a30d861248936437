"""The API against its own OpenAPI schema (schemathesis): every operation, every check.

Cases are generated from /api/schema/ and sent to the WSGI app in-process,
on the test database; the answers must be what the schema declares (status
codes, bodies, headers, content types), valid data must be accepted and
invalid data refused: all of schemathesis's checks, which is its default.
Bounded and derandomized, so CI runs the same cases every time.
"""

import pytest
import responses
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django_q.conf import Conf
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.stateful import run_state_machine_as_test

from config.wsgi import application

TOKEN = "schema-test-token"

BOUNDED = hypothesis_settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    # The app and the test database are set up once per operation, not per example, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def in_process_requests(db):
    """The app keeps the test's database connection, as under Django's test client.

    A WSGI request closes the connection when it finishes; here that connection
    holds the test's transaction, which must outlive every request.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def api_schema(in_process_requests, settings, monkeypatch):
    settings.API_TOKEN = TOKEN
    # A queued scrape runs inline and fails fast: no store is configured, so no Tilda request.
    settings.TILDA_STORE_PARTUID = []
    monkeypatch.setattr(Conf, "SYNC", True)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})
    return schema


@pytest.fixture(autouse=True)
def no_outside_http():
    """Any request the app makes with `requests` fails, and the test with it."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield
        assert not mock.calls, [call.request.url for call in mock.calls]


def fresh_throttle():
    # POST /catalog/scrape allows 6 a minute per caller (tests/catalog/test_scrape_api.py has the 429);
    # here each case starts with none counted, so the cases past the sixth test the endpoint, not the throttle.
    cache.clear()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@BOUNDED
def test_every_operation_conforms_to_the_schema(case):
    fresh_throttle()
    case.call_and_validate()


def test_workflows_conform_to_the_schema(api_schema):
    """Stateful: a queued run is then read back through the link the schema infers."""

    class Workflow(api_schema.as_state_machine()):
        def before_call(self, case):
            fresh_throttle()

    run_state_machine_as_test(Workflow, settings=hypothesis_settings(BOUNDED, max_examples=20, stateful_step_count=5))


def test_the_schema_generates_without_warnings(tmp_path):
    # A warning (two operations with one operationId) fails `check --deploy` in CI too.
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert "/api/orders/{number}/" in (tmp_path / "schema.yaml").read_text()
