"""Catalog search as a customer experiences it.

Tests marked with the `postgres_only` fixture exercise PostgreSQL's full-text
and trigram search (CI runs them with DATABASE_URL); the rest hold on both
PostgreSQL and the SQLite fallback.
"""

import pytest
from django.core.cache.backends.base import BaseCache

from catalog.search import search_products
from catalog.services import refresh_search_fields
from tests.factories import make_product, make_synonym

pytestmark = pytest.mark.django_db


def titles(results):
    return [p.title for p in results]


def test_word_form_of_the_query_finds_the_product():
    make_product("Икра кеты зернистая, 100 г")
    make_product("Скумбрия холодного копчения")

    assert titles(search_products("икру")) == ["Икра кеты зернистая, 100 г"]


def test_stemming_finds_plural_genitive(postgres_only):
    make_product("Креветки тигровые 16/20 в/м")
    make_product("Кальмар кольца в/м")

    assert titles(search_products("креветок")) == ["Креветки тигровые 16/20 в/м"]


def test_stemming_matches_words_in_the_description(postgres_only):
    make_product("Набор для ухи", description="Головы и хвосты лосося, кусочки трески.")
    make_product("Кальмар кольца в/м")

    assert titles(search_products("треской")) == ["Набор для ухи"]


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("кревтки", "Креветки северные"),
        ("гребишок", "Гребешок морской"),
        ("кальмр", "Кальмар тушка"),
        ("краббы", "Крабы камчатские"),
        ("асьминог", "Осьминог бланшированный"),
    ],
)
def test_typo_still_finds_the_product(typo, expected):
    make_product("Креветки северные")
    make_product("Гребешок морской")
    make_product("Кальмар тушка")
    make_product("Крабы камчатские")
    make_product("Осьминог бланшированный")
    make_product("Мидии в раковине")

    assert titles(search_products(typo))[:1] == [expected]


def test_a_typo_in_one_word_of_several_is_corrected():
    make_product("Скумбрия копчёная")
    make_product("Палтус копчёный")
    make_product("Угорь копчёный")

    assert titles(search_products("копчёный угрь"))[:1] == ["Угорь копчёный"]


def test_a_word_the_catalog_has_is_not_corrected_into_a_neighbour():
    # "кета" is one letter from "сетка": typed right, it finds what it says and nothing else.
    make_product("Кета тушка с/м")
    make_product("Сетка для раков")

    assert titles(search_products("кета")) == ["Кета тушка с/м"]


def test_a_word_found_only_in_descriptions_is_not_corrected():
    make_product("Набор для ухи", description="Головы и хвосты лосося, кусочки трески.")
    make_product("Треска стейк с/м")

    assert titles(search_products("хвосты"))[:1] == ["Набор для ухи"]


def test_partial_word_finds_the_product():
    make_product("Креветки северные")
    make_product("Кальмар кольца в/м")

    assert titles(search_products("крев")) == ["Креветки северные"]


@pytest.mark.parametrize("query", ["семга", "сёмга", "СЁМГА"])
def test_yo_and_ye_are_the_same_letter(query):
    make_product("Сёмга слабосолёная филе")
    make_product("Форель радужная")

    assert titles(search_products(query)) == ["Сёмга слабосолёная филе"]


def test_yo_in_the_query_matches_ye_in_the_title():
    make_product("Скумбрия копченая")

    assert titles(search_products("копчёная скумбрия")) == ["Скумбрия копченая"]


@pytest.mark.parametrize("query", ["MR-00019", "mr-00019", " MR-00019 ", "MR00019", "mr00019", "mr 00019"])
def test_exact_sku_finds_only_its_product(query):
    make_product("Креветки тигровые 21/25", sku="MR-00019", quantity=0)
    make_product("Креветки тигровые 16/20", sku="MR-00018")
    make_product("Икра горбуши", sku="MR-00001")

    assert titles(search_products(query)) == ["Креветки тигровые 21/25"]


def test_in_stock_product_ranks_above_an_equally_relevant_one_out_of_stock():
    make_product("Икра кеты зернистая, 250 г", quantity=0)
    make_product("Икра кеты зернистая, 500 г", quantity=7)

    assert titles(search_products("икра кеты")) == ["Икра кеты зернистая, 500 г", "Икра кеты зернистая, 250 г"]


def test_better_match_out_of_stock_still_ranks_above_a_weaker_one_in_stock():
    make_product("Раки варёные с укропом", quantity=0)
    make_product("Мидии в раковине", quantity=10)

    assert titles(search_products("раки"))[0] == "Раки варёные с укропом"


