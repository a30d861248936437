"""The product catalog kept in Bitrix24, imported through a local stand-in of its REST API (catalog_stub.py).

The real client talks real HTTP to the stand-in, which answers in the shapes
recorded in fixtures/catalog/ (NOTES.md) and counts what it was asked.
"""

import io
import math
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from catalog.models import Category, Product, ScrapeRun, Source
from catalog.scrape import ScrapeAlreadyRunning
from integrations.bitrix24 import catalog
from integrations.bitrix24.catalog_tasks import (
    SCHEDULE,
    ensure_catalog_import_schedule,
    queue_import_run,
    run_import,
    scheduled_import,
)
from tests.integrations.bitrix24.catalog_stub import CatalogPortal, answer

pytestmark = pytest.mark.django_db

SECTIONS = {13: "Икра", 14: "Креветки", 22: "Икра лососёвых"}


@pytest.fixture(autouse=True)
def catalog_settings(settings):
    # A roomy rate limit: the stand-in answers at once and no test here is about waiting.
    settings.B24_RATE_LIMIT_PER_S = 1000
    settings.B24_RATE_LIMIT_BURST = 1000
    settings.B24_CLIENT_ID = ""
    settings.B24_CATALOG_IMPORT = True
    settings.B24_CATALOG_IBLOCK_ID = ""
    settings.B24_CATALOG_STORE_IDS = []
    settings.SCRAPER_MIN_RATIO = 0.5
    return settings


def start_portal(settings, **options) -> CatalogPortal:
    portal = CatalogPortal(**options).start()
    settings.B24_WEBHOOK_URL = portal.webhook_url
    portal.add_section(13, "Икра", sort=100)
    portal.add_section(14, "Креветки", sort=200)
    portal.add_section(22, "Икра лососёвых", parent=13, sort=50)
    return portal


@pytest.fixture
def portal(settings):
    portal = start_portal(settings)
    yield portal
    portal.close()


@pytest.fixture
def legacy_portal(settings, request):
    portal = start_portal(
        settings, catalog_module=False, catalog_error=getattr(request, "param", "ERROR_METHOD_NOT_FOUND")
    )
    yield portal
    portal.close()


def stock_products(portal: CatalogPortal, count: int) -> dict[str, tuple[Decimal, int]]:
    """`count` products, each with its own price and stock in warehouses 1 and 2; (price, units) by id."""
    expected = {}
    for n in range(1, count + 1):
        price = 100 + n + (n % 4) * 0.25
        stock = {1: n % 5, 2: n % 3}
        # The product's own quantity differs from the warehouses': which one is read shows.
        portal.add_product(1000 + n, f"Товар {n}", price=price, quantity=999, section=(13, 14, 22)[n % 3], stock=stock)
        expected[str(1000 + n)] = (Decimal(str(price)).quantize(Decimal("0.01")), sum(stock.values()))
    return expected


def imported() -> dict[str, tuple[Decimal | None, int | None]]:
    rows = Product.objects.filter(source=Source.BITRIX24, is_available=True).values_list(
        "external_id", "price", "quantity"
    )
    return {external_id: (price, quantity) for external_id, price, quantity in rows}


def test_a_catalog_of_5000_products_is_imported_with_prices_and_stock_read_in_batches(settings, portal):
    settings.B24_CATALOG_STORE_IDS = ["1", "2"]
    expected = stock_products(portal, 5000)

    run = run_import(triggered_by="test")

    assert run.status == ScrapeRun.Status.OK, run.error
    assert (run.seen, run.created, run.skipped) == (5000, 5000, 0)
    assert imported() == expected
    per_50 = math.ceil(5000 / 50)
    assert portal.batches_with("catalog.price.list") <= per_50
    assert portal.batches_with("catalog.storeproduct.list") <= per_50
    assert len(portal.batches) <= per_50
    # Nothing product by product: every read but the catalogs' is a batch.
    assert set(portal.requests) == {"catalog.catalog.list", "batch"}
    assert portal.called("catalog.catalog.list") == 1
    assert run.pages == len(portal.requests)
    # What the counts are: a batch of first pages, two of the other 99 product pages, two
    # of 100 price commands (50 products each), four of stock: 10,000 warehouse rows are
    # 200 pages at the least, 100 commands of 50 products and their second pages.
    assert portal.called("batch") == 9
    assert (portal.batches_with("catalog.price.list"), portal.batches_with("catalog.storeproduct.list")) == (2, 4)


def test_products_are_imported_with_their_section_description_and_bitrix24_id(portal):
    portal.add_product(1243, "Икра кеты, 250 г", price=1290, quantity=12, section=22)

    run_import()

    product = Product.objects.get(source=Source.BITRIX24)
    assert (product.external_id, product.title, product.price, product.currency) == (
        "1243",
        "Икра кеты, 250 г",
        Decimal("1290.00"),
        "RUB",
    )
    assert [c.title for c in product.categories.all()] == ["Икра лососёвых"]
    categories = {c.external_id: c for c in Category.objects.filter(source=Source.BITRIX24)}
    assert {k: c.title for k, c in categories.items()} == {str(k): v for k, v in SECTIONS.items()}
    assert categories["22"].parent == categories["13"]


