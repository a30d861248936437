from decimal import Decimal

from catalog.importers.tilda import parse_page, parse_price, parse_quantity


def test_demo_page_parses_every_product():
    from catalog.demo import DEMO_DIR

    page = parse_page((DEMO_DIR / "tilda_page_1.json").read_text(encoding="utf-8"))
    assert len(page.products) == 36
    assert page.skipped == []
    assert page.next_slice == 2


def test_prices_in_tilda_shapes():
    assert parse_price("1290.0000") == Decimal("1290.00")
    assert parse_price("650.00") == Decimal("650.00")
    assert parse_price("1 290") == Decimal("1290.00")
    assert parse_price("") is None
    assert parse_price(990) == Decimal("990.00")


def test_quantity_empty_or_negative_means_not_tracked():
    assert parse_quantity("") is None
    assert parse_quantity("-1") is None
    assert parse_quantity("0") == 0
    assert parse_quantity("12") == 12
