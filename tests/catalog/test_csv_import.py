"""CSV catalog import: the parser, the upsert by SKU, the command and the admin page."""

from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import translation

from catalog.forms import CSV_MAX_SIZE, CsvImportForm
from catalog.importers.csv_file import CsvFormatError
from catalog.models import Product, Source
from catalog.search import search_products
from catalog.services import import_csv
from tests.factories import make_product

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "fixtures" / "catalog.csv"
IMPORT_URL = "/admin/catalog/product/import-csv/"

GOOD_CSV = """\
sku,title,category,price,quantity,description,url,image
MR-1,"Икра кеты, 100 г",Икра,"1 290",5,Зернистая икра,https://shop.example/mr-1,https://img.example/mr-1.jpg
MR-2,Шпроты в масле,Консервы,"189,90",,,,
MR-3,Креветки тигровые,Креветки,990.00,0,,,
"""
# What GOOD_CSV and the Windows-1251 fixture (the same rows) both store.
GOOD_PRODUCTS = [
    ("MR-1", "Икра кеты, 100 г", Decimal("1290.00"), 5, ["Икра"]),
    ("MR-2", "Шпроты в масле", Decimal("189.90"), None, ["Консервы"]),
    ("MR-3", "Креветки тигровые", Decimal("990.00"), 0, ["Креветки"]),
]

MIXED_CSV = """\
sku,title,price,quantity,url
MR-1,Икра кеты,1290,5,
MR-2,Шпроты,12x,,
MR-3,,100,,
MR-4,Креветки,100,-2,
mr-1,Икра кеты еще раз,1300,,
MR-5,Мидии,100,,ftp://shop.example/mr-5
MR-6,Кальмар,1290,50,,
MR-7,Гребешок,850,,https://shop.example/mr-7
"""
MIXED_SKIPPED = [
    ("3", "unreadable price «12x»"),
    ("4", "no title"),
    ("5", "quantity must be a whole number, 0 or more, not «-2»"),
    ("6", "SKU mr-1 is already on line 2"),
    ("7", "url is not an http(s) link: «ftp://shop.example/mr-5»"),
    ("8", "6 cells instead of 5"),
]


@pytest.fixture(autouse=True)
def _english():
    """Reasons and labels in English, so these tests hold once the Russian translation lands."""
    with translation.override("en"):
        yield


def stored_products():
    products = Product.objects.order_by("sku").prefetch_related("categories")
    return [(p.sku, p.title, p.price, p.quantity, [c.title for c in p.categories.all()]) for p in products]


def skipped(report):
    return [(row.ref, row.reason) for row in report.skipped]


# --- reading files -----------------------------------------------------------


def test_utf8_comma_file_creates_products_with_price_stock_and_category():
    report = import_csv(GOOD_CSV.encode())

    assert report.created == 3
    assert stored_products() == GOOD_PRODUCTS


def test_windows_1251_semicolon_file_from_excel_gives_the_same_products():
    report = import_csv(FIXTURE.read_bytes())

    assert report.created == 3
    assert stored_products() == GOOD_PRODUCTS


def test_file_mixing_utf8_and_windows_1251_lines_reads_both():
    data = b"sku;title;price\n" + "A-1;Икра кеты;1690\n".encode() + "A-2;Икра нерки;1890\n".encode("cp1251")

    report = import_csv(data)

    assert (report.created, report.skipped) == (2, [])
    assert [p[1] for p in stored_products()] == ["Икра кеты", "Икра нерки"]


def test_utf8_file_with_a_bom_reads_the_first_column():
    import_csv("\ufeff".encode() + GOOD_CSV.encode())

    assert stored_products() == GOOD_PRODUCTS


def test_new_products_are_csv_products_keyed_by_sku():
    import_csv(GOOD_CSV.encode())

    product = Product.objects.get(sku="MR-1")
    assert (product.source, product.external_id) == (Source.CSV, "MR-1")


def test_page_and_image_links_are_stored():
    import_csv(GOOD_CSV.encode())

    product = Product.objects.get(sku="MR-1")
    assert (product.url, product.image_url) == ("https://shop.example/mr-1", "https://img.example/mr-1.jpg")


def test_file_without_a_sku_column_is_refused_and_nothing_is_stored():
    with pytest.raises(CsvFormatError, match="sku"):
        import_csv("title,price\nИкра кеты,1290\n".encode())

    assert not Product.objects.exists()


def test_excel_workbook_instead_of_csv_is_refused_with_a_hint():
    with pytest.raises(CsvFormatError, match="Excel"):
        import_csv(b"PK\x03\x04 rest of an xlsx zip")


# --- bad rows ----------------------------------------------------------------


def test_good_rows_of_a_mixed_file_are_stored():
    report = import_csv(MIXED_CSV.encode())

    assert report.created == 2
    assert [p[:3] for p in stored_products()] == [
        ("MR-1", "Икра кеты", Decimal("1290")),
        ("MR-7", "Гребешок", Decimal("850")),
    ]


def test_each_bad_row_is_reported_with_its_line_and_reason():
    report = import_csv(MIXED_CSV.encode())

    assert skipped(report) == MIXED_SKIPPED


def test_unclosed_quote_skips_its_line_and_the_rows_after_it_are_still_read():
    data = 'sku,title,price\nMR-1,"Икра кеты,1290\nMR-2,Шпроты,189\n'.encode()

    report = import_csv(data)

    assert [row.ref for row in report.skipped] == ["2"]
    assert [p[0] for p in stored_products()] == ["MR-2"]


