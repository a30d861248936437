import pytest
from django.contrib.auth import get_user_model

from catalog.models import FAQEntry, Product
from catalog.search import search_products
from tests.factories import make_faq, make_product

pytestmark = pytest.mark.django_db


def changelist_post(product, **values):
    """The POST the product list sends when staff edit price or stock in place."""
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(product.pk),
        "form-0-price": str(product.price or ""),
        "form-0-quantity": "" if product.quantity is None else str(product.quantity),
        "_save": "Сохранить",
    }
    data.update({f"form-0-{k}": v for k, v in values.items()})
    return data


def test_admin_speaks_russian(admin_client):
    make_product("Икра кеты")

    response = admin_client.get("/admin/catalog/product/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "Товары" in content
    assert "В наличии" in content


def test_staff_edit_price_and_stock_in_the_product_list(admin_client):
    product = make_product("Икра кеты", price=1690, quantity=5)

    response = admin_client.post("/admin/catalog/product/", changelist_post(product, price="1490", quantity="0"))

    assert response.status_code == 302
    product.refresh_from_db()
    assert str(product.price) == "1490.00"
    assert product.quantity == 0
    assert product.in_stock is False


def test_product_list_filters_by_stock(admin_client):
    make_product("Икра кеты", quantity=0)
    make_product("Икра нерки", quantity=4)

    content = admin_client.get("/admin/catalog/product/", {"in_stock": "no"}).content.decode()

    assert "Икра кеты" in content
    assert "Икра нерки" not in content


def test_product_list_filters_by_category(admin_client):
    make_product("Икра кеты", category="Икра")
    make_product("Шпроты в масле", category="Консервы")
    category = Product.objects.get(title="Шпроты в масле").categories.get()

    content = admin_client.get("/admin/catalog/product/", {"categories__id__exact": category.pk}).content.decode()

    assert "Шпроты в масле" in content
    assert "Икра кеты" not in content


def test_product_list_searches_by_sku(admin_client):
    make_product("Икра кеты", sku="MR-00004")
    make_product("Икра нерки", sku="MR-00009")

    content = admin_client.get("/admin/catalog/product/", {"q": "MR-00009"}).content.decode()

    assert "Икра нерки" in content
    assert "Икра кеты" not in content


def test_product_page_shows_characteristics_as_a_table(admin_client):
    product = make_product("Икра кеты", characteristics={"Фасовка": "250 г", "Страна": "Россия"})

    content = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    assert 'name="characteristics-key" value="Страна"' in content
    assert 'name="characteristics-value" value="Россия"' in content


def test_renamed_product_is_found_by_its_new_name(admin_client):
    product = make_product("Икра кеты", price=100, quantity=1)
    data = {
        "title": "Икра чавычи",
        "sku": product.sku,
        "currency": "RUB",
        "price": "100",
        "quantity": "1",
        "is_available": "on",
        "characteristics": "{}",
        "sort_order": "0",
        "brand": "",
        "unit": "",
    }

    response = admin_client.post(f"/admin/catalog/product/{product.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert [p.title for p in search_products("чавыча")] == ["Икра чавычи"]


def test_faq_entry_switched_off_in_the_list(admin_client):
    entry = make_faq()
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(entry.pk),
        "form-0-sort_order": "3",
        "_save": "Сохранить",
    }  # an unchecked box is absent from the POST: the entry is switched off

    admin_client.post("/admin/catalog/faqentry/", data)

    entry = FAQEntry.objects.get()
    assert (entry.is_active, entry.sort_order) == (False, 3)


def test_user_who_is_not_staff_cannot_log_in(client):
    get_user_model().objects.create_user("buyer", password="a-long-password-1", is_staff=False)

    response = client.post(
        "/admin/login/?next=/admin/", {"username": "buyer", "password": "a-long-password-1", "next": "/admin/"}
    )

    assert response.status_code == 200  # the login form again, with an error
    assert client.get("/admin/catalog/product/").status_code == 302


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/admin/catalog/product/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.fixture
def sync_tasks(monkeypatch, settings):
    from django_q.conf import Conf

    settings.TILDA_STORE_PARTUID = []  # the queued run fails fast, with no HTTP
    monkeypatch.setattr(Conf, "SYNC", True)


def test_run_now_button_queues_an_import_and_shows_it(admin_client, sync_tasks):
    from catalog.models import ScrapeRun

    response = admin_client.post("/admin/catalog/product/scrape-now/", {"mode": "prices"})

    run = ScrapeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/catalog/scraperun/{run.pk}/change/"
    assert (run.mode, run.triggered_by) == ("prices", "admin: admin")


def test_run_now_while_an_import_runs_says_so(admin_client, sync_tasks):
    from catalog.scrape import queue_scrape_run

    active = queue_scrape_run(mode="full")

    response = admin_client.post("/admin/catalog/product/scrape-now/", {"mode": "full"}, follow=True)

    assert f"#{active.pk}" in response.content.decode()


def test_product_list_has_the_run_now_buttons(admin_client, settings):
    settings.TILDA_STORE_PARTUID = ["123456"]  # the buttons show only with Tilda set up

    content = admin_client.get("/admin/catalog/product/").content.decode()

    assert 'value="full"' in content and 'value="prices"' in content


def test_scrape_runs_are_listed_newest_first_and_read_only(admin_client):
    from catalog.models import ScrapeRun

    ScrapeRun.objects.create(mode="full", status="ok", seen=108)
    newest = ScrapeRun.objects.create(mode="prices", status="failed", error="slice 2: HTTP 500")

    response = admin_client.get("/admin/catalog/scraperun/")
    page = admin_client.get(f"/admin/catalog/scraperun/{newest.pk}/change/").content.decode()

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [newest, ScrapeRun.objects.get(mode="full")]
    assert "slice 2: HTTP 500" in page
    assert 'name="_save"' not in page
