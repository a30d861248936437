"""The words of the catalog's titles, for reading what a customer meant to type.

Search asks it two things: which of the stems that other forms of a query
word may start with ("угря" -> "угор") start a title word, so only those join
the query; and, when the words as typed do not all match, which title word a
mistyped one ("кревтки") is closest to.

The vocabulary is built once per process from every product's search_title
(and the phrases of the search synonyms) and rebuilt when the catalog
changes. A change is seen by a cheap look at the catalog on each use (the
newest product id, the newest import of each source, the number of
synonyms), and by a version number in the Django cache that a product or
synonym saved or deleted one by one bumps (catalog/signals.py): an edit in
admin changes none of the former. So that a process without a shared cache
catches an edit made in another one too, a vocabulary is also rebuilt when
it is older than MAX_AGE_S. A cache that cannot be reached is left alone for
CACHE_RETRY_S: search goes on without the version number meanwhile.
"""

import bisect
import logging
import time
from collections import Counter
from dataclasses import dataclass

import psycopg
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from rapidfuzz import process
from rapidfuzz.distance import OSA

from catalog.models import Product, SearchSynonym, Source
from catalog.text import crude_stem, other_form_stems, words

logger = logging.getLogger(__name__)

VERSION_KEY = "catalog:vocabulary-version"
MAX_AGE_S = 600
CACHE_RETRY_S = 30
# Below this length a word is too short to tell a typo from another word
# ("сом" is one letter from "сок" and from "сон").
MIN_CORRECTED_LENGTH = 4


def max_edits(word: str) -> int:
    """How many typing slips (a letter missed, added, changed, two swapped) a word of this length may hold."""
    if len(word) < MIN_CORRECTED_LENGTH:
        return 0
    return 1 if len(word) < 8 else 2


@dataclass(frozen=True)
class Vocabulary:
    # Title word -> how many products have it in their title.
    product_counts: dict[str, int]
    # The active search synonyms, (phrase, meaning): kept with the words, and
    # as fresh, so a query need not read them from the database each time.
    synonyms: tuple[tuple[str, str], ...] = ()
    # The first words of the titles: what the products are («Минтай», «Креветки»).
    first_words: frozenset[str] = frozenset()

    def __post_init__(self):
        ordered = sorted(self.product_counts)
        choices = [w for w in ordered if len(w) >= 3 and not w.isdigit()]
        by_stem: dict[str, list[str]] = {}
        for word in choices:
            stem = crude_stem(word)
            if len(stem) >= MIN_CORRECTED_LENGTH:
                by_stem.setdefault(stem, []).append(word)
        object.__setattr__(self, "_sorted", ordered)
        object.__setattr__(self, "_choices", choices)
        object.__setattr__(self, "_by_stem", by_stem)
        object.__setattr__(self, "_first_sorted", sorted(self.first_words))

    def starts_a_word(self, prefix: str) -> bool:
        i = bisect.bisect_left(self._sorted, prefix)
        return i < len(self._sorted) and self._sorted[i].startswith(prefix)

    def names_products(self, word: str) -> bool:
        """The word, in some form, is what titles start with: a product («минтая»), not a quality («копчёная»)."""
        stems = (word, crude_stem(word), *other_form_stems(word))
        for stem in stems:
            i = bisect.bisect_left(self._first_sorted, stem)
            if i < len(self._first_sorted) and self._first_sorted[i].startswith(stem):
                return True
        return False

    def knows(self, word: str) -> bool:
        """The word, its stem or the stem of another of its forms starts a title word ("крев", "креветок", "угря")."""
        return any(self.starts_a_word(stem) for stem in (word, crude_stem(word), *other_form_stems(word)))

    def other_forms(self, word: str) -> list[str]:
        """Stems of other forms of the word that start a title word: "угря" -> ["угор"] when a title says "угорь"."""
        return [stem for stem in other_form_stems(word) if self.starts_a_word(stem)]

    def closest(self, word: str) -> tuple[str, int] | None:
        """The title word fewest slips away from the word, and how many; the commonest of equally close ones.

        Stems are compared too, so that a slip in a word whose form no title
        has is still found: "краббы" is two slips from "краба" but its stem
        one from "краб".
        """
        edits = max_edits(word)
        if not edits:
            return None
        found = [
            (title_word, distance)
            for title_word, distance, _ in process.extract(
                word, self._choices, scorer=OSA.distance, score_cutoff=edits, limit=None
            )
        ]
        stem = crude_stem(word)
        if len(stem) >= MIN_CORRECTED_LENGTH:
            for title_stem, distance, _ in process.extract(
                stem, list(self._by_stem), scorer=OSA.distance, score_cutoff=edits, limit=None
            ):
                found += [(title_word, distance) for title_word in self._by_stem[title_stem]]
        if not found:
            return None
        return min(found, key=lambda item: (item[1], -self.product_counts[item[0]], item[0]))


