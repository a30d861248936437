"""What the assistant offers instead of a product that is out of stock (catalog.analogs)."""

import pytest

from catalog.analogs import SAME_PRODUCT_SCORE, analogs_for, product_name, same_product_score
from catalog.search import search_products
from tests.factories import make_product

pytestmark = pytest.mark.django_db


def titles(products):
    return [p.title for p in products]


def asked(product):
    """The product as the assistant has it: from the search, categories prefetched."""
    return next(p for p in search_products(product.title, limit=20) if p.id == product.id)


def test_the_same_product_in_another_form_comes_first_even_from_another_category():
    make_product("Треска стейк с/м", category="Рыба свежемороженая")
    make_product("Минтай тушка с/м", category="Рыба свежемороженая")
    tuna = make_product("Тунец стейк с/м", category="Рыба свежемороженая", quantity=0)
    make_product("Тунец охлаждённый стейк", category="Рыба охлаждённая")

    analogs = analogs_for(asked(tuna), "тунец стейк")

    assert titles(analogs)[0] == "Тунец охлаждённый стейк"
    assert set(titles(analogs[1:])) == {"Треска стейк с/м", "Минтай тушка с/м"}


def test_other_sizes_of_the_product_come_before_other_products_of_the_category():
    make_product("Икра горбуши зернистая, 100 г", category="Икра")
    make_product("Икра горбуши зернистая, 250 г", category="Икра")
    make_product("Икра кеты зернистая, 100 г", category="Икра")
    keta = make_product("Икра кеты зернистая, 250 г", category="Икра", quantity=0)
    make_product("Икра кеты зернистая, 500 г", category="Икра")

    # "икра 250 г": the customer's words rank every caviar alike.
    analogs = analogs_for(asked(keta), "икра")

    assert set(titles(analogs[:2])) == {"Икра кеты зернистая, 100 г", "Икра кеты зернистая, 500 г"}
    assert titles(analogs[2:]) == ["Икра горбуши зернистая, 100 г"]


def test_the_search_results_it_is_given_are_ranked_the_same_way():
    make_product("Икра горбуши зернистая, 100 г", category="Икра")
    keta = make_product("Икра кеты зернистая, 250 г", category="Икра", quantity=0)
    make_product("Икра кеты зернистая, 500 г", category="Икра")
    searched = search_products("икра")

    analogs = analogs_for(asked(keta), "икра", candidates=searched)

    assert titles(analogs) == ["Икра кеты зернистая, 500 г", "Икра горбуши зернистая, 100 г"]


def test_a_product_the_request_does_not_name_is_still_found_by_its_own_name():
    tuna = make_product("Тунец стейк с/м", category="Рыба свежемороженая", quantity=0)
    make_product("Треска стейк с/м", category="Рыба свежемороженая")
    make_product("Тунец охлаждённый стейк", category="Рыба охлаждённая")

    # What the customer's words found held nothing like it.
    analogs = analogs_for(asked(tuna), "рыба", candidates=[])

    assert titles(analogs) == ["Тунец охлаждённый стейк", "Треска стейк с/м"]


def test_the_same_product_out_of_stock_is_not_offered():
    make_product("Икра горбуши зернистая, 100 г", category="Икра")
    keta = make_product("Икра кеты зернистая, 250 г", category="Икра", quantity=0)
    make_product("Икра кеты зернистая, 500 г", category="Икра", quantity=0)

    assert titles(analogs_for(asked(keta), "икра кеты")) == ["Икра горбуши зернистая, 100 г"]


def test_a_product_named_by_another_word_of_the_title_is_not_the_same_product():
    keta = make_product("Икра кеты зернистая, 250 г", category="Икра", quantity=0)
    make_product("Кета тушка с/м", category="Рыба свежемороженая")
    make_product("Икра горбуши зернистая, 100 г", category="Икра")

    assert titles(analogs_for(asked(keta), "икра кеты")) == ["Икра горбуши зернистая, 100 г"]


def test_limit_caps_the_analogs():
    keta = make_product("Икра кеты зернистая, 250 г", category="Икра", quantity=0)
    for size in (100, 140, 500, 1000):
        make_product(f"Икра кеты зернистая, {size} г", category="Икра")

    analogs = analogs_for(asked(keta), "икра кеты", limit=2)

    assert len(analogs) == 2
    assert keta.id not in {p.id for p in analogs}


@pytest.mark.parametrize(
    ("title", "other"),
    [
        ("Тунец стейк с/м", "Тунец охлаждённый стейк"),
        ("Икра кеты зернистая, 250 г", "Икра кеты зернистая, 100 г"),
        ("Кальмар тушка неочищенная с/м", "Кальмар кольца в/м"),
        ("Угорь копчёный", "Филе угря"),
        ("Скумбрия холодного копчения", "Скумбрия горячего копчения, 300 г"),
    ],
)
def test_one_product_in_two_forms(title, other):
    assert same_product_score(title, other) >= SAME_PRODUCT_SCORE


@pytest.mark.parametrize(
    ("title", "other"),
    [
        ("Икра кеты зернистая, 250 г", "Икра горбуши зернистая, 250 г"),
        ("Икра кеты зернистая, 250 г", "Кета тушка с/м"),
        ("Краб камчатский фаланги в/м", "Клешни краба стригуна в/м"),
        ("Треска стейк с/м", "Тунец стейк с/м"),
    ],
)
def test_two_products(title, other):
    assert same_product_score(title, other) < SAME_PRODUCT_SCORE


def test_the_name_of_a_product_leaves_out_its_form_size_and_pack():
    assert product_name("Икра кеты зернистая, 250 г") == ["икра", "кеты"]
    assert product_name("Креветки тигровые 21/25 с/м без головы") == ["креветки", "тигровые"]
    assert product_name("Тунец охлаждённый стейк") == ["тунец"]