def test_product_matching_all_words_ranks_first():
    make_product("Икра горбуши, 250 г")
    make_product("Икра нерки, 100 г")
    make_product("Нерка тушка с/м")

    assert titles(search_products("икра нерки"))[0] == "Икра нерки, 100 г"


def test_seeded_synonym_finds_products_by_colloquial_name():
    make_product("Креветки королевские ваннамей")
    make_product("Мидии в раковине")

    assert titles(search_products("шримп")) == ["Креветки королевские ваннамей"]


def test_synonym_added_by_staff_expands_the_query():
    make_product("Осьминог бланшированный")
    make_product("Мидии в раковине")
    make_synonym("Спрут", "осьминог")

    assert titles(search_products("спрут")) == ["Осьминог бланшированный"]


def test_group_synonym_finds_several_kinds_of_products():
    make_product("Креветки северные")
    make_product("Мидии в раковине")
    make_product("Шпроты в масле")

    assert set(titles(search_products("морепродукты"))) == {"Креветки северные", "Мидии в раковине"}


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_gives_no_results(query):
    make_product("Икра кеты")

    assert search_products(query) == []


def test_chatty_question_finds_the_product_it_names():
    make_product("Скумбрия холодного копчения")
    make_product("Икра кеты")

    assert titles(search_products("Есть ли у вас скумбрия в наличии?")) == ["Скумбрия холодного копчения"]


def test_limit_caps_the_number_of_results():
    for n in range(8):
        make_product(f"Икра кеты, упаковка {n}")

    assert len(search_products("икра", limit=3)) == 3


def test_in_stock_only_hides_products_out_of_stock():
    make_product("Икра кеты, 250 г", quantity=0)
    make_product("Икра кеты, 100 г", quantity=3)

    assert titles(search_products("икра", in_stock_only=True)) == ["Икра кеты, 100 г"]


def test_max_price_hides_dearer_products():
    make_product("Икра кеты, 500 г", price=8028)
    make_product("Икра кеты, 100 г", price=1690)

    assert titles(search_products("икра", max_price=2000)) == ["Икра кеты, 100 г"]


def test_unavailable_product_ranks_as_out_of_stock():
    make_product("Икра нерки, 100 г", is_available=False)
    make_product("Икра нерки, 250 г")

    assert titles(search_products("икра нерки")) == ["Икра нерки, 250 г", "Икра нерки, 100 г"]


def test_synonym_phrase_with_a_small_word_still_expands():
    make_product("Имбирь маринованный розовый")
    make_product("Шпроты в масле")

    assert titles(search_products("что-нибудь для суши")) == ["Имбирь маринованный розовый"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rhtdtnrb", "Креветки тигровые 16/20"),  # креветки, the keyboard left on English
        ("rhf,s", "Крабы камчатские"),  # крабы
        ("bRhf ujh,ecb", "Икра горбуши"),  # икра горбуши
    ],
)
def test_a_query_typed_on_the_wrong_keyboard_layout_finds_the_product(query, expected):
    make_product("Креветки тигровые 16/20")
    make_product("Крабы камчатские")
    make_product("Икра горбуши")

    assert titles(search_products(query))[:1] == [expected]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("krevetki tigrovye", "Креветки тигровые 16/20"),
        ("ikra forely", "Икра форели"),
        ("midii v rakovine", "Мидии в раковине"),
    ],
)
def test_a_query_in_latin_letters_finds_the_russian_product(query, expected):
    make_product("Креветки тигровые 16/20")
    make_product("Икра форели")
    make_product("Мидии в раковине")

    assert titles(search_products(query))[:1] == [expected]


def test_latin_letters_without_the_soft_sign_still_find_the_product():
    # "kalmar" reads "калмар", one letter short of "кальмар".
    make_product("Кальмар тушка")

    assert titles(search_products("Kalmar")) == ["Кальмар тушка"]