def correction(word: str, vocabulary: Vocabulary, noise_words) -> str | None:
    """What a word the titles do not know was meant to be: a title word, "" for chat filler, None if no idea.

    A slip in a chat word ("пожалуста", "подскажити") is filler, not a
    product: when it is as close to a noise word as to any title word, the
    word is dropped rather than turned into a product word.
    """
    title_word = vocabulary.closest(word)
    edits = max_edits(word)
    if edits:
        noise = process.extractOne(
            word, [w for w in noise_words if len(w) >= MIN_CORRECTED_LENGTH], scorer=OSA.distance, score_cutoff=edits
        )
        if noise and (title_word is None or noise[1] <= title_word[1]):
            return ""
    return title_word[0] if title_word else None


_vocabulary: Vocabulary | None = None
_vocabulary_state: tuple | None = None
_vocabulary_built_at = 0.0


def title_vocabulary() -> Vocabulary:
    """The vocabulary of the catalog as it is now, rebuilt only when the catalog changed."""
    global _vocabulary, _vocabulary_state, _vocabulary_built_at
    state = _catalog_state()
    fresh = time.monotonic() - _vocabulary_built_at < MAX_AGE_S
    if _vocabulary is None or state != _vocabulary_state or not fresh:
        _vocabulary = build_vocabulary()
        _vocabulary_state, _vocabulary_built_at = state, time.monotonic()
    return _vocabulary


def build_vocabulary() -> Vocabulary:
    counts: Counter[str] = Counter()
    first_words: set[str] = set()
    # Many products share a title (sizes and sources aside): the database
    # groups them faster than Python reads them one by one.
    titles = Product.objects.order_by().values_list("search_title").annotate(products=Count("id"))
    for title, products in titles.iterator(chunk_size=5000):
        title_words = words(title)
        if title_words:
            first_words.add(title_words[0])
        for word in set(title_words):
            counts[word] += products
    synonyms = tuple(SearchSynonym.objects.filter(is_active=True).order_by("id").values_list("phrase", "meaning"))
    for phrase, _meaning in synonyms:
        counts.update(w for w in words(phrase) if w not in counts)
    return Vocabulary(dict(counts), synonyms=synonyms, first_words=frozenset(first_words))


def catalog_changed() -> None:
    """Tell every process's vocabulary that titles or synonyms changed."""
    global _vocabulary
    _vocabulary = None  # this process's at once, whatever the cache
    if not _cache_reachable():
        return
    try:
        if cache.add(VERSION_KEY, 1, timeout=None):
            return
        try:
            cache.incr(VERSION_KEY)
        except ValueError:  # evicted between add and incr
            cache.add(VERSION_KEY, 1, timeout=None)
    except Exception as exc:  # a product is saved all the same; other processes see it within MAX_AGE_S
        _cache_failed(exc)


_cache_down_until = 0.0


def _cache_reachable() -> bool:
    return time.monotonic() >= _cache_down_until


def _cache_failed(exc: Exception) -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + CACHE_RETRY_S
    logger.warning("catalog vocabulary: the cache cannot be reached (%s), left alone for %s s", exc, CACHE_RETRY_S)


def _version() -> object:
    if not _cache_reachable():
        return "unknown"
    try:
        return cache.get(VERSION_KEY)
    except Exception as exc:
        _cache_failed(exc)
        return "unknown"


def _catalog_state() -> tuple:
    """What changes when products are imported or synonyms added: each part read off an index, not a scan."""
    products = connection.ops.quote_name(Product._meta.db_table)
    synonyms = connection.ops.quote_name(SearchSynonym._meta.db_table)
    # Every import, of whatever source, stamps the products it saw with
    # last_seen_at; the (source, last_seen_at) index gives each source's
    # newest stamp at once, where a max over all rows would read them all.
    newest_seen = ", ".join(f"(SELECT max(last_seen_at) FROM {products} WHERE source = %s)" for _ in Source.values)
    sql = f"SELECT (SELECT max(id) FROM {products}), {newest_seen}, (SELECT count(*) FROM {synonyms})"
    if connection.vendor == "postgresql":
        # Planning these six sub-selects takes longer than running them, and
        # Django's cursor binds parameters on the client, so PostgreSQL would
        # plan them on every query; the driver's own cursor prepares them
        # once per connection.
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, list(Source.values), prepare=True)
            row = cursor.fetchone()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, list(Source.values))
            row = cursor.fetchone()
    return (_version(), *row)
