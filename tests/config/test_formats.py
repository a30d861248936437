"""Dates as Russian grammar has them where Django's Russian formats do not."""

from datetime import date

from django.utils import formats, translation


def test_a_day_and_month_read_in_the_genitive():
    with translation.override("ru"):
        assert formats.date_format(date(2026, 12, 2), "MONTH_DAY_FORMAT") == "2 декабря"


def test_a_full_date_reads_in_the_genitive():
    with translation.override("ru"):
        assert formats.date_format(date(2026, 12, 2)) == "2 декабря 2026 г."
