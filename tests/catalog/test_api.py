import pytest
from django.utils import timezone

from catalog.models import Source
from tests.factories import make_faq, make_product

pytestmark = pytest.mark.django_db


def test_search_returns_products_with_their_shop_data(client):
    make_product(
        "Икра кеты зернистая, 100 г",
        sku="MR-00004",
        price="1690.00",
        old_price="1990.00",
        quantity=5,
        url="https://shop.example/tproduct/4",
        image_url="https://static.example/4.jpg",
        category="Икра",
    )

    response = client.get("/catalog/search", {"q": "икра"})

    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "икра"
    [item] = body["results"]
    assert item["title"] == "Икра кеты зернистая, 100 г"
    assert item["sku"] == "MR-00004"
    assert item["price"] == "1690.00"
    assert item["old_price"] == "1990.00"
    assert item["currency"] == "RUB"
    assert item["quantity"] == 5
    assert item["in_stock"] is True
    assert item["url"] == "https://shop.example/tproduct/4"
    assert item["image"] == "https://static.example/4.jpg"
    assert item["categories"] == ["Икра"]
    assert set(item) == {
        "id", "external_id", "sku", "title", "price", "old_price", "currency",
        "quantity", "in_stock", "url", "image", "categories",
    }  # fmt: skip


def test_search_reads_a_price_limit_in_the_query_as_the_bot_does(client):
    make_product("Икра горбуши, 100 г", price="790.00")
    make_product("Икра кеты, 250 г", price="2490.00")

    body = client.get("/catalog/search", {"q": "икра до 1000"}).json()

    assert [item["title"] for item in body["results"]] == ["Икра горбуши, 100 г"]
    assert (body["price_min"], body["price_max"]) == (None, "1000.00")


def test_search_reads_a_price_range_and_a_pack_size(client):
    make_product("Креветки тигровые 16/20, 1 кг", price="2190.00")
    make_product("Креветки тигровые 16/20, 500 г", price="1190.00")
    make_product("Креветки северные, 1 кг", price="990.00")

    body = client.get("/catalog/search", {"q": "креветки 1 кг от 1000 до 3000 рублей"}).json()

    assert [item["title"] for item in body["results"]] == ["Креветки тигровые 16/20, 1 кг"]
    assert (body["price_min"], body["price_max"], body["pack_size"]) == ("1000.00", "3000.00", "1 кг")


def test_search_without_a_price_or_size_says_so(client):
    make_product("Икра горбуши, 100 г")

    body = client.get("/catalog/search", {"q": "икра"}).json()

    assert (body["price_min"], body["price_max"], body["pack_size"]) == (None, None, None)


def test_search_reports_out_of_stock(client):
    make_product("Креветки тигровые 21/25", quantity=0)

    [item] = client.get("/catalog/search", {"q": "креветки"}).json()["results"]

    assert item["in_stock"] is False
    assert item["quantity"] == 0


def test_search_limit_caps_results(client):
    for n in range(5):
        make_product(f"Икра горбуши, партия {n}")

    response = client.get("/catalog/search", {"q": "икра", "limit": 2})

    assert len(response.json()["results"]) == 2


@pytest.mark.parametrize("limit", ["0", "51", "-3", "abc", "2.5"])
def test_bad_limit_is_a_400_with_a_message(client, limit):
    response = client.get("/catalog/search", {"q": "икра", "limit": limit})

    assert response.status_code == 400
    body = response.json()
    assert body["error"]
    assert "limit" in body["fields"]


def test_empty_limit_is_a_400_not_the_default(client):
    make_product("Икра кеты")

    response = client.get("/catalog/search?q=икра&limit=")

    assert response.status_code == 400
    assert "limit" in response.json()["fields"]


def test_schema_declares_the_limit_bounds_that_are_enforced(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    [limit] = [p for p in schema["paths"]["/catalog/search"]["get"]["parameters"] if p["name"] == "limit"]

    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}
    assert client.get("/catalog/search", {"q": "икра", "limit": 50}).status_code == 200
    assert client.get("/catalog/search", {"q": "икра", "limit": 1}).status_code == 200


def test_missing_query_is_a_400(client):
    response = client.get("/catalog/search")

    assert response.status_code == 400
    assert "q" in response.json()["fields"]


def test_empty_query_is_an_empty_result_not_an_error(client):
    make_product("Икра кеты")

    response = client.get("/catalog/search", {"q": "  "})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_stats_count_products_stock_categories_and_faq(client):
    make_product("Икра кеты", quantity=3, category="Икра", source=Source.TILDA)
    make_product("Икра нерки", quantity=0, category="Икра", source=Source.TILDA)
    make_product("Шпроты", quantity=None, category="Консервы", source=Source.CSV)
    make_faq()
    make_faq("Как оплатить?", is_active=False)

    body = client.get("/catalog/stats").json()

    assert body["products"] == 3
    assert body["in_stock"] == 2
    assert body["out_of_stock"] == 1
    assert body["categories"] == 2
    assert body["faq"] == 1
    assert body["sources"]["tilda"]["products"] == 2
    assert body["sources"]["csv"]["products"] == 1


def test_stats_give_the_time_of_the_last_import_per_source(client):
    before = timezone.now()
    make_product("Икра кеты", source=Source.TILDA)

    last_import = client.get("/catalog/stats").json()["sources"]["tilda"]["last_import"]

    assert timezone.datetime.fromisoformat(last_import) >= before


def test_stats_of_an_empty_catalog(client):
    body = client.get("/catalog/stats").json()

    assert body["products"] == 0
    assert body["sources"] == {}


def test_openapi_schema_describes_the_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/catalog/search", "/catalog/stats", "/health"} <= set(paths)


def test_swagger_ui_is_served(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_unknown_path_is_a_json_404(client):
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert response.json()["error"] == "not found"


def test_schema_documents_the_bearer_token(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "API_TOKEN from the server's settings",
    }
    assert {"apiToken": []} in schema["paths"]["/catalog/scrape"]["post"]["security"]