def test_without_named_warehouses_the_stock_is_the_products_own_quantity(portal):
    portal.add_product(1, "В наличии", quantity=12, available="Y")
    portal.add_product(2, "Продаётся без остатка", quantity=0, available="Y")
    portal.add_product(3, "Нет в наличии", quantity=0, available="N")
    portal.add_product(4, "Остаток есть, купить нельзя", quantity=5, available="N")

    run_import()

    quantities = dict(Product.objects.values_list("external_id", "quantity"))
    assert quantities == {"1": 12, "2": None, "3": 0, "4": 0}
    assert portal.batches_with("catalog.storeproduct.list") == 0
    assert set(Product.objects.filter(in_stock=True).values_list("external_id", flat=True)) == {"1", "2"}


def test_stock_of_the_named_warehouses_only(settings, portal):
    settings.B24_CATALOG_STORE_IDS = ["2"]
    portal.add_product(1, "Икра", quantity=999, stock={1: 7, 2: 5})
    portal.add_product(2, "Краб", quantity=999, stock={1: 3})

    run_import()

    assert dict(Product.objects.values_list("external_id", "quantity")) == {"1": 5, "2": 0}


def test_a_product_without_a_base_price_is_imported_without_one(portal):
    portal.add_product(1, "Под заказ", price=None)

    run_import()

    assert Product.objects.get(external_id="1").price is None


def test_inactive_products_are_not_imported(portal):
    portal.add_product(1, "Икра")
    portal.add_product(2, "Снят с продажи", active="N")

    run_import()

    assert list(Product.objects.values_list("external_id", flat=True)) == ["1"]


def test_a_named_iblock_is_read_without_asking_for_the_catalogs(settings, portal):
    settings.B24_CATALOG_IBLOCK_ID = "23"
    portal.add_product(1, "Икра")

    run = run_import()

    assert run.status == ScrapeRun.Status.OK
    assert portal.called("catalog.catalog.list") == 0


@pytest.mark.parametrize("legacy_portal", ["ERROR_METHOD_NOT_FOUND", "insufficient_scope"], indirect=True)
def test_without_the_catalog_module_the_legacy_crm_products_are_read(legacy_portal):
    for n in range(1, 121):
        legacy_portal.add_product(n, f"Товар {n}", price=10 * n + 0.5, section=14)

    run = run_import()

    assert run.status == ScrapeRun.Status.OK, run.error
    assert run.seen == 120
    product = Product.objects.get(external_id="7")
    assert (product.price, product.quantity, product.in_stock) == (Decimal("70.50"), None, True)
    assert [c.title for c in product.categories.all()] == ["Креветки"]
    assert Category.objects.get(source=Source.BITRIX24, external_id="22").parent.external_id == "13"
    # One failed catalog call, then a batch of first pages and one of the other two pages.
    assert legacy_portal.requests == ["catalog.catalog.list", "batch", "batch"]
    assert {m for methods in legacy_portal.batches for m in methods} == {"crm.product.list", "crm.productsection.list"}


def test_a_run_that_finds_far_fewer_products_is_refused_and_hides_nothing(portal):
    for n in range(1, 101):
        portal.add_product(n, f"Товар {n}")
    run_import()
    for n in range(21, 101):
        del portal.products[n]

    run = run_import()

    assert run.status == ScrapeRun.Status.REFUSED
    assert "returned 20 products but the catalog has 100" in run.error
    assert Product.objects.filter(source=Source.BITRIX24, is_available=True).count() == 100


def test_a_forced_run_applies_the_shrunk_catalog_marking_the_rest_unavailable(portal):
    for n in range(1, 101):
        portal.add_product(n, f"Товар {n}")
    run_import()
    for n in range(21, 101):
        del portal.products[n]

    run = run_import(force=True)

    assert (run.status, run.marked_unavailable) == (ScrapeRun.Status.OK, 80)
    assert Product.objects.filter(source=Source.BITRIX24).count() == 100  # never deleted
    assert Product.objects.filter(source=Source.BITRIX24, is_available=True).count() == 20


def test_a_product_gone_from_bitrix24_is_marked_unavailable_not_deleted(portal):
    for n in range(1, 11):
        portal.add_product(n, f"Товар {n}")
    run_import()
    del portal.products[3]

    run = run_import()

    assert (run.status, run.marked_unavailable) == (ScrapeRun.Status.OK, 1)
    assert Product.objects.get(external_id="3").is_available is False


