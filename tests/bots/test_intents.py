"""Reading what a message asks for: a person, asked for in plain words."""

import pytest

from bots.intents import asks_for_contacts, asks_for_operator, complains_not_understood


@pytest.mark.parametrize(
    "text",
    [
        "хочу поговорить с живым человеком",
        "можно с человеком пообщаться?",
        "позовите менеджера",
        "соедините с оператором",
        "Переключите на сотрудника, пожалуйста",
        "Дайте консультанта",
        "Можно связаться с менеджером?",
        "Менеджера!",
        "живой человек есть?",
        "вы бот?",
        "Ты робот или нет",
    ],
)
def test_a_person_asked_for_in_plain_words_is_a_hand_off(text):
    assert asks_for_operator(text)


@pytest.mark.parametrize(
    "text",
    [
        "как с вами связаться?",
        "какой у вас телефон?",
        "не нужен оператор, спасибо",
        "оператора не надо",
        "креветки на 10 человек есть?",
        "на сколько человек хватит 1 кг?",
        "У вас живые раки есть?",
        "Есть креветки?",
    ],
)
def test_a_message_that_names_no_person_to_talk_to_is_not_a_hand_off(text):
    assert not asks_for_operator(text)


@pytest.mark.parametrize(
    ("text", "complains"),
    [
        ("вы меня не понимаете", True),
        ("ты не понял", True),
        ("бесполезно", True),
        ("вы не помогаете", True),
        ("не понимаю, какая лучше?", True),
        ("понятно, спасибо", False),
        ("Есть креветки?", False),
    ],
)
def test_a_complaint_that_the_bot_does_not_understand(text, complains):
    assert complains_not_understood(text) is complains


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("как с вами связаться?", True),
        ("какой у вас телефон?", True),
        ("дайте ваш номер", True),
        ("есть ватсап?", True),
        ("где вы находитесь?", True),
        ("Есть креветки?", False),
        ("доставка по Москве сколько?", False),
    ],
)
def test_a_question_about_reaching_the_store(text, asks):
    assert asks_for_contacts(text) is asks
