"""Issue 14 §3: the catalog admin as a store owner reads it (rendered pages)."""

import re

import pytest
from django.urls import reverse

from catalog.models import Product, ScrapeRun, Source
from tests.factories import make_faq, make_product

pytestmark = pytest.mark.django_db


def object_tools(content: str) -> list[str]:
    """The items of the list's object tools, as HTML."""
    tools = re.search(r'<ul class="object-tools">(.*?)</ul>', content, re.S).group(1)
    return re.findall(r"<li>(.*?)</li>", tools, re.S)


# 2. The product list --------------------------------------------------------


def test_import_buttons_are_object_tools_each_in_its_own_item(admin_client, settings):
    settings.TILDA_STORE_PARTUID = ["123456"]

    items = object_tools(admin_client.get("/admin/catalog/product/").content.decode())

    full, prices, csv_import = items[:3]
    assert 'value="full" class="object-tool"' in full and "Импортировать из Tilda" in full
    assert 'value="prices" class="object-tool"' in prices
    assert "Импорт CSV" in csv_import
    # Django's "button" class is a big form button: it stood out of the tools over the title.
    assert 'class="button"' not in "".join(items)


def test_the_object_tools_sit_under_the_title_not_over_it(admin_client, settings):
    settings.TILDA_STORE_PARTUID = ["123456"]

    content = admin_client.get("/admin/catalog/product/").content.decode()

    # Django floats the tools up beside the title (margin-top: -48px); four of them covered it at 1,366 px.
    rules = " ".join(re.findall(r"#content-main > \.object-tools \{([^}]*)\}", content))
    assert "float: none" in rules and "margin: 0 0" in rules


def test_without_tilda_configured_the_list_says_how_to_set_it_up_instead_of_the_buttons(admin_client, settings):
    settings.TILDA_STORE_PARTUID = []

    content = admin_client.get("/admin/catalog/product/").content.decode()

    assert "scrape_now" not in "".join(object_tools(content)) and 'value="full"' not in content
    hint = re.search(r'<p class="help scrape-hint" id="scrape-hint">(.*?)</p>', content, re.S).group(1)
    assert "TILDA_STORE_PARTUID" in hint
    assert "manage.py scrape --discover" in hint
    assert "Импорт CSV" in "".join(object_tools(content))


def test_a_long_product_title_is_cut_short_in_the_list_and_whole_on_hover(admin_client):
    title = "Икра лососевая зернистая премиум, " * 4
    make_product(title.strip(), sku="MR-1")

    content = admin_client.get("/admin/catalog/product/").content.decode()

    assert f'<span title="{title.strip()}">' in content
    assert ">" + title.strip() + "<" not in content


def test_the_product_list_has_few_enough_columns_for_a_laptop_screen(admin_client):
    make_product("Икра кеты", sku="MR-1")

    content = admin_client.get("/admin/catalog/product/").content.decode()

    header = re.search(r"<thead>(.*?)</thead>", content, re.S).group(1)
    assert header.count("<th") <= 7  # the checkbox and six columns
    assert "Последний раз получен" not in header


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            "refused: the store returned 12 products but the catalog has 120 "
            "(below SCRAPER_MIN_RATIO=0.5); run with --force if that is right",
            "Импорт отклонён: магазин на Tilda вернул товаров: 12, а в каталоге их 120.",
        ),
        ("abandoned: still active after SCRAPER_STALE_AFTER_S (worker stopped?)", "qcluster"),
        ("not queued: Error 111 connecting to redis:6379", "не удалось передать обработчику задач"),
        (
            "TILDA_STORE_PARTUID is not set; `manage.py scrape --discover <shop URL>` finds it",
            "Импорт из Tilda не настроен",
        ),
        ("slice 3: HTTP 502", "Tilda не вернула страницу каталога 3 (HTTP 502)"),
        ("more than 500 pages; raise SCRAPER_MAX_PAGES if the store is that big", "Увеличьте SCRAPER_MAX_PAGES"),
        ("ValueError: boom", "Импорт завершился ошибкой (ValueError: boom)"),
    ],
)
def test_a_failed_import_run_says_why_in_russian_and_what_to_do(admin_client, error, expected):
    run = ScrapeRun.objects.create(mode="full", status=ScrapeRun.Status.FAILED, error=error)

    page = admin_client.get(f"/admin/catalog/scraperun/{run.pk}/change/").content.decode()

    assert expected in page


