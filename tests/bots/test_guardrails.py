"""The guardrails every reply passes: banned phrases (ё and е, case and spacing folded),
markdown and length."""

import pytest

from bots.guardrails import apply_guardrails, drop_banned, fold, limit_length
from bots.models import DEFAULT_BANNED_PHRASES, AssistantSettings

DECOMPOSED_YO = "е\u0308"  # ё typed as е + combining diaeresis (some keyboards, text pasted from macOS)


@pytest.mark.parametrize(
    ("banned", "reply"),
    [
        ("вернём деньги", "Мы вернем деньги в течение дня."),
        ("вернем деньги", "Мы вернём деньги в течение дня."),
        ("Вернём деньги", "Мы ВЕРНЕМ ДЕНЬГИ в течение дня."),
        ("вернём деньги", f"Мы верн{DECOMPOSED_YO}м деньги в течение дня."),
        (f"верн{DECOMPOSED_YO}м деньги", "Мы вернем деньги в течение дня."),
        ("вернём деньги", "Мы вернём\u00a0деньги в течение дня."),  # a no-break space, as models write them
        ("вернём  деньги", "Мы вернём деньги в течение дня."),
    ],
)
def test_a_banned_phrase_removes_its_sentence_whatever_the_yo_case_or_spacing(banned, reply):
    text, hits = drop_banned(f"Заказ оформлен. {reply} Спасибо!", [banned])

    assert text == "Заказ оформлен. Спасибо!"
    assert hits == [banned]  # as staff wrote it, for the record


def test_fold_reads_yo_as_ye_in_lower_case_with_single_spaces():
    assert fold(f"  ВЕРНЁМ\u00a0\tДеньги, верн{DECOMPOSED_YO}м ") == "вернем деньги, вернем"


def test_a_reply_without_a_banned_phrase_is_kept_whole():
    text, hits = drop_banned("Вернёмся к выбору: икра горбуши или кеты?", ["вернём деньги"])

    assert (text, hits) == ("Вернёмся к выбору: икра горбуши или кеты?", [])


def test_an_empty_banned_line_removes_nothing():
    assert drop_banned("Доставляем ежедневно.", ["", "   "]) == ("Доставляем ежедневно.", [])


def test_apply_guardrails_strips_markdown_drops_banned_and_limits_length():
    text, hits = apply_guardrails(
        "**Икра** горбуши есть. Вернем деньги, если не понравится.\n\n\n\nЗаказывайте!",
        banned=["вернём деньги"],
        max_chars=1000,
    )

    assert (text, hits) == ("Икра горбуши есть.\n\nЗаказывайте!", ["вернём деньги"])
    assert limit_length("Первое предложение. Второе предложение длиннее.", 30) == "Первое предложение."


@pytest.mark.django_db
def test_the_settings_list_holds_each_phrase_once_whatever_its_yo():
    config = AssistantSettings.load()
    config.banned_phrases = "вернём деньги\nвернем деньги\n ВЕРНЕМ ДЕНЬГИ \nпромокод\n\n"

    assert config.banned_phrase_list == ["вернём деньги", "промокод"]
    assert "вернем деньги" not in DEFAULT_BANNED_PHRASES.splitlines()  # "вернём деньги" covers it
