"""Phone numbers as customers type them, into E.164 (+79123456789).

A Russian store hears numbers written every way: «8 912 345-67-89»,
«+7 (912) 345-67-89», «9123456789», «79123456789», «8(912)3456789». The
national number is ten digits after the country code 7 (or the trunk prefix 8
Russians dial instead); bare ten digits are taken as Russian too. Another
country's number needs its "+" (or the old «810» exit prefix). Anything else,
letters or an extension included, is refused with InvalidPhone, whose message
can be shown to the customer as it is.
"""

import re

from django.utils.translation import gettext as _

# Separators people put between digit groups.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015().\u00a0]+")
# E.164 allows at most 15 digits; the shortest national numbers in use are 7 digits after a country code.
_E164_DIGITS = (8, 15)
# The first digit of a Russian (and Kazakh, also +7) national number: area and mobile codes start 3 to 9.
_NATIONAL_FIRST = "3456789"
MAX_INPUT_CHARS = 40


class InvalidPhone(ValueError):
    """Not a phone number we can call; str(exc) says so in words for the customer."""


def normalize_phone(raw: str) -> str:
    """The number in E.164 ("+79123456789"), or InvalidPhone."""
    text = str(raw or "").strip()
    if not text:
        raise InvalidPhone(_("No phone number given."))
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidPhone(_("This does not look like a phone number: it is too long."))
    compact = _SEPARATORS.sub("", text)
    plus = compact.startswith("+")
    digits = compact[1:] if plus else compact
    if not digits.isascii() or not digits.isdigit():
        raise InvalidPhone(_("This does not look like a phone number: write digits only, e.g. +7 912 345-67-89."))
    if plus:
        return _international(digits)
    if digits.startswith("810") and len(digits) > 11:
        # The old Russian exit code, dialled before another country's code.
        return _international(digits[3:])
    if len(digits) == 11 and digits[0] in "78":
        return _russian(digits[1:])
    if len(digits) == 10:
        return _russian(digits)
    raise InvalidPhone(
        _("This does not look like a phone number: a Russian number has 10 digits after +7 or 8, e.g. 8 912 345-67-89.")
    )


def _russian(national: str) -> str:
    if national[0] not in _NATIONAL_FIRST:
        message = _("This does not look like a phone number: no Russian number starts with +7 %(digit)s.")
        raise InvalidPhone(message % {"digit": national[0]})
    return f"+7{national}"


def _international(digits: str) -> str:
    if digits.startswith("7"):
        if len(digits) != 11:
            raise InvalidPhone(_("This does not look like a phone number: +7 is followed by 10 digits."))
        return _russian(digits[1:])
    low, high = _E164_DIGITS
    if digits.startswith("0") or not low <= len(digits) <= high:
        raise InvalidPhone(_("This does not look like a phone number: an international number has 8 to 15 digits."))
    return f"+{digits}"


def display_phone(phone: str) -> str:
    """A stored +7 number as people read it: +7 912 345-67-89 (others as they are)."""
    if phone.startswith("+7") and len(phone) == 12:
        n = phone[2:]
        return f"+7 {n[:3]} {n[3:6]}-{n[6:8]}-{n[8:]}"
    return phone
