"""Text normalisation shared by indexing and querying, so both sides agree."""

import html
import re

_TAG_RE = re.compile(r"<[^>]+>")
_BLOCK_TAG_RE = re.compile(r"</?(?:p|br|div|li|ul|ol|h[1-6]|tr|td)\b[^>]*>", re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[0-9a-zа-я]+")


def normalize_text(text: str) -> str:
    """Lower case, "ё" as "е", single spaces."""
    return _SPACE_RE.sub(" ", (text or "").lower().replace("ё", "е")).strip()


def strip_html(text: str) -> str:
    """Plain text from the HTML of a product description."""
    if not text:
        return ""
    text = _BLOCK_TAG_RE.sub(" ", text)
    text = _TAG_RE.sub("", text)
    return _SPACE_RE.sub(" ", html.unescape(text)).strip()


def words(text: str) -> list[str]:
    """Words of normalised text: runs of Cyrillic or Latin letters and digits."""
    return _WORD_RE.findall(normalize_text(text))


# Longest first; a stem keeps at least three letters. "ок" covers the fleeting
# vowel of genitive plurals ("креветок" -> "кревет", a prefix of "креветки").
_ENDINGS = sorted(
    """ами ями ого его ому ему ыми ими ых их ая яя ое ее ые ие ой ей ий ый ую юю
    ов ев ах ях ам ям ом ем ок а я о е ы и у ю ь й""".split(),
    key=len,
    reverse=True,
)


def crude_stem(word: str) -> str:
    """A prefix shared by the word forms of a Russian noun or adjective.

    Only for the SQLite fallback; PostgreSQL uses its Snowball stemmer.
    """
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word
