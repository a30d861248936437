"""How replies look in Telegram: HTML text, long texts in parts, captions, albums, inline buttons."""

import re
from dataclasses import dataclass
from decimal import Decimal

import pytest

from integrations.telegram import formatting
from integrations.telegram.formatting import (
    album,
    bold,
    callback_data,
    caption,
    escape,
    inline_keyboard,
    link,
    message_html,
    product_caption,
    read_callback,
    split_message,
    visible_length,
)

LONG = "Дикая камчатская икра лососёвых рыб, засолка по ГОСТ, без консервантов. "


@dataclass
class Card:
    """What formatting reads from a catalog product."""

    title: str = "Икра кеты, 100 г"
    url: str = "https://shop.example/ikra-kety"
    image_url: str = "https://shop.example/img/ikra-kety.jpg"
    price: Decimal | None = Decimal("1690")
    old_price: Decimal | None = None
    currency: str = "RUB"
    in_stock: bool = True
    quantity: int | None = 5
    short_description: str = ""
    description: str = ""


def balanced(html_text: str) -> bool:
    stack = []
    for closing, name in re.findall(r"<(/?)([a-z-]+)[^>]*>", html_text):
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def no_broken_markup(html_text: str) -> bool:
    """Every "<" starts a whole tag and every "&" a whole entity."""
    without_tags = re.sub(r"<[^<>]*>", "", html_text)
    without_entities = re.sub(r"&(?:amp|lt|gt|quot|#\d+);", "", without_tags)
    return "<" not in without_entities and ">" not in without_entities and "&" not in without_entities


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def visible(html_text: str) -> str:
    text = re.sub(r"<[^<>]*>", "", html_text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


# Text -----------------------------------------------------------------------------


def test_escape_keeps_a_script_tag_as_text():
    assert escape("<script>alert('x')</script>") == "&lt;script&gt;alert('x')&lt;/script&gt;"


def test_escape_escapes_the_ampersand_first():
    assert escape("Вкус & цвет &amp; <b>") == "Вкус &amp; цвет &amp;amp; &lt;b&gt;"


def test_escape_leaves_quotes_alone():
    # Telegram's HTML mode needs only &, < and > as entities outside attributes.
    assert escape("\"Икра\" 'кеты'") == "\"Икра\" 'кеты'"


def test_bold_escapes_its_text():
    assert bold("<i>Икра</i>") == "<b>&lt;i&gt;Икра&lt;/i&gt;</b>"


def test_link_escapes_quotes_and_markup_in_the_address():
    assert link('https://shop.example/?q="><script>&a=1', "Икра") == (
        '<a href="https://shop.example/?q=&quot;&gt;&lt;script&gt;&amp;a=1">Икра</a>'
    )


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "tg://resolve?domain=x", "/ikra-kety", "ftp://shop.example/x", "", "https://"]
)
def test_link_to_anything_but_a_web_page_is_the_plain_label(url):
    assert link(url, "Икра <кеты>") == "Икра &lt;кеты&gt;"


def test_reply_text_is_escaped():
    assert message_html("Цена < 2000 & скидка > 10%") == "Цена &lt; 2000 &amp; скидка &gt; 10%"


def test_a_script_in_a_reply_stays_text():
    assert "<script" not in message_html("Смотрите <script>alert(1)</script>", [Card()])


def test_product_title_is_bold():
    text = message_html("Есть Икра кеты, 100 г по 1 690 ₽.", [Card()])

    assert text == "Есть <b>Икра кеты, 100 г</b> по 1 690 ₽."


def test_product_page_is_a_link():
    text = message_html("Подробнее: https://shop.example/ikra-kety.", [Card()])

    assert text == 'Подробнее: <a href="https://shop.example/ikra-kety">shop.example/ikra-kety</a>.'


def test_a_longer_url_that_starts_with_the_product_page_is_left_alone():
    assert "<a " not in message_html("См. https://shop.example/ikra-kety-big", [Card()])


def test_the_longer_of_two_overlapping_titles_is_bold_once():
    short = Card(title="Икра кеты")
    long = Card(title="Икра кеты, 500 г", url="https://shop.example/ikra-500")

    assert message_html("Есть Икра кеты, 500 г", [short, long]) == "Есть <b>Икра кеты, 500 г</b>"


def test_a_title_with_markup_is_bold_and_escaped():
    assert message_html("Есть Икра <Премиум>", [Card(title="Икра <Премиум>")]) == "Есть <b>Икра &lt;Премиум&gt;</b>"


# Splitting ------------------------------------------------------------------------


def long_answer() -> str:
    """About 5,000 characters in paragraphs, some with a bold product name."""
    paragraphs = [f"<b>Икра кеты, {n}00 г</b> — " + escape(LONG * 3).strip() for n in range(1, 24)]
    return "\n\n".join(paragraphs)


def test_a_short_text_is_one_part():
    assert split_message("Есть <b>икра</b>.") == ["Есть <b>икра</b>."]


