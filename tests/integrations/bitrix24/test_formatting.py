"""How replies look in Bitrix24: BB-code text, product cards, reply buttons."""

import pytest
from django.contrib.auth import get_user_model

from integrations.bitrix24 import formatting
from integrations.reply_text import order_as_in_text
from tests.factories import make_product

pytestmark = pytest.mark.django_db

LONG = "Дикая камчатская икра лососёвых рыб, засолка по ГОСТ, без консервантов. " * 20


def caviar(**fields):
    fields = {"price": 1690, "quantity": 5, "url": "https://shop.example/ikra-kety", **fields}
    return make_product(fields.pop("title", "Икра кеты, 100 г"), **fields)


def card_blocks(attach):
    return [block for block in attach["BLOCKS"] if "DELIMITER" not in block]


# Text -----------------------------------------------------------------------------


def test_product_title_is_bold():
    product = caviar()

    text = formatting.message_text("Есть Икра кеты, 100 г по 1 690 ₽.", [product])

    assert text == "Есть [b]Икра кеты, 100 г[/b] по 1 690 ₽."


def test_product_page_is_a_link():
    product = caviar()

    text = formatting.message_text("Подробнее: https://shop.example/ikra-kety.", [product])

    assert text == "Подробнее: [url=https://shop.example/ikra-kety]shop.example/ikra-kety[/url]."


def test_a_longer_url_that_starts_with_the_product_page_is_left_alone():
    product = caviar()

    text = formatting.message_text("См. https://shop.example/ikra-kety-big", [product])

    assert "[url=" not in text


def test_the_longer_of_two_overlapping_titles_is_bold_once():
    short = caviar(title="Икра кеты")
    long = caviar(title="Икра кеты, 500 г", url="https://shop.example/ikra-500")

    text = formatting.message_text("Есть Икра кеты, 500 г", [short, long])

    assert text == "Есть [b]Икра кеты, 500 г[/b]"


def test_line_breaks_are_kept():
    text = formatting.message_text("Вот что есть:\n1. Икра\n\nЧто-то ещё?", [])

    assert text == "Вот что есть:\n1. Икра\n\nЧто-то ещё?"


def test_bb_code_in_the_text_shows_as_typed():
    text = formatting.message_text("Жмите [send=/operator]сюда[/send] или [URL=https://evil.example]тут[/URL]", [])

    assert "[send=" not in text
    assert "[URL=" not in text
    assert text.replace("\u200b", "") == "Жмите [send=/operator]сюда[/send] или [URL=https://evil.example]тут[/URL]"


def test_operator_reply_is_signed_with_the_first_name():
    operator = get_user_model()(username="anna", first_name="Анна")

    assert formatting.operator_text("Сейчас уточню.", operator) == "[b]Анна[/b]: Сейчас уточню."


def test_operator_without_a_first_name_signs_as_operator():
    operator = get_user_model()(username="admin")

    assert formatting.operator_text("Сейчас уточню.", operator) == "[b]Оператор[/b]: Сейчас уточню."


def test_products_are_ordered_as_the_text_names_them():
    first, second = caviar(title="Икра горбуши", url=""), caviar(title="Икра кеты")

    ordered = order_as_in_text([second, first], "Есть Икра горбуши и Икра кеты")

    assert ordered == [first, second]


# Cards -----------------------------------------------------------------------------


def test_card_links_the_name_to_the_page_with_the_picture():
    product = caviar(image_url="https://shop.example/ikra.jpg", short_description="Крупная икра.")

    head = formatting.product_cards([product])["BLOCKS"][0]["LINK"]

    assert head == {
        "NAME": "Икра кеты, 100 г",
        "LINK": "https://shop.example/ikra-kety",
        "DESC": "Крупная икра.",
        "PREVIEW": "https://shop.example/ikra.jpg",
    }