def test_the_import_runs_list_shows_the_reason_in_russian(admin_client):
    ScrapeRun.objects.create(
        mode="full", status=ScrapeRun.Status.FAILED, error="abandoned: still active after SCRAPER_STALE_AFTER_S"
    )

    content = admin_client.get("/admin/catalog/scraperun/").content.decode()

    assert "Импорт не завершился вовремя" in content
    assert "abandoned:" not in content
    header = re.search(r"<thead>(.*?)</thead>", content, re.S).group(1)
    assert header.count("<th") <= 7  # at 1,366 px the reason is the column that got cut off


def test_the_import_runs_list_sums_up_a_run_in_one_column(admin_client):
    ScrapeRun.objects.create(mode="full", status=ScrapeRun.Status.OK, seen=108, created=3, updated=5, skipped=1)

    content = admin_client.get("/admin/catalog/scraperun/").content.decode()

    assert '<td class="field-figures">получено: 108; новых: 3; изменено: 5; пропущено: 1</td>' in content


# 3. The product page --------------------------------------------------------


def product_post(product, **values):
    """The product page's POST, as the browser sends it (characteristics as name and value rows)."""
    data = {
        "title": product.title,
        "sku": product.sku,
        "currency": product.currency,
        "price": str(product.price or ""),
        "quantity": "" if product.quantity is None else str(product.quantity),
        "is_available": "on",
        "brand": "",
        "unit": "",
    }
    data.update(values)
    return data


def test_characteristics_are_shown_once_as_a_table_of_inputs(admin_client):
    product = make_product("Икра кеты", characteristics={"Фасовка": "250 г", "Страна": "Россия"})

    content = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    assert content.count("Россия") == 1
    assert '<label for="id_characteristics">Характеристики:</label>' in content
    # PostgreSQL's jsonb keeps keys in an order of its own: either may come first.
    assert 'name="characteristics-key" value="Фасовка"' in content
    assert 'name="characteristics-key" value="Страна"' in content
    assert 'aria-label="характеристика" id="id_characteristics"' in content
    assert '<input type="text" name="characteristics-value" value="Россия"' in content
    fieldset = content[content.index('class="fieldset-heading">Характеристики') :]
    assert "<textarea" not in fieldset[: fieldset.index("</fieldset>")]


def test_characteristics_edited_in_the_table_are_saved(admin_client):
    product = make_product("Икра кеты", price=100, quantity=1, characteristics={"Фасовка": "250 г", "Страна": "Россия"})
    data = product_post(product)
    data = {
        **data,
        "characteristics-key": ["Фасовка", "Страна", "Вылов", ""],
        "characteristics-value": ["500 г", "", "2026", "x"],
    }

    response = admin_client.post(f"/admin/catalog/product/{product.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    product.refresh_from_db()
    assert product.characteristics == {"Фасовка": "500 г", "Страна": "", "Вылов": "2026"}


def test_a_characteristic_whose_name_is_cleared_is_removed(admin_client):
    product = make_product("Икра кеты", price=100, quantity=1, characteristics={"Фасовка": "250 г", "Страна": "Россия"})
    data = {
        **product_post(product),
        "characteristics-key": ["Фасовка", ""],
        "characteristics-value": ["250 г", "Россия"],
    }

    admin_client.post(f"/admin/catalog/product/{product.pk}/change/", data)

    product.refresh_from_db()
    assert product.characteristics == {"Фасовка": "250 г"}


def test_the_product_page_previews_the_image(admin_client):
    product = make_product("Икра кеты", image_url="https://static.tildacdn.com/ikra.jpg")

    content = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    assert '<img src="https://static.tildacdn.com/ikra.jpg"' in content
    assert "Предпросмотр изображения:" in content


def test_an_image_address_that_is_not_a_web_one_is_not_put_in_the_page(admin_client):
    product = make_product("Икра кеты")
    Product.objects.filter(pk=product.pk).update(image_url="javascript:alert(1)")

    content = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    assert '<img src="javascript' not in content


def test_currency_is_chosen_from_a_list(admin_client):
    product = make_product("Икра кеты")

    content = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    select = re.search(r'<select name="currency"[^>]*>(.*?)</select>', content, re.S).group(1)
    assert re.findall(r'<option value="(\w+)"', select) == ["RUB", "USD", "EUR", "KZT", "BYN"]
    assert '<option value="RUB" selected>' in select


def test_an_imported_product_warns_that_the_next_import_may_overwrite_edits(admin_client):
    product = make_product("Икра кеты", source=Source.TILDA)

    content = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    note = re.search(r'<li class="warning" id="import-note">(.*?)</li>', content, re.S).group(1)
    assert "Tilda" in note and "Следующий импорт" in note


def test_a_product_entered_by_hand_has_no_import_warning(admin_client):
    product = make_product("Икра кеты")

    content = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    assert 'id="import-note"' not in content


# 4. Counts in Russian grammar -----------------------------------------------


def paginator(content: str) -> str:
    return " ".join(re.search(r'<p class="paginator">(.*?)</p>', content, re.S).group(1).split())


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "1 частый вопрос"), (3, "3 частых вопроса"), (10, "10 частых вопросов"), (21, "21 частый вопрос")],
)
def test_the_faq_list_counts_in_russian_grammar(admin_client, count, expected):
    for n in range(count):
        make_faq(f"Вопрос {n}?")

    assert paginator(admin_client.get("/admin/catalog/faqentry/").content.decode()).startswith(expected)


