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


def recorded_page(n: int):
    from pathlib import Path

    return parse_page((Path(__file__).parent / "fixtures" / "tilda" / f"page_{n}.json").read_text(encoding="utf-8"))


def by_id(page):
    return {p.external_id: p for p in page.products}


def test_numeric_uid_becomes_a_string_id():
    assert "770000000001" in by_id(recorded_page(1))


def test_price_with_a_space_and_old_price():
    shrimp = by_id(recorded_page(1))["770000000002"]

    assert shrimp.price == Decimal("2190.00")
    assert shrimp.old_price == Decimal("2590.00")


def test_empty_quantity_is_not_tracked_and_zero_is_out_of_stock():
    page = by_id(recorded_page(2))

    assert page["770000000004"].quantity is None  # "-1"
    assert page["770000000005"].quantity == 0
    assert page["770000000005"].price is None  # ""


def test_gallery_and_partuids_nested_as_json_strings():
    caviar = by_id(recorded_page(1))["770000000001"]

    assert caviar.image_url == "https://static.tildacdn.example/1/photo.jpg"
    assert caviar.category_external_ids == ["531001"]


def test_html_of_the_description_is_stripped():
    caviar = by_id(recorded_page(1))["770000000001"]

    assert caviar.description == "Красная икра горбуши. Хранение: от −4 до +4 °C."


def test_editions_become_variants_titled_with_their_options():
    products = by_id(recorded_page(1))

    small, large = products["770000000031"], products["770000000032"]
    assert small.parent_external_id == large.parent_external_id == "770000000003"
    assert small.title == "Икра нерки, 250 г"
    assert (small.sku, small.price, small.quantity) == ("NR-250", Decimal("4489.00"), 3)
    assert (large.sku, large.price, large.old_price, large.quantity) == (
        "NR-500",
        Decimal("8500.00"),
        Decimal("9000.00"),
        0,
    )
    assert large.characteristics["Фасовка"] == "500 г"


def test_single_edition_of_the_products_own_uid_is_the_product_itself():
    page = recorded_page(2)

    assert [p.external_id for p in page.products if p.parent_external_id] == []
    assert by_id(page)["770000000004"].sku == "MR-00011"


def test_malformed_product_is_reported_and_the_page_kept():
    page = recorded_page(2)

    assert [(s.ref, "price" in s.reason) for s in page.skipped] == [("770000000006", True)]
    assert len(page.products) == 2


def test_parts_become_categories():
    assert [(c.external_id, c.title) for c in recorded_page(1).categories] == [
        ("531001", "Икра"),
        ("531002", "Креветки"),
    ]