def test_an_empty_text_is_no_part():
    assert split_message("  \n\n ") == []


def test_a_5000_character_answer_is_split_within_the_limit():
    text = long_answer()
    assert visible_length(text) > 5000

    parts = split_message(text)

    assert len(parts) == 2
    assert all(visible_length(p) <= 4096 for p in parts)


def test_parts_are_cut_at_paragraph_boundaries():
    text = long_answer()

    parts = split_message(text)

    paragraphs = text.split("\n\n")
    assert [paragraph for part in parts for paragraph in part.split("\n\n")] == paragraphs


def test_a_bold_phrase_cut_in_two_is_closed_and_reopened():
    text = "<b>" + escape(LONG * 80) + "</b>"

    parts = split_message(text)

    assert len(parts) > 1
    assert all(p.startswith("<b>") and p.endswith("</b>") and balanced(p) for p in parts)
    assert not any(p.endswith(" </b>") for p in parts)


def test_a_link_cut_in_two_is_reopened_with_its_address():
    text = '<a href="https://shop.example/x">' + escape(LONG * 80) + "</a>"

    parts = split_message(text)

    assert all(p.startswith('<a href="https://shop.example/x">') and p.endswith("</a>") for p in parts)


def test_a_paragraph_longer_than_the_limit_is_cut_at_line_breaks():
    lines = [escape(LONG) + str(n) for n in range(80)]

    parts = split_message("\n".join(lines), limit=1000)

    assert all(visible_length(p) <= 1000 for p in parts)
    assert [line for part in parts for line in part.split("\n")] == lines


def test_a_line_longer_than_the_limit_is_cut_at_spaces():
    text = escape(LONG * 30)

    parts = split_message(text, limit=500)

    assert all(visible_length(p) <= 500 and not p.endswith(" ") for p in parts)
    assert " ".join(parts) == text.strip()


def test_a_cut_never_falls_inside_a_tag_or_an_entity():
    text = ("&lt;&amp;&gt;" + '<a href="https://shop.example/a?b=1&amp;c=2">x</a>') * 400

    parts = split_message(text, limit=100)

    assert all(no_broken_markup(p) and balanced(p) and visible_length(p) <= 100 for p in parts)
    assert "".join(visible(p) for p in parts) == visible(text)


def test_entities_count_as_one_character():
    assert visible_length("&lt;b&gt; &amp; <b>x</b>") == len("<b> & x")


def test_emoji_count_as_two_utf16_units():
    text = "👍" * 3000  # 3,000 characters, 6,000 UTF-16 units

    parts = split_message(text)

    assert len(parts) == 2
    assert all(utf16_units(p) <= 4096 for p in parts)
    assert "".join(parts) == text


# Captions -------------------------------------------------------------------------


def test_a_short_caption_is_kept_whole():
    assert caption("<b>Икра</b> — 1 690 ₽") == "<b>Икра</b> — 1 690 ₽"


def test_a_long_caption_is_cut_at_a_space_with_an_ellipsis():
    text = "<b>" + escape(LONG * 30) + "</b>"

    cut = caption(text)

    assert visible_length(cut) <= 1024
    assert cut.endswith("</b>…") and balanced(cut)
    assert visible(cut)[:-1] == visible(text)[: len(visible(cut)) - 1]
    assert visible(text)[len(visible(cut)) - 1] == " "  # the cut fell on a word boundary


def test_a_caption_is_cut_at_a_paragraph_when_it_keeps_most_of_it():
    first = escape(LONG * 12)  # ~880 characters
    text = first.strip() + "\n\n" + escape(LONG * 10)

    assert caption(text) == first.strip() + "…"


# Products -------------------------------------------------------------------------


def test_product_caption():
    text = product_caption(Card(old_price=Decimal("1990"), short_description="Дикая икра, засолка по ГОСТ."))

    assert text == (
        "<b>Икра кеты, 100 г</b>\n"
        "1\u00a0690\u00a0₽ (было 1\u00a0990\u00a0₽) · в наличии: 5 шт.\n"
        "Дикая икра, засолка по ГОСТ.\n"
        '<a href="https://shop.example/ikra-kety">shop.example/ikra-kety</a>'
    )


def test_product_caption_without_a_page_has_no_link():
    assert "<a " not in product_caption(Card(url=""))


def test_product_caption_fits_a_caption():
    assert visible_length(product_caption(Card(title="Икра " * 300, description=LONG * 30))) <= 1024


def test_album_of_products_with_pictures():
    products = [Card(image_url=f"https://shop.example/img/{n}.jpg") for n in range(3)]

    media = album(products, "Есть <b>три</b> вида икры.")

    assert media == [
        {
            "type": "photo",
            "media": "https://shop.example/img/0.jpg",
            "caption": "Есть <b>три</b> вида икры.",
            "parse_mode": "HTML",
        },
        {"type": "photo", "media": "https://shop.example/img/1.jpg"},
        {"type": "photo", "media": "https://shop.example/img/2.jpg"},
    ]