@pytest.mark.parametrize(("count", "expected"), [(1, "1 товар"), (2, "2 товара"), (5, "5 товаров"), (11, "11 товаров")])
def test_the_product_list_counts_in_russian_grammar(admin_client, count, expected):
    for n in range(count):
        make_product(f"Икра {n}")

    assert paginator(admin_client.get("/admin/catalog/product/").content.decode()).startswith(expected)


def test_the_import_runs_list_counts_in_russian_grammar(admin_client):
    for _ in range(3):
        ScrapeRun.objects.create(mode="full", status=ScrapeRun.Status.OK)

    assert paginator(admin_client.get("/admin/catalog/scraperun/").content.decode()).startswith("3 запуска импорта")


def test_select_all_across_pages_counts_in_russian_grammar(admin_client):
    Product.objects.bulk_create(Product(external_id=f"p{n}", title=f"Икра {n}") for n in range(102))

    content = admin_client.get("/admin/catalog/product/").content.decode()

    assert "Выбрать все: 102 товара" in content


# 5. A CSV import from admin is an import run --------------------------------

CSV = "sku,title,price\nMR-1,Икра кеты,1290\nMR-2,Шпроты,12x\n"


def upload(text: str, name: str = "price.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_a_csv_import_from_admin_is_recorded_as_an_import_run(admin_client, admin_user):
    response = admin_client.post("/admin/catalog/product/import-csv/", {"file": upload(CSV)})

    run = ScrapeRun.objects.get()
    assert (run.source, run.mode, run.status) == (Source.CSV, ScrapeRun.Mode.FULL, ScrapeRun.Status.OK)
    assert (run.seen, run.created, run.skipped) == (2, 1, 1)
    assert run.skipped_details == [{"ref": "3", "reason": "нечитаемая цена «12x»"}]
    assert run.triggered_by == f"admin: {admin_user.get_username()}"
    assert run.finished_at is not None
    assert f'<a href="/admin/catalog/scraperun/{run.pk}/change/">запуск №{run.pk}</a>' in response.content.decode()


def test_an_unreadable_csv_file_is_a_failed_import_run_with_the_reason(admin_client):
    admin_client.post("/admin/catalog/product/import-csv/", {"file": upload("name;cost\nx;1\n")})

    run = ScrapeRun.objects.get()
    assert (run.source, run.status) == (Source.CSV, ScrapeRun.Status.FAILED)
    assert run.error.startswith("csv: price.csv: ")
    page = admin_client.get(f"/admin/catalog/scraperun/{run.pk}/change/").content.decode()
    assert "Файл CSV не прочитан" in page and "Исправьте файл и загрузите его снова" in page


def test_csv_runs_do_not_block_a_tilda_run(admin_client):
    admin_client.post("/admin/catalog/product/import-csv/", {"file": upload(CSV)})

    assert ScrapeRun.objects.create(mode="full", source=Source.TILDA).status == ScrapeRun.Status.QUEUED


def test_searches_with_no_results_link_a_synonym_to_add(admin_client):
    from catalog.services import record_search_miss

    record_search_miss("шримп")

    html = admin_client.get(reverse("admin:catalog_searchmiss_changelist")).content.decode()

    assert "шримп" in html and "phrase=%D1%88%D1%80%D0%B8%D0%BC%D0%BF" in html
