"""FAQ matching as customers word their questions."""

import pytest

from catalog.selectors import match_faq
from tests.factories import make_faq

pytestmark = pytest.mark.django_db


@pytest.fixture
def faq():
    return {
        "delivery": make_faq("Как работает доставка?", "Курьером, 390 ₽.", keywords="доставка, курьер"),
        "payment": make_faq("Какие способы оплаты?", "Картой или наличными курьеру.", keywords="оплата, наличные"),
        "hours": make_faq("Часы работы", "Ежедневно с 9 до 21.", keywords="часы, работаете"),
        "wholesale": make_faq(
            "Работаете ли вы с юридическими лицами?", "Поставляем рестораны.", keywords="опт, ресторан"
        ),
    }


def test_a_verb_of_a_keywords_root_finds_its_answer(faq):
    assert match_faq("а за МКАД доставляете?") == [faq["delivery"]]


def test_a_chance_short_prefix_is_no_match(faq):
    assert match_faq("курица есть?") == []


@pytest.mark.parametrize(
    ("question", "expected"),
    [("можно наличными курьеру заплатить?", "payment"), ("работаете с ресторанами?", "wholesale")],
)
def test_between_equal_matches_the_rarer_words_win(faq, question, expected):
    assert match_faq(question) == [faq[expected]]