def test_a_product_named_in_latin_letters_is_found_as_written():
    make_product("Соус Kikkoman соевый")
    make_product("Кикимора")  # what "Kikkoman" would read as in Cyrillic, roughly

    assert titles(search_products("Kikkoman")) == ["Соус Kikkoman соевый"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Здраствуйте! какие у вас есть кревтки?", "Креветки северные"),
        ("добрый день, подскажите пожалуйста есть ли у вас икра форели?", "Икра форели, 100 г"),
        ("а можно креветочки?", "Креветки северные"),
        ("здрасте, кальмар есть?", "Кальмар тушка"),
        ("Приветик! мидии есть?", "Мидии в раковине"),
        ("добрый вечер, а гребешок у вас бывает?", "Гребешок морской"),
        ("Доброго времени суток! Интересует икра форели", "Икра форели, 100 г"),
        ("подскажите пожалуста, есть у вас кальмар", "Кальмар тушка"),
    ],
)
def test_a_chatty_message_finds_what_it_names_and_not_its_greeting(message, expected):
    # Greeting words in titles and descriptions, made first so that a match
    # on the greeting would rank them first: a greeting must not find these.
    make_product("Сельдь «Добрый улов»", description="Хороший вечер с селёдкой. Привет с Камчатки, день за днём.")
    make_product("Набор «Доброе утро»", description="Здравствуйте, утро! Интересный набор, пожалуйста.")
    make_product("Креветки северные")
    make_product("Икра форели, 100 г")
    make_product("Кальмар тушка")
    make_product("Мидии в раковине")
    make_product("Гребешок морской")

    found = titles(search_products(message))

    assert found[:1] == [expected]
    assert not {"Сельдь «Добрый улов»", "Набор «Доброе утро»"} & set(found)


@pytest.mark.parametrize("message", ["Здраствуйте!", "добрый день", "приветик", "здрасте", "Доброго вечера!"])
def test_a_greeting_alone_finds_nothing(message):
    make_product("Креветки северные")
    make_product("Приветливый краб")  # a title one letter from a greeting
    make_product("Здравица, набор")

    assert search_products(message) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("угря копчёного", ["Угорь копчёный"]),
        ("угрём", ["Угорь копчёный"]),
        ("тунца", ["Тунец стейк с/м"]),
        ("осетра", ["Осётр охлаждённый"]),
        ("сома", ["Сом речной"]),
        ("леща", ["Лещ вяленый"]),
        ("гребешки", ["Гребешок морской"]),
    ],
)
def test_irregular_word_forms_find_the_product(query, expected):
    make_product("Угорь копчёный")
    make_product("Тунец стейк с/м")
    make_product("Осётр охлаждённый")
    make_product("Сом речной")
    make_product("Лещ вяленый")
    make_product("Гребешок морской")
    make_product("Кальмар тушка")

    assert titles(search_products(query)) == expected


def test_the_nominative_finds_a_title_with_the_word_in_another_form():
    make_product("Филе угря")
    make_product("Кальмар тушка")

    assert titles(search_products("угорь")) == ["Филе угря"]


@pytest.mark.parametrize("query", ["сёмга", "семга"])
def test_a_correct_word_keeps_finding_what_it_did(query):
    make_product("Сёмга слабосолёная филе")
    make_product("Сельдь слабосолёная")
    make_product("Семечки")

    assert titles(search_products(query)) == ["Сёмга слабосолёная филе"]


def test_a_typo_finds_a_product_added_since_the_last_search():
    make_product("Кальмар тушка")
    assert search_products("кревтки") == []

    make_product("Креветки северные")

    assert titles(search_products("кревтки")) == ["Креветки северные"]


def test_a_typo_finds_a_product_renamed_by_hand_since_the_last_search():
    product = make_product("Кальмар тушка")
    assert search_products("кревтки") == []

    product.title = "Креветки северные"
    product.save()
    refresh_search_fields(product)

    assert titles(search_products("кревтки")) == ["Креветки северные"]


class UnreachableCache(BaseCache):
    """A cache whose server is down: every call fails, as django-redis's do."""

    def __init__(self, location, params):
        super().__init__(params)

    def _fail(self, *args, **kwargs):
        raise ConnectionError("cache server unreachable")

    add = get = set = incr = delete = touch = has_key = clear = _fail


def test_search_and_a_save_by_hand_work_while_the_cache_is_down(settings):
    settings.CACHES = {"default": {"BACKEND": "tests.catalog.test_search.UnreachableCache"}}
    product = make_product("Кальмар тушка")

    product.title = "Креветки северные"
    product.save()
    refresh_search_fields(product)

    assert titles(search_products("кревтки")) == ["Креветки северные"]


def test_the_numbers_asked_for_come_first():
    make_product("Креветки тигровые 16/20 в/м")
    make_product("Креветки тигровые 21/25 с/м без головы")

    assert titles(search_products("креветки тигровые 21/25"))[0] == "Креветки тигровые 21/25 с/м без головы"
