"""Tilda catalog sync runs, with Tilda's API stubbed at the HTTP layer."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.signals import post_spawn
from responses import matchers

from catalog.models import Product, ScrapeRun, Source
from catalog.scrape import ScrapeAlreadyRunning, ensure_scrape_schedules, queue_scrape_run, run_scrape

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "tilda"
API = "https://store.tildaapi.example/api/getproductslist/"


@pytest.fixture(autouse=True)
def tilda_settings(settings):
    settings.TILDA_API_URL = API
    settings.TILDA_STORE_PARTUID = ["531000"]
    settings.TILDA_RECID = "600100002"
    settings.SCRAPER_RETRIES = 1
    settings.SCRAPER_BACKOFF_S = 0
    settings.SCRAPER_PAGE_DELAY_S = 0


@pytest.fixture
def tilda():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def page(n: int, **changes) -> dict:
    data = json.loads((FIXTURES / f"page_{n}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def serve(mock, slice_number: int, payload=None, *, status: int = 200, body: str | None = None):
    mock.get(
        API,
        json=payload if body is None and status == 200 else None,
        body=body,
        status=status,
        match=[matchers.query_param_matcher({"slice": str(slice_number)}, strict_match=False)],
    )


def serve_store(mock, first=None, second=None):
    serve(mock, 1, first or page(1))
    serve(mock, 2, second or page(2))


def catalog_snapshot():
    return list(Product.objects.order_by("id").values("external_id", "title", "price", "quantity", "is_available"))


def full_import(mock, **pages):
    serve_store(mock, **pages)
    return run_scrape(mode=ScrapeRun.Mode.FULL, triggered_by="test")


def test_full_run_reads_every_slice_and_records_its_counts(tilda):
    run = full_import(tilda)

    assert run.status == ScrapeRun.Status.OK
    assert (run.pages, run.seen, run.created, run.skipped) == (2, 7, 7, 1)
    assert run.skipped_details == [{"ref": "770000000006", "reason": "unreadable price 'по запросу'"}]
    assert Product.objects.filter(source=Source.TILDA).count() == 7


def test_full_run_stores_variants_with_their_own_price_and_stock(tilda):
    full_import(tilda)

    variant = Product.objects.get(sku="NR-500")
    assert variant.parent.title == "Икра нерки"
    assert (variant.title, str(variant.price), variant.in_stock) == ("Икра нерки, 500 г", "8500.00", False)


def test_product_gone_from_the_store_is_marked_unavailable(tilda):
    full_import(tilda)
    second = page(2, products=page(2)["products"][1:])  # "Икра кижуча" is gone

    run = full_import(tilda, second=second)

    gone = Product.objects.get(external_id="770000000004")
    assert run.marked_unavailable == 1
    assert (gone.is_available, gone.in_stock) == (False, False)


def test_prices_run_updates_price_and_stock_only(tilda):
    full_import(tilda)
    first = page(1)
    caviar = first["products"][0]
    caviar.update(price="1390.0000", quantity="0", title="Новое название", descr="Новое описание")
    first["products"].append({"uid": 990000000001, "title": "Новинка", "price": "10"})
    before = Product.objects.get(external_id="770000000001")
    serve_store(tilda, first=first)

    run = run_scrape(mode=ScrapeRun.Mode.PRICES)

    after = Product.objects.get(external_id="770000000001")
    assert run.status == ScrapeRun.Status.OK
    assert (str(after.price), after.quantity, after.in_stock) == ("1390.00", 0, False)
    assert (after.title, after.short_description) == (before.title, before.short_description)
    assert after.price_changed_at > before.price_changed_at
    assert not Product.objects.filter(external_id="990000000001").exists()
    assert run.updated == 1


def test_failure_on_slice_two_leaves_the_catalog_as_it_was(tilda):
    full_import(tilda)
    before = catalog_snapshot()
    changed = page(1)
    changed["products"][0]["price"] = "1.00"
    serve(tilda, 1, changed)
    serve(tilda, 2, status=500)

    run = run_scrape(mode=ScrapeRun.Mode.FULL)

    assert run.status == ScrapeRun.Status.FAILED
    assert "slice 2" in run.error and "500" in run.error
    assert catalog_snapshot() == before


def test_bad_json_on_slice_two_fails_the_run_and_changes_nothing(tilda):
    full_import(tilda)
    before = catalog_snapshot()
    serve(tilda, 1, page(1))
    serve(tilda, 2, body="<html>502 Bad Gateway</html>")

    run = run_scrape(mode=ScrapeRun.Mode.FULL)

    assert run.status == ScrapeRun.Status.FAILED
    assert "not JSON" in run.error
    assert catalog_snapshot() == before


def test_suspiciously_small_store_is_refused(tilda):
    full_import(tilda)
    before = catalog_snapshot()
    serve(tilda, 1, page(1, products=page(1)["products"][:1], nextslice=""))

    run = run_scrape(mode=ScrapeRun.Mode.FULL)

    assert run.status == ScrapeRun.Status.REFUSED
    assert "SCRAPER_MIN_RATIO" in run.error
    assert catalog_snapshot() == before


def test_forced_run_applies_a_small_store(tilda):
    full_import(tilda)
    serve(tilda, 1, page(1, products=page(1)["products"][:1], nextslice=""))

    run = run_scrape(mode=ScrapeRun.Mode.FULL, force=True)

    assert run.status == ScrapeRun.Status.OK
    assert Product.objects.filter(is_available=True).count() == 1


def test_second_run_is_refused_while_one_is_active():
    active = queue_scrape_run(mode=ScrapeRun.Mode.FULL)

    with pytest.raises(ScrapeAlreadyRunning) as error:
        run_scrape(mode=ScrapeRun.Mode.PRICES)

    assert error.value.active == active
    assert ScrapeRun.objects.count() == 1


def test_run_abandoned_by_a_dead_worker_stops_blocking_after_a_while(tilda, settings):
    stale = queue_scrape_run(mode=ScrapeRun.Mode.FULL)
    ScrapeRun.objects.filter(pk=stale.pk).update(started_at=timezone.now() - timedelta(hours=4))

    run = full_import(tilda)

    stale.refresh_from_db()
    assert stale.status == ScrapeRun.Status.FAILED
    assert run.status == ScrapeRun.Status.OK


def test_run_without_store_settings_fails_with_a_hint(settings):
    settings.TILDA_STORE_PARTUID = []

    run = run_scrape(mode=ScrapeRun.Mode.FULL)

    assert run.status == ScrapeRun.Status.FAILED
    assert "--discover" in run.error


def test_schedules_for_both_modes_exist_after_migrate():
    schedules = dict(Schedule.objects.filter(func="catalog.tasks.scheduled_scrape").values_list("args", "minutes"))

    assert schedules == {"'full'": 1440, "'prices'": 60}


def test_schedules_are_not_duplicated_or_overwritten():
    Schedule.objects.filter(args="'prices'").update(minutes=15)

    ensure_scrape_schedules()

    assert Schedule.objects.filter(func="catalog.tasks.scheduled_scrape").count() == 2
    assert Schedule.objects.get(args="'prices'").minutes == 15


@pytest.fixture
def sync_tasks(monkeypatch):
    """django-q2 runs queued tasks in-process, as its own test mode does."""
    monkeypatch.setattr(Conf, "SYNC", True)


def test_worker_start_on_an_empty_catalog_queues_a_full_import(tilda, sync_tasks):
    serve_store(tilda)

    post_spawn.send(sender="django_q", proc_name="Worker-1")

    run = ScrapeRun.objects.get()
    assert (run.mode, run.status, run.triggered_by) == ("full", "ok", "first start")
    assert Product.objects.count() == 7


def test_worker_start_on_a_filled_catalog_queues_nothing(tilda, sync_tasks):
    full_import(tilda)

    post_spawn.send(sender="django_q", proc_name="Worker-1")

    assert ScrapeRun.objects.count() == 1


def test_command_prints_a_summary(tilda, capsys):
    serve_store(tilda)

    call_command("scrape", "--full", verbosity=0)

    out = capsys.readouterr().out
    assert "created" in out and "7" in out
    assert "skipped 770000000006" in out


def test_command_fails_on_a_failed_run(tilda):
    serve(tilda, 1, status=503)

    with pytest.raises(CommandError, match="HTTP 503"):
        call_command("scrape", "--prices", verbosity=0)


def test_command_fails_while_another_run_is_active():
    queue_scrape_run(mode=ScrapeRun.Mode.FULL)

    with pytest.raises(CommandError, match="active"):
        call_command("scrape", verbosity=0)


def test_command_discovers_store_ids(tilda, capsys):
    html = (FIXTURES / "shop_page.html").read_text(encoding="utf-8")
    tilda.get("https://shop.example/", body=html, content_type="text/html")

    call_command("scrape", "--discover", "https://shop.example/")

    out = capsys.readouterr().out
    assert "TILDA_STORE_PARTUID=531000110011,531000220022" in out
    assert "TILDA_RECID=600100002" in out