def test_value_too_long_for_the_database_skips_the_row_not_the_file():
    data = f"sku,title\n{'X' * 65},Икра кеты\nMR-2,Шпроты\n".encode()

    report = import_csv(data)

    assert skipped(report) == [("2", "sku is longer than 64 characters")]
    assert [p[0] for p in stored_products()] == ["MR-2"]


# --- updates -----------------------------------------------------------------


def test_reimport_with_changed_prices_updates_those_and_counts_the_rest_unchanged():
    import_csv(GOOD_CSV.encode())

    report = import_csv(GOOD_CSV.replace('"189,90"', "199").encode())

    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    assert Product.objects.get(sku="MR-2").price == Decimal("199")


def test_price_change_is_dated_and_other_prices_keep_their_date():
    import_csv(GOOD_CSV.encode())
    before = dict(Product.objects.values_list("sku", "price_changed_at"))

    import_csv(GOOD_CSV.replace('"189,90"', "199").encode())

    after = dict(Product.objects.values_list("sku", "price_changed_at"))
    assert after["MR-2"] > before["MR-2"]
    assert after["MR-1"] == before["MR-1"]


def test_product_of_another_source_is_updated_by_sku_not_duplicated():
    tilda = make_product("Икра кеты", source=Source.TILDA, sku="MR-1", price=1000)

    report = import_csv("sku,title,price\nMR-1,Икра кеты премиум,1290\n".encode())

    product = Product.objects.get()
    assert (report.created, report.updated) == (0, 1)
    assert (product.pk, product.source) == (tilda.pk, Source.TILDA)
    assert (product.title, product.price) == ("Икра кеты премиум", Decimal("1290"))


def test_sku_matches_whatever_the_letter_case_cyrillic_too():
    existing = make_product("Икра кеты", sku="мр-1")

    import_csv("sku,title\nМР-1,Икра кеты премиум\n".encode())

    assert Product.objects.get().pk == existing.pk


def test_empty_cells_keep_the_stored_values():
    make_product("Икра кеты", sku="MR-1", price=1290, quantity=5, description="Зернистая")

    import_csv("sku,title,price,quantity,description\nMR-1,Икра кеты,,,\n".encode())

    product = Product.objects.get()
    assert (product.price, product.quantity, product.description) == (Decimal("1290"), 5, "Зернистая")


def test_category_cell_makes_that_the_products_category():
    make_product("Икра кеты", sku="MR-1", category="Новинки")

    import_csv("sku,title,category\nMR-1,Икра кеты,Икра\n".encode())

    assert [c.title for c in Product.objects.get().categories.all()] == ["Икра"]


# --- search ------------------------------------------------------------------


def test_imported_products_are_found_by_a_title_word():
    import_csv(GOOD_CSV.encode())

    assert [p.sku for p in search_products("шпроты")] == ["MR-2"]


def test_renamed_product_is_found_by_its_new_title():
    make_product("Старое название", source=Source.TILDA, sku="MR-1")

    import_csv("sku,title\nMR-1,Мидии в раковине\n".encode())

    assert [p.sku for p in search_products("мидии")] == ["MR-1"]


# --- management command ------------------------------------------------------


def test_command_prints_the_counts_and_each_skipped_line(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_bytes(MIXED_CSV.encode())
    out = StringIO()

    call_command("import_csv", str(path), stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "Created: 2, updated: 0, unchanged: 0, skipped: 6."
    assert lines[1:] == [f"line {line}: {reason}" for line, reason in MIXED_SKIPPED]


def test_command_fails_on_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match=r"missing\.csv"):
        call_command("import_csv", str(tmp_path / "missing.csv"), stdout=StringIO())


def test_command_fails_on_a_file_without_required_columns(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_bytes("name;price\nИкра;1290\n".encode())

    with pytest.raises(CommandError, match="sku"):
        call_command("import_csv", str(path), stdout=StringIO())


# --- admin -------------------------------------------------------------------


def test_product_list_links_to_the_import_page(admin_client):
    content = admin_client.get("/admin/catalog/product/").content.decode()

    assert f'href="{IMPORT_URL}"' in content


def test_import_page_shows_the_upload_form(admin_client):
    response = admin_client.get(IMPORT_URL)

    assert response.status_code == 200
    assert 'type="file"' in response.content.decode()


def test_uploaded_file_is_imported_and_the_report_shown(admin_client):
    upload = SimpleUploadedFile("catalog.csv", MIXED_CSV.encode(), content_type="text/csv")

    response = admin_client.post(IMPORT_URL, {"file": upload})

    content = response.content.decode()
    assert response.status_code == 200
    assert '<th scope="row">Products created</th><td>2</td>' in content
    assert "<tr><td>3</td><td>unreadable price «12x»</td></tr>" in content
    assert Product.objects.count() == 2


def test_unreadable_upload_shows_the_reason_on_the_form(admin_client):
    upload = SimpleUploadedFile("catalog.csv", "name;price\nИкра;1290\n".encode())

    response = admin_client.post(IMPORT_URL, {"file": upload})

    assert response.status_code == 200
    assert "The header line has no column sku, title." in response.content.decode()


def test_file_over_the_size_limit_is_refused_with_the_limit_named():
    upload = SimpleUploadedFile("catalog.csv", b"x" * (CSV_MAX_SIZE + 1024 * 1024))

    form = CsvImportForm(files={"file": upload})

    assert form.errors["file"] == ["The file is 21.0\u00a0MB; files up to 20.0\u00a0MB can be imported."]


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(IMPORT_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_add_product_permission_is_refused(client):
    user = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)

    assert client.get(IMPORT_URL).status_code == 403