def test_card_shows_price_and_stock_as_a_grid():
    product = caviar()

    grid = formatting.product_cards([product])["BLOCKS"][1]["GRID"]

    assert [(row["NAME"], row["VALUE"]) for row in grid] == [
        ("Цена", "1\u00a0690\u00a0₽"),
        ("Наличие", "в наличии: 5 шт."),
    ]


def test_card_strikes_out_the_old_price():
    product = caviar(old_price=1990)

    grid = formatting.product_cards([product])["BLOCKS"][1]["GRID"]

    assert grid[0]["VALUE"] == "1\u00a0690\u00a0₽ [s]1\u00a0990\u00a0₽[/s]"


def test_card_of_a_product_without_a_page_names_it_in_bold():
    product = caviar(url="", image_url="https://shop.example/ikra.jpg")

    blocks = formatting.product_cards([product])["BLOCKS"]

    assert blocks[0] == {"MESSAGE": "[b]Икра кеты, 100 г[/b]"}
    assert blocks[1]["IMAGE"][0]["LINK"] == "https://shop.example/ikra.jpg"


def test_cards_are_separated_by_a_delimiter():
    products = [caviar(), caviar(title="Икра горбуши", url="https://shop.example/gorbusha")]

    blocks = formatting.product_cards(products)["BLOCKS"]

    assert [next(iter(block)) for block in blocks] == ["LINK", "GRID", "DELIMITER", "LINK", "GRID"]


def test_a_page_that_is_not_a_web_address_is_left_out_of_the_card():
    product = caviar(url="https://shop.example/ok")
    product.url = "/relative/page"

    blocks = formatting.product_cards([product])["BLOCKS"]

    assert "LINK" not in blocks[0]


def test_over_the_limit_cards_go_from_the_end_first():
    products = [caviar(title=f"Икра {n}", image_url=f"https://shop.example/{n}.jpg") for n in range(3)]
    two_cards = formatting.attach_size(formatting.product_cards(products[:2]))

    attach = formatting.product_cards(products, limit=two_cards)

    heads = [block["LINK"] for block in card_blocks(attach) if "LINK" in block]
    assert [head["NAME"] for head in heads] == ["Икра 0", "Икра 1"]
    assert all("PREVIEW" in head for head in heads)


def test_pictures_go_when_even_one_card_is_too_big():
    product = caviar(image_url="https://shop.example/" + "p" * 500 + ".jpg")
    without_picture = formatting.attach_size(formatting.product_cards([caviar()]))

    attach = formatting.product_cards([product], limit=without_picture)

    assert "PREVIEW" not in attach["BLOCKS"][0]["LINK"]


def test_thirty_products_with_long_descriptions_fit_the_limit():
    products = [
        caviar(title=f"Икра лососёвая №{n}", description=LONG, image_url=f"https://shop.example/{n}.jpg")
        for n in range(30)
    ]

    attach = formatting.product_cards(products)

    assert formatting.attach_size(attach) <= formatting.ATTACH_LIMIT
    assert len([block for block in attach["BLOCKS"] if "LINK" in block]) >= 1


def test_size_counts_cyrillic_and_slashes_the_way_php_encodes_them():
    assert formatting.attach_size({"A": "я/"}) == len('{"A":"\\u044f\\/"}')


# Keyboard --------------------------------------------------------------------------


def test_keyboard_offers_follow_ups_and_an_operator():
    buttons = formatting.reply_keyboard(["Доставка", "Оплата", "Позвать оператора"])["BUTTONS"]

    assert [(b.get("TEXT"), b.get("COMMAND"), b.get("COMMAND_PARAMS")) for b in buttons] == [
        ("Доставка", "ask", "Доставка"),
        ("Оплата", "ask", "Оплата"),
        (None, None, None),  # NEWLINE
        ("Позвать оператора", "operator", None),
    ]


def test_the_phone_sharing_suggestion_is_no_button_in_bitrix24():
    buttons = formatting.reply_keyboard(["Поделиться номером", "Доставка"])["BUTTONS"]

    assert [b["TEXT"] for b in buttons if "TEXT" in b] == ["Доставка", "Позвать оператора"]
