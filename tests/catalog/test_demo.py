import pytest
from django.core.management import call_command

from catalog.models import Category, FAQEntry, Product
from catalog.search import search_products

pytestmark = pytest.mark.django_db


def test_load_demo_fills_catalog_and_faq(capsys):
    call_command("load_demo")

    assert Product.objects.count() == 108
    assert Category.objects.count() == 10
    assert FAQEntry.objects.count() == 10
    assert "108 created" in capsys.readouterr().out


def test_demo_product_keeps_its_shop_data():
    call_command("load_demo")

    product = Product.objects.get(sku="MR-00005")
    assert product.title == "Икра кеты зернистая, 250 г"
    assert str(product.price) == "4014.00"
    assert str(product.old_price) == "4616.00"
    assert product.quantity == 0
    assert product.in_stock is False
    assert product.url.startswith("https://shop.example/tproduct/")
    assert product.image_url.endswith("photo.jpg")
    assert product.unit == "250 г"
    assert product.characteristics["Рыба"] == "кета"
    assert [c.title for c in product.categories.all()] == ["Икра"]


def test_load_demo_twice_changes_nothing():
    call_command("load_demo")
    call_command("load_demo")

    assert Product.objects.count() == 108
    assert FAQEntry.objects.count() == 10


def test_load_demo_if_empty_keeps_an_existing_catalog(capsys):
    call_command("load_demo")
    Product.objects.filter(sku="MR-00001").update(price=1)

    call_command("load_demo", "--if-empty")

    assert Product.objects.get(sku="MR-00001").price == 1
    assert "already has products" in capsys.readouterr().out


def test_demo_catalog_is_searchable():
    call_command("load_demo")

    results = search_products("икра", limit=10)

    assert len(results) == 10
    assert all("икр" in p.title.lower() for p in results)
