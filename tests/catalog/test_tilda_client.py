"""The Tilda Store HTTP client, against recorded pages served by `responses`."""

from pathlib import Path

import pytest
import responses
from responses import matchers, registries

from catalog.importers.tilda import TildaClient, TildaError, discover_store_ids

FIXTURES = Path(__file__).parent / "fixtures" / "tilda"
API = "https://store.tildaapi.example/api/getproductslist/"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def client(**options) -> TildaClient:
    options = {"retries": 2, "backoff": 0, "page_delay": 0, **options}
    return TildaClient(api_url=API, timeout=5, **options)


def serve(slice_number: int, body: str, status: int = 200, content_type: str = "application/json"):
    responses.get(
        API,
        body=body,
        status=status,
        content_type=content_type,
        match=[matchers.query_param_matcher({"slice": str(slice_number)}, strict_match=False)],
    )


@responses.activate
def test_follows_nextslice_over_every_page():
    serve(1, fixture("page_1.json"))
    serve(2, fixture("page_2.json"))

    pages = list(client().iter_pages(partuid="531000", recid="600100002"))

    assert len(pages) == 2
    assert len(responses.calls) == 2
    assert "storepartuid=531000" in responses.calls[0].request.url
    assert "recid=600100002" in responses.calls[0].request.url
    assert "slice=2" in responses.calls[1].request.url
    assert "getparts=true" in responses.calls[0].request.url


@responses.activate
def test_sends_a_clear_user_agent():
    serve(1, fixture("page_2.json"))

    list(client().iter_pages(partuid="531000", recid="1"))

    assert responses.calls[0].request.headers["User-Agent"].startswith("storebot/")


@responses.activate
def test_plain_text_error_with_status_200_is_a_failed_page():
    serve(1, fixture("error_plain.txt"), content_type="text/plain")

    with pytest.raises(TildaError, match="slice 1"):
        list(client().iter_pages(partuid="1", recid="1"))


@responses.activate(registry=registries.OrderedRegistry)
def test_server_errors_and_rate_limits_are_retried():
    responses.get(API, status=503)
    responses.get(API, status=429, headers={"Retry-After": "0"})
    responses.get(API, body=fixture("page_2.json"), content_type="application/json")

    [page] = list(client().iter_pages(partuid="1", recid="1"))

    assert len(responses.calls) == 3
    assert len(page.products) == 2


@responses.activate
def test_error_that_outlasts_the_retries_fails_the_page():
    responses.get(API, status=502)

    with pytest.raises(TildaError, match="HTTP 502"):
        list(client(retries=2).iter_pages(partuid="1", recid="1"))
    assert len(responses.calls) == 3  # the first try and two retries


@responses.activate
def test_nextslice_that_goes_backwards_stops_the_run():
    serve(1, fixture("page_1.json"))
    serve(2, fixture("page_1.json").replace('"nextslice": 2', '"nextslice": 1'))

    with pytest.raises(TildaError, match="backwards"):
        list(client().iter_pages(partuid="1", recid="1"))


@responses.activate
def test_page_limit_stops_an_endless_store():
    for n in range(1, 4):
        serve(n, fixture("page_1.json").replace('"nextslice": 2', f'"nextslice": {n + 1}'))

    with pytest.raises(TildaError, match="more than 3 pages"):
        list(client(max_pages=3).iter_pages(partuid="1", recid="1"))


def test_discovers_store_ids_in_a_shop_page():
    pairs = discover_store_ids(fixture("shop_page.html"))

    assert pairs == [("531000110011", "600100002"), ("531000220022", "600100003")]
