"""Phone numbers as Russian customers write them, into E.164; anything else refused in words."""

import pytest

from orders.phones import InvalidPhone, display_phone, normalize_phone


@pytest.mark.parametrize(
    "written",
    [
        "8 912 345-67-89",
        "+7 (912) 345-67-89",
        "9123456789",
        "79123456789",
        "8(912)3456789",
        "+79123456789",
        "8-912-345-67-89",
        "+7 912 345 67 89",
        " 8 (912) 345.67.89 ",
        "8\u00a0912\u00a0345\u201267\u201289",  # no-break spaces and a figure dash, pasted from a page
    ],
)
def test_russian_numbers_written_every_way_are_one_number(written):
    assert normalize_phone(written) == "+79123456789"


def test_a_moscow_landline_is_russian_too():
    assert normalize_phone("8 (495) 123-45-67") == "+74951234567"


def test_a_foreign_number_keeps_its_country_code():
    assert normalize_phone("+375 29 123-45-67") == "+375291234567"


def test_the_old_exit_prefix_is_read_as_a_plus():
    assert normalize_phone("810 375 29 123 45 67") == "+375291234567"


@pytest.mark.parametrize(
    "written",
    [
        "",
        "   ",
        "позвоните мне",
        "+7 912 ABC-67-89",
        "8 912 345-67-89 доб. 12",
        "12345",
        "8 912 345-67",
        "8 912 345-67-89-00",
        "+7 012 345-67-89",
        "0123456789",
        "+0 123 456 78 90",
        "+1234567",
        "9" * 60,
        "٩١٢٣٤٥٦٧٨٩",  # digits of another script
    ],
)
def test_what_is_not_a_phone_is_refused(written):
    with pytest.raises(InvalidPhone):
        normalize_phone(written)


def test_the_refusal_says_what_a_phone_looks_like():
    with pytest.raises(InvalidPhone) as refused:
        normalize_phone("12345")

    assert "8 912 345-67-89" in str(refused.value)


def test_a_stored_number_reads_in_groups():
    assert display_phone("+79123456789") == "+7 912 345-67-89"