def test_album_without_text_has_no_caption():
    media = album([Card(), Card()], "")

    assert all("caption" not in item for item in media)


def test_album_leaves_out_products_without_a_web_picture():
    products = [Card(), Card(image_url=""), Card(image_url="/media/x.jpg"), Card()]

    assert len(album(products, "")) == 2


def test_album_has_at_most_ten_pictures():
    assert len(album([Card(image_url=f"https://shop.example/{n}.jpg") for n in range(14)], "")) == 10


def test_no_album_for_fewer_than_two_pictures():
    assert album([Card(), Card(image_url="")], "Есть икра") is None


def test_album_caption_is_cut_to_a_caption():
    media = album([Card(), Card()], escape(LONG * 30))

    assert visible_length(media[0]["caption"]) <= 1024 and media[0]["caption"].endswith("…")


# Buttons --------------------------------------------------------------------------


def test_callback_data_is_kind_and_value():
    assert callback_data("ask", "Доставка") == "ask:Доставка"


def test_callback_data_without_a_value_is_the_kind():
    assert callback_data("op") == "op"


def test_callback_data_of_long_cyrillic_text_fits_64_bytes():
    data = callback_data("ask", "Сколько стоит доставка икры кеты в Подольск и когда привезёте?")

    assert len(data.encode("utf-8")) <= 64
    assert data == "ask:Сколько стоит доставка икры кеты"


def test_callback_data_is_never_cut_inside_a_character():
    for extra in range(4):
        data = callback_data("ask", "x" * extra + "ё👍" * 30)

        assert len(data.encode("utf-8")) <= 64
        data.encode("utf-8").decode("utf-8")  # whole characters only


@pytest.mark.parametrize("kind", ["", "a:b", "ASK", "ask me", "к"])
def test_callback_kind_must_be_a_short_word(kind):
    with pytest.raises(ValueError):
        callback_data(kind, "x")


def test_read_callback_gives_kind_and_value():
    assert read_callback("ask:Доставка: когда?") == ("ask", "Доставка: когда?")


def test_read_callback_of_the_operator_button():
    assert read_callback(callback_data(formatting.OPERATOR)) == ("op", "")


@pytest.mark.parametrize("data", ["", ":x", "Доставка", "ASK:x", None])
def test_read_callback_of_data_we_did_not_make_is_empty(data):
    assert read_callback(data) == ("", "")


def test_keyboard_shape():
    keyboard = inline_keyboard(products=[Card()], suggestions=["Доставка", "Оплата"])

    assert keyboard == {
        "inline_keyboard": [
            [{"text": "Икра кеты, 100 г", "url": "https://shop.example/ikra-kety"}],
            [{"text": "Доставка", "callback_data": "ask:Доставка"}],
            [{"text": "Оплата", "callback_data": "ask:Оплата"}],
            [{"text": "Позвать оператора", "callback_data": "op"}],
        ]
    }


def test_keyboard_skips_a_suggestion_that_is_the_operator_button():
    keyboard = inline_keyboard(suggestions=["Доставка", "Позвать оператора"])

    assert [row[0]["text"] for row in keyboard["inline_keyboard"]] == ["Доставка", "Позвать оператора"]


def test_keyboard_has_at_most_five_product_buttons():
    products = [Card(title=f"Икра {n}", url=f"https://shop.example/{n}") for n in range(8)]

    keyboard = inline_keyboard(products=products, operator_button=None)

    assert len(keyboard["inline_keyboard"]) == 5


def test_keyboard_has_no_button_for_a_product_without_a_web_page():
    keyboard = inline_keyboard(products=[Card(url="/ikra"), Card(url="javascript:x")], operator_button=None)

    assert keyboard is None


def test_keyboard_button_callback_data_fits_64_bytes():
    keyboard = inline_keyboard(suggestions=["А можно ли заказать икру кеты с доставкой завтра утром?"])

    assert all(
        len(button["callback_data"].encode("utf-8")) <= 64
        for row in keyboard["inline_keyboard"]
        for button in row
        if "callback_data" in button
    )


def test_no_buttons_no_keyboard():
    assert inline_keyboard(operator_button=None) is None


def test_operator_button_alone():
    assert inline_keyboard() == {"inline_keyboard": [[{"text": "Позвать оператора", "callback_data": "op"}]]}


def test_a_long_callback_value_is_cut_at_a_space():
    data = callback_data("ask", "Сколько стоит доставка икры кетовой в Подольск?")

    assert data == "ask:Сколько стоит доставка икры"


def test_a_part_of_misnested_tags_is_still_balanced():
    assert split_message("<b><i>Икра</b> кеты") == ["<b><i>Икра</i></b> кеты"]


def test_a_named_entity_telegram_does_not_know_counts_as_typed():
    assert visible_length("&notit;") == len("&notit;")