def test_a_price_changed_in_bitrix24_is_picked_up_by_the_next_run(portal):
    portal.add_product(1243, "Икра кеты, 250 г", price=1290)
    portal.add_product(1244, "Креветки", price=2190)
    run_import()
    before = Product.objects.get(external_id="1243")
    portal.products[1243]["price"] = 1190.5

    run = run_import()

    after = Product.objects.get(external_id="1243")
    assert (run.updated, run.unchanged) == (1, 1)
    assert after.price == Decimal("1190.50")
    assert after.price_changed_at > before.price_changed_at


def test_a_run_that_fails_midway_changes_nothing(portal):
    portal.add_product(1, "Икра", price=1290)
    run_import()
    portal.products[1]["price"] = 990
    portal.add_product(2, "Краб")
    portal.refuse("catalog.price.list", "OPERATION_TIME_LIMIT")

    run = run_import()

    assert run.status == ScrapeRun.Status.FAILED
    assert "OPERATION_TIME_LIMIT" in run.error
    assert list(Product.objects.values_list("external_id", "price")) == [("1", Decimal("1290.00"))]


def test_two_runs_never_overlap(portal):
    queue_import_run(triggered_by="another worker")

    with pytest.raises(ScrapeAlreadyRunning):
        run_import()
    assert portal.requests == []


def test_the_schedule_runs_only_when_the_import_is_on(settings, portal):
    portal.add_product(1, "Икра")
    settings.B24_CATALOG_IMPORT = False

    assert scheduled_import() == "off"
    assert portal.requests == []

    settings.B24_CATALOG_IMPORT = True
    assert scheduled_import() == ScrapeRun.Status.OK
    assert Product.objects.filter(source=Source.BITRIX24).count() == 1


def test_the_schedule_is_made_once_with_the_interval_and_kept_as_staff_edit_it(settings):
    Schedule.objects.filter(name=SCHEDULE).delete()
    settings.B24_CATALOG_INTERVAL_S = 7200
    ensure_catalog_import_schedule()
    schedule = Schedule.objects.get(name=SCHEDULE)
    assert (schedule.func, schedule.minutes) == ("integrations.bitrix24.catalog_tasks.scheduled_import", 120)
    Schedule.objects.filter(pk=schedule.pk).update(minutes=15)

    ensure_catalog_import_schedule()

    assert Schedule.objects.get(name=SCHEDULE).minutes == 15


def test_the_command_prints_a_summary(portal):
    portal.add_product(1, "Икра")
    out = io.StringIO()

    call_command("b24_import_catalog", stdout=out)

    assert "created             1" in out.getvalue()


def test_the_command_fails_on_a_refused_run_and_force_applies_it(portal):
    for n in range(1, 11):
        portal.add_product(n, f"Товар {n}")
    call_command("b24_import_catalog", stdout=io.StringIO())
    portal.products.clear()

    with pytest.raises(CommandError, match="returned 0 products"):
        call_command("b24_import_catalog", stdout=io.StringIO())
    call_command("b24_import_catalog", "--force", stdout=io.StringIO())
    assert not Product.objects.filter(is_available=True).exists()


# The recorded answers, read -----------------------------------------------------


def test_the_crm_product_catalog_is_the_one_that_is_not_of_variations():
    assert catalog.product_iblock_id(answer("catalog_catalog_list.json")["result"]) == 23


def test_recorded_products_and_prices_read_into_records():
    rows = answer("catalog_product_list.json")["result"]["products"]
    prices = catalog.base_prices(answer("catalog_price_list.json")["result"]["prices"])

    records = [catalog.parse_product(row, prices.get(str(row["id"])), None) for row in rows]

    assert [(r.external_id, r.price, r.quantity, r.category_external_ids) for r in records] == [
        ("1243", Decimal("1290.00"), 12, ["22"]),
        ("1244", Decimal("2190.50"), None, ["14"]),
        ("1245", None, 0, []),
    ]
    assert records[0].description == "Икра кеты первого сорта, засолка в день вылова."
    assert records[0].short_description == "Зерно 5 мм"


def test_recorded_warehouse_rows_add_up_per_product():
    assert catalog.store_stock(answer("catalog_storeproduct_list.json")["result"]["storeProducts"]) == {"1243": 12}


def test_recorded_legacy_products_read_into_records():
    first, second = (catalog.parse_crm_product(row) for row in answer("crm_product_list.json")["result"])

    assert (first.external_id, first.price, first.quantity, first.description) == (
        "1243",
        Decimal("1290.00"),
        None,
        "Икра кеты первого сорта.",
    )
    assert (second.price, second.category_external_ids) == (None, [])


def test_a_failed_command_of_a_batch_is_its_own_error():
    error = catalog.command_error("catalog.product.list", answer("batch.json")["result"]["result_error"]["2"])

    assert (error.code, error.permanent) == ("ERROR_METHOD_NOT_FOUND", True)
    assert catalog.catalog_module_unavailable(error)
