"""catalog.services.import_products: the upsert every importer goes through."""

from decimal import Decimal

import pytest

from catalog.importers.records import CategoryRecord, ProductRecord
from catalog.importers.tilda import parse_page
from catalog.models import Product, Source
from catalog.search import search_products
from catalog.services import import_products

pytestmark = pytest.mark.django_db


def record(external_id="1", title="Икра кеты", **fields):
    return ProductRecord(external_id=external_id, title=title, **fields)


def test_new_products_are_created_and_counted():
    report = import_products(source=Source.TILDA, products=[record("1"), record("2", "Икра нерки")])

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert Product.objects.filter(source=Source.TILDA).count() == 2


def test_reimport_with_a_new_price_updates_and_stamps_the_price_change():
    import_products(source=Source.TILDA, products=[record(price=Decimal("100"))])
    first = Product.objects.get().price_changed_at

    report = import_products(source=Source.TILDA, products=[record(price=Decimal("120"))])

    product = Product.objects.get()
    assert (report.updated, report.unchanged) == (1, 0)
    assert product.price == Decimal("120")
    assert product.price_changed_at > first


def test_reimport_of_the_same_data_counts_unchanged_and_refreshes_last_seen():
    import_products(source=Source.TILDA, products=[record(price=Decimal("100"))])
    seen = Product.objects.get().last_seen_at

    report = import_products(source=Source.TILDA, products=[record(price=Decimal("100"))])

    assert (report.updated, report.unchanged) == (0, 1)
    assert Product.objects.get().last_seen_at > seen


def test_product_missing_from_a_full_import_is_marked_unavailable_not_deleted():
    import_products(source=Source.TILDA, products=[record("1"), record("2", "Икра нерки")])

    report = import_products(source=Source.TILDA, products=[record("1")], mark_missing_unavailable=True)

    gone = Product.objects.get(external_id="2")
    assert report.marked_unavailable == 1
    assert gone.is_available is False
    assert gone.in_stock is False


def test_same_external_id_in_two_sources_is_two_products():
    import_products(source=Source.TILDA, products=[record("1")])
    import_products(source=Source.ONEC, products=[record("1")])

    assert Product.objects.count() == 2


def test_categories_follow_the_source():
    cats = [CategoryRecord("10", "Икра"), CategoryRecord("20", "Деликатесы")]
    import_products(source=Source.TILDA, products=[record(category_external_ids=["10", "20"])], categories=cats)

    import_products(source=Source.TILDA, products=[record(category_external_ids=["20"])], categories=cats)

    assert [c.title for c in Product.objects.get().categories.all()] == ["Деликатесы"]


def test_category_title_is_searchable():
    import_products(
        source=Source.TILDA,
        products=[record(title="Набор «Праздник»", category_external_ids=["9"])],
        categories=[CategoryRecord("9", "Подарочные наборы")],
    )

    assert [p.title for p in search_products("подарочные")] == ["Набор «Праздник»"]


EDITIONS_PAGE = {
    "products": [
        {
            "uid": 880000000001,
            "title": "Икра нерки",
            "sku": "NR",
            "price": "1890.0000",
            "quantity": "",
            "partuids": "[531001]",
            "gallery": "[]",
            "characteristics": [],
            "editions": [
                {"uid": 880000000002, "sku": "NR-250", "price": "4489.0000", "quantity": "3", "Фасовка": "250 г"},
                {"uid": 880000000003, "sku": "NR-500", "price": "8500", "quantity": "0", "Фасовка": "500 г"},
            ],
        }
    ],
    "parts": [{"uid": 531001, "title": "Икра"}],
}


def import_page(payload):
    page = parse_page(payload)
    return import_products(source=Source.TILDA, products=page.products, categories=page.categories)


def test_editions_become_variants_linked_to_their_parent():
    import_page(EDITIONS_PAGE)

    parent = Product.objects.get(external_id="880000000001")
    variants = {v.sku: v for v in parent.variants.all()}
    assert set(variants) == {"NR-250", "NR-500"}
    assert variants["NR-250"].title == "Икра нерки, 250 г"
    assert variants["NR-250"].price == Decimal("4489.00")
    assert variants["NR-500"].in_stock is False
    assert [c.title for c in variants["NR-500"].categories.all()] == ["Икра"]


def test_variant_is_found_by_its_sku_and_by_its_pack_size():
    import_page(EDITIONS_PAGE)

    assert [p.sku for p in search_products("NR-500")] == ["NR-500"]
    assert search_products("икра нерки 500 г")[0].sku == "NR-500"


def test_single_edition_with_the_products_own_uid_is_not_a_variant():
    import_page(
        {
            "products": [
                {
                    "uid": 465371604531,
                    "title": "Сырная доска",
                    "price": "750.0000",
                    "editions": [{"uid": 465371604531, "price": "750.0000", "sku": "", "quantity": ""}],
                }
            ]
        }
    )

    assert Product.objects.count() == 1
    assert Product.objects.get().quantity is None


def test_malformed_product_is_skipped_and_the_rest_of_the_page_kept():
    page = parse_page(
        {
            "products": [
                {"uid": 1, "title": "Икра кеты", "price": "1690.0000"},
                {"uid": 2, "title": "Икра нерки", "price": "дорого"},
                {"uid": 3, "title": "", "price": "100"},
                {"uid": 4, "title": "Крабовые палочки", "price": "190", "gallery": "[not json"},
                "not an object",
            ]
        }
    )

    assert [p.title for p in page.products] == ["Икра кеты"]
    assert {s.ref for s in page.skipped} == {"2", "3", "4", "#5"}
