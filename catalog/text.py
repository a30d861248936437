"""Text normalisation shared by indexing and querying, so both sides agree."""

import functools
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


# Pure and called for every word of every FAQ entry and title compared, many
# times a message: each word is stemmed once per process.
@functools.lru_cache(maxsize=50_000)
def crude_stem(word: str) -> str:
    """A prefix shared by the word forms of a Russian noun or adjective.

    Only for the SQLite fallback; PostgreSQL uses its Snowball stemmer.
    """
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


_CONSONANTS = frozenset("бвгджзклмнпрстфхцчшщ")
# Diminutive suffixes people put on a product they ask for nicely ("креветочки",
# "кальмарчик"); the stem under them names the product.
_DIMINUTIVE_SUFFIXES = ("очк", "ечк", "чик")


def other_form_stems(word: str) -> list[str]:
    """Stems that other forms of the word start with, where crude_stem misses them.

    A fleeting "о"/"е" before the last consonant comes and goes between forms
    ("угорь" / "угря", "тунец" / "тунца", "гребешок" / "гребешки"), so the
    stem is given with it taken out or put in; a diminutive suffix is taken
    off ("креветочки" -> "кревет"). Most of these are not words: the caller
    keeps the ones that start a word it knows.
    """
    stem = crude_stem(word)
    found = [stem[: -len(s)] for s in _DIMINUTIVE_SUFFIXES if stem.endswith(s) and len(stem) - len(s) >= 4]
    if len(stem) >= 3 and stem[-1] in _CONSONANTS:
        if stem[-2] in "ое" and stem[-3] in _CONSONANTS and len(stem) >= 4:
            found.append(stem[:-2] + stem[-1])
        elif stem[-2] in _CONSONANTS:
            found += [stem[:-1] + vowel + stem[-1] for vowel in "ое"]
    return [s for s in dict.fromkeys(found) if s != stem and len(s) >= 3]


# --- what a customer typed in the wrong script --------------------------------

# The ЙЦУКЕН layout under a QWERTY keyboard: "rhtdtnrb" is "креветки" typed
# with the layout left on English.
_QWERTY = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`"
_JCUKEN = "йцукенгшщзхъфывапролджэячсмитьбюё"
_LAYOUT = str.maketrans(
    {
        **dict(zip(_QWERTY, _JCUKEN, strict=True)),
        **{q.upper(): j.upper() for q, j in zip(_QWERTY, _JCUKEN, strict=True) if q.isalpha()},
    }
)

# Russian written in Latin letters, as people type it ("krevetki tigrovye",
# "ikra forely"): longest spellings first.
_TRANSLIT = [
    ("shch", "щ"), ("sch", "щ"), ("yo", "ё"), ("zh", "ж"), ("kh", "х"), ("ch", "ч"), ("sh", "ш"), ("ts", "ц"),
    ("yu", "ю"), ("ya", "я"), ("ju", "ю"), ("ja", "я"), ("x", "кс"), ("a", "а"), ("b", "б"), ("v", "в"),
    ("w", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"), ("j", "й"), ("k", "к"), ("q", "к"),
    ("c", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"),
    ("u", "у"), ("f", "ф"), ("h", "х"), ("y", "ы"), ("'", "ь"),
]  # fmt: skip
_TRANSLIT_RE = re.compile("|".join(re.escape(latin) for latin, _ in _TRANSLIT))
_TRANSLIT_MAP = dict(_TRANSLIT)
_LATIN_WORD = re.compile(r"[a-z][a-z'\[\];,.`]*", re.IGNORECASE)


def has_latin_letters(text: str) -> bool:
    return bool(re.search(r"[a-z]", text or "", re.IGNORECASE))


def from_latin_layout(text: str) -> str:
    """The text as it would read had the keyboard been on the Russian layout."""
    return (text or "").translate(_LAYOUT)


def latin_to_cyrillic(text: str) -> str:
    """Latin-letter Russian ("ikra forely") in Cyrillic ("икра форелы"); other characters kept."""
    return _LATIN_WORD.sub(lambda m: _TRANSLIT_RE.sub(lambda t: _TRANSLIT_MAP[t[0]], m[0].lower()), text or "")
