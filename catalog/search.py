"""Catalog search: what a Russian-speaking customer means, not just what they typed.

One entry point, `search_products`, used by the API and the assistant.

On PostgreSQL:
1. an exact SKU comes first;
2. full-text search with the `russian` configuration over a weighted vector
   (title A, the rest B) kept by a trigger, with prefix matching so partial
   words and fleeting vowels ("креветок") still match; products matching every
   query word outrank those matching some;
3. if no product matches every word, not even with the words read again as
   below, pg_trgm word similarity on the title fills up the list, which
   catches typos the vocabulary cannot correct.
In-stock products get a bonus that decides between close scores only.
A query matching thousands of products ranks the first few hundred matches
(in table order) of each stage, not all of them; see FTS_CANDIDATES.

On SQLite (the embedded default) a simpler substring search over normalised
text with crude stems handles case, "ё"/"е" and common word forms.

On both, the query is read the same way first: greetings, politeness and
chat filler go (NOISE_WORDS); synonyms that staff edit in admin expand it,
each word or phrase becoming a group of alternatives; and a word whose other
forms start with another stem ("угря" / "угорь", "тунца" / "тунец",
"креветочки") also looks for that stem when a title word starts with it
(catalog.vocabulary). When no product matches every word, the query is tried
as typed on the Russian layout and in Cyrillic letters if it has Latin ones,
then with each word the titles do not know replaced by the title word it is
closest to ("кревтки" -> "креветки", "угрь" -> "угорь") or dropped as a
slip in a chat word ("пожалуста"). On PostgreSQL that comes before the
trigram stage rather than after it: a typo next to a word that matches
fills the list with what that word finds ("копчёный угрь": every smoked
product), so the trigram stage never ran for it; a corrected word is matched
and ranked as precisely as one typed right; and the trigram scan, the
slowest stage when little looks like the words, only runs for what the
vocabulary cannot correct.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import StrIndex, Upper
from django.db.models.lookups import GreaterThan

from catalog.models import Product, SearchSynonym
from catalog.text import crude_stem, from_latin_layout, has_latin_letters, latin_to_cyrillic, normalize_text, words
from catalog.vocabulary import Vocabulary, correction, max_edits, title_vocabulary

MAX_LIMIT = 50

# Words that carry no product meaning in a shop chat; dropped so they neither
# block an all-words match nor dilute trigram similarity. Greetings are here
# as people type them ("здраствуйте", "здрасте"): the bot strips a greeting
# it knows, the search sees the rest.
NOISE_WORDS = frozenset(
    """
    а без бы в вам вас ваш ваши вот вы да для до если есть еще же за и из или
    к как какая какие какой каких ли мне можно мы на над не нет но ну о об от
    по под пожалуйста подскажите посоветуйте при про с со так там то у уже хочу
    хочется хотел хотела хотим что чтобы это эти я купить заказать нужен нужна
    нужно нужны наличии наличие налич есть цена цены стоит стоимость сколько
    почем товар товары продаете продаются имеется имеются рублей руб р шт
    здравствуйте здраствуйте здравствуй здраствуй здрасте здрасьте здрасти
    привет приветик приветики приветствую салют хай алло спасибо благодарю
    пожалуста пожалуйсто плиз плз подскажи подскажете скажите скажи посоветуете
    посоветуй порекомендуете порекомендуйте интересует интересуют интересно
    бывает бывают будет будут появится появятся можете могу могли хотелось
    хотите хотели нибудь тоже также вообще ищу ищем
    """.split()
)

# Greetings of two or three words, some of whose words may name a product
# elsewhere ("Рыбный день"): taken out as phrases, not as words.
_GREETING_PHRASES = re.compile(
    r"\bдобр(?:ый|ое|ого|ой|ых)\s+(?:день|дня|вечер|вечера|утро|утра|ночи|времени|время)(?:\s+суток)?\b"
)

# Scores add up: ts_rank (0..1, title words weigh most), a bonus for
# matching every query word, a smaller one for matching them as whole words
# rather than as prefixes ("раки" over "раковина"), and an in-stock bonus
# small enough to decide between close scores only.
ALL_WORDS_BONUS = 1.0
WHOLE_WORDS_BONUS = 0.3
IN_STOCK_BONUS = 0.05


@dataclass(frozen=True)
class ParsedQuery:
    """A query as groups of alternatives; each alternative is a list of words.

    "шримп тигровые" with the synonym шримп → креветки becomes
    [[["шримп"], ["креветки"]], [["тигровые"]]].
    """

    text: str
    groups: tuple[tuple[tuple[str, ...], ...], ...]

    @property
    def plain_words(self) -> list[str]:
        return [w for group in self.groups for w in group[0]]


# A query is a customer's words: past this many distinct ones, more only cost
# (every word joins the full-text and trigram queries).
MAX_QUERY_WORDS = 24
# Only this much of a very long text is read for its words.
MAX_QUERY_CHARS = 2000


def parse_query(query: str, vocabulary: Vocabulary | None = None) -> ParsedQuery:
    """The query's words in groups of alternatives; with a vocabulary, a word's other forms join its group."""
    text = _GREETING_PHRASES.sub(" ", normalize_text(query[:MAX_QUERY_CHARS]))
    tokens = list(dict.fromkeys(words(text)))[:MAX_QUERY_WORDS]
    if not any(w not in NOISE_WORDS for w in tokens):
        return ParsedQuery(text=text, groups=())
    # Synonyms are matched before noise words go, so a phrase such as
    # "для суши" is still found.
    synonyms = _synonyms_in(" ".join(tokens), vocabulary)
    groups: list[tuple[tuple[str, ...], ...]] = []
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase_words, alternatives in synonyms:
            n = len(phrase_words)
            if tuple(tokens[i : i + n]) == phrase_words:
                group = [phrase_words] + [tuple(words(alt)) for alt in alternatives]
                groups.append(tuple(alt for alt in group if alt))
                kept += phrase_words
                i += n
                break
        else:
            if tokens[i] not in NOISE_WORDS:
                other_forms = vocabulary.other_forms(tokens[i]) if vocabulary else []
                groups.append(tuple((w,) for w in [tokens[i], *other_forms]))
                kept.append(tokens[i])
            i += 1
    return ParsedQuery(text=" ".join(kept), groups=tuple(groups))


def corrected_query(parsed: ParsedQuery, vocabulary: Vocabulary) -> str | None:
    """The query's words with the ones the titles do not know as they were meant; None if none changes.

    Numbers and short words stay as typed; so does a word nothing in the
    titles is close to (it may be in descriptions).
    """
    if not parsed.groups:
        return None  # nothing but chat: nothing to correct
    changed = False
    kept = []
    for word in parsed.text.split():
        meant = None
        if max_edits(word) and not word.isdigit() and not vocabulary.knows(word):
            meant = correction(word, vocabulary, NOISE_WORDS)
        if meant is None:
            kept.append(word)
        else:
            changed = True
            if meant:
                kept.append(meant)
    return " ".join(kept) if changed else None


def _synonyms_in(text: str, vocabulary: Vocabulary | None = None) -> list[tuple[tuple[str, ...], list[str]]]:
    """Active synonyms whose phrase occurs in the text, longest phrase first (the vocabulary's copy when given)."""
    if vocabulary is not None:
        rows = [(phrase, meaning) for phrase, meaning in vocabulary.synonyms if phrase in f" {text} "]
    else:
        rows = (
            SearchSynonym.objects.filter(is_active=True)
            .annotate(query_text=Value(f" {text} "))
            .filter(query_text__contains=F("phrase"))
            .values_list("phrase", "meaning")
        )
    found = []
    for phrase, meaning in rows:
        phrase_words = tuple(words(phrase))
        if phrase_words and f" {' '.join(phrase_words)} " in f" {text} ":
            found.append((phrase_words, [m.strip() for m in meaning.split(",") if m.strip()]))
    found.sort(key=lambda item: len(item[0]), reverse=True)
    return found


def search_products(
    query: str,
    *,
    limit: int = 10,
    in_stock_only: bool = False,
    max_price: Decimal | None = None,
    enough: int | None = None,
) -> list[Product]:
    """Products for a customer's query, best first, with categories prefetched.

    `enough`: when at least this many match every word, the list is not
    filled up to `limit` with products matching some of them (a caller that
    looks through many candidates for a pack size or a budget needs the
    close ones, and filling costs the most).
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    if not query or not query.strip():
        return []
    filters = Q()
    if in_stock_only:
        filters &= Q(in_stock=True)
    if max_price is not None:
        filters &= Q(price__lte=max_price)

    # A query that is exactly a SKU means that product and nothing else. A
    # SKU has a digit; a query without one is not looked up as one.
    ids: list[int] = []
    if any(ch.isdigit() for ch in query[:MAX_QUERY_CHARS]):
        ids = list(
            Product.objects.annotate(sku_upper=Upper("sku"))
            .filter(filters, sku_upper__in=_sku_spellings(query))
            .exclude(sku="")
            .order_by("-in_stock", "id")
            .values_list("id", flat=True)[:limit]
        )
    if not ids:
        ids = _word_search_ids(query, limit=limit, filters=filters, enough=enough)
    products = Product.objects.filter(id__in=ids).prefetch_related("categories")
    by_id = {p.id: p for p in products}
    return _numbers_asked_first(query, [by_id[i] for i in ids if i in by_id])


# A number standing alone ("21/25", "№3"), not part of a word ("слово0").
_NUMBER_RE = re.compile(r"(?<!\w)\d+(?!\w)")


def _numbers_asked_first(query: str, products: list[Product]) -> list[Product]:
    """Products whose title has the numbers of the query first, the ranking kept otherwise.

    A caliber or a size ("креветки тигровые 21/25", "краб №3") tells products
    apart that share every word; PostgreSQL's parser keeps "21/25" as one
    token, which neither "21" nor "25" matches, so full-text ranking cannot
    see it.
    """
    asked = set(_NUMBER_RE.findall(query[:MAX_QUERY_CHARS]))
    if not asked:
        return products

    def hits(product: Product) -> int:
        return len(asked & set(_NUMBER_RE.findall(product.title)))

    return sorted(products, key=lambda p: -hits(p))


@dataclass(frozen=True)
class _Found:
    ids: list[int]
    complete: bool  # the first product matches every word group of the query


def _word_search_ids(query: str, *, limit: int, filters: Q, enough: int | None = None) -> list[int]:
    """Products for the query's words; when none matches them all, for the words as they were meant.

    Only a query whose words do not all match is read again, so a precise
    query is never changed; a reading replaces the words as typed only when
    it does match them all, or when the words as typed found nothing.
    """
    vocabulary = title_vocabulary()
    texts = [query]
    if has_latin_letters(query):
        # Typed with the keyboard left on English ("rhtdtnrb"), or in Latin
        # letters ("krevetki"); a product with a Latin name matches as written
        # and is never read as these.
        texts += [from_latin_layout(query), latin_to_cyrillic(query)]
    texts = list(dict.fromkeys(texts))
    best = _Found([], complete=False)
    readings = []
    for text in texts:
        parsed = parse_query(text, vocabulary)
        readings.append(parsed)
        if text != query and not any(vocabulary.knows(w) for w in parsed.plain_words):
            # A guess at the letters meant that names nothing in the titles
            # ("kalmar" read as "калмар"): only its correction is worth a
            # search, and on SQLite a search that finds nothing reads every row.
            continue
        found = _matching(parsed, limit=limit, filters=filters, enough=enough)
        if found.complete:
            return found.ids
        best = best if best.ids else found
    for parsed in readings:
        corrected = corrected_query(parsed, vocabulary)
        if corrected is None:
            continue
        found = _matching(parse_query(corrected, vocabulary), limit=limit, filters=filters, enough=enough)
        if found.complete:
            return found.ids
        best = best if best.ids else found
    ids = list(best.ids)
    if connection.vendor == "postgresql" and len(ids) < min(limit, enough or limit):
        # Titles that look like the words, for a query no reading matched
        # whole: last, as the trigram scan costs the most when little is
        # like the words, and a corrected word is matched more precisely.
        where = _filter_sql(filters)
        for parsed in readings:
            if parsed.groups:
                more = _trigram_ids(parsed, limit=limit - len(ids), exclude=ids, where=where)
                ids += more
                if more:
                    break
    return ids


def _matching(parsed: ParsedQuery, *, limit: int, filters: Q, enough: int | None = None) -> _Found:
    if not parsed.groups:
        return _Found([], complete=False)
    if connection.vendor == "postgresql":
        return _postgres_ids(parsed, limit=limit, exclude=[], filters=filters, enough=enough)
    return _fallback_ids(parsed, limit=limit, exclude=[], filters=filters)


_SKU_SHAPE = re.compile(r"^([A-Za-z]{1,6})[-\s]?(\d{2,})$")


def _sku_spellings(query: str) -> list[str]:
    """A SKU as typed, and with or without the dash between its letters and digits ("MR00041", "mr-00041")."""
    typed = query.strip().upper()
    match = _SKU_SHAPE.match(typed)
    if not match:
        return [typed]
    return list(dict.fromkeys([typed, f"{match[1]}-{match[2]}", f"{match[1]}{match[2]}"]))


# --- PostgreSQL -------------------------------------------------------------


def _tsquery_word(word: str, prefix: bool) -> str:
    # Numbers and one-letter words ("500 г") only match whole.
    if not prefix or word.isdigit() or len(word) < 3:
        return word
    # A prefix covers partial words; for long words a shorter prefix also
    # covers a fleeting vowel ("креветок" -> "кревет:*" matches "креветк").
    if len(word) >= 7:
        return f"({word}:* | {word[:-2]}:*)"
    return f"{word}:*"


def _tsquery(parsed: ParsedQuery, operator: str, *, prefix: bool = True) -> str:
    def alternative(words_: tuple[str, ...]) -> str:
        return "(" + " & ".join(_tsquery_word(w, prefix) for w in words_) + ")"

    groups = ["(" + " | ".join(alternative(a) for a in g) + ")" for g in parsed.groups]
    return f" {operator} ".join(groups)


def _filter_sql(filters: Q) -> tuple[str, list]:
    """The filters as a condition on catalog_product itself, not an id IN (subquery)."""
    if not filters:
        return "", []
    query = Product.objects.filter(filters).query
    sql, params = query.where.as_sql(query.get_compiler(connection=connection), connection)
    return f" AND {sql}", list(params)


# Ranking reads and scores every candidate, so a broad word ("икра", in every
# sixth product of a large catalog) would rank thousands of rows per query.
# Each stage therefore ranks at most this many candidates, shared between the
# query words when it looks for them one by one: the first matches in table
# order, all of them matching, best of them first.
#
# Each query text goes into a stage's WHERE as a sub-select, `(SELECT ...)`,
# which the planner cannot estimate. It then takes the GIN index and stops
# after the candidates, instead of a sequential scan that it expects to stop
# early: a scan that reads the whole table when the words are rarer than
# their statistics say, and that PostgreSQL starts wherever another scan of
# a large table is (synchronised scans), so its candidates change from call
# to call.
FTS_CANDIDATES = 500
TRIGRAM_CANDIDATES = 100


def _postgres_ids(
    parsed: ParsedQuery, *, limit: int, exclude: list[int], filters: Q, enough: int | None = None
) -> _Found:
    where = _filter_sql(filters)
    wanted = limit - len(exclude)
    scoring = (_tsquery(parsed, "|"), _tsquery(parsed, "&"), _tsquery(parsed, "&", prefix=False))
    matching = _matching_tsqueries(parsed)
    ids: list[int] = []
    # Products matching every query word outrank the rest (ALL_WORDS_BONUS
    # exceeds any ts_rank), so the rest only matter when these are too few.
    if matching.every_word:
        every_word = ([matching.every_word], matching.sql)
        ids = _fts_ids(scoring, every_word, limit=wanted, exclude=exclude, where=where)
    complete = bool(ids)
    if len(ids) < min(wanted, enough or wanted) and len(matching.each_word) > 1:
        # Fewer than wanted means that was all of them. Now products matching
        # some of the words: candidates for each word, so that a rare word is
        # not crowded out by a common one ("камбала" by "г").
        each_word = (matching.each_word, matching.sql)
        ids += _fts_ids(scoring, each_word, limit=wanted - len(ids), exclude=exclude + ids, where=where)
    return _Found(ids, complete)


# A word's lexemes under the `russian` configuration never change: each is
# asked of PostgreSQL once per process, not on every query (a round trip each).
_LEXEMES: dict[str, list[str]] = {}
_LEXEMES_KEPT = 20_000


def _lexemes(forms: set[str]) -> dict[str, list[str]]:
    missing = sorted(forms - _LEXEMES.keys())
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT w, tsvector_to_array(to_tsvector('russian', w)) FROM unnest(%s::text[]) AS w", [missing]
            )
            found = dict(cursor.fetchall())
        if len(_LEXEMES) + len(found) > _LEXEMES_KEPT:
            _LEXEMES.clear()  # customers' typos are endless; the words of the catalog come back at once
        _LEXEMES.update(found)
        return {form: _LEXEMES.get(form, found.get(form, [])) for form in forms}
    return {form: _LEXEMES[form] for form in forms}


@dataclass(frozen=True)
class _Matching:
    """What selects the candidates: tsqueries and how they are written in SQL."""

    every_word: str  # products matching all word groups; "" if no word has a lexeme
    each_word: list[str]  # products matching one word group, for each group with lexemes
    sql: str = "%s::tsquery"


def _matching_tsqueries(parsed: ParsedQuery) -> _Matching:
    """The products `_tsquery(parsed, "&")` and its groups match, as cheaper tsqueries.

    A long word is looked for by two prefixes, "креветок" as креветок:* and
    кревет:*. Both stems are prefixes of the word (the Snowball stemmer only
    cuts endings), so the shorter one matches everything the longer does, and
    the GIN index need not collect the longer one's rows as well: for a
    synonym group of eight long words that halves the index work. Scoring
    keeps the original tsqueries, so ranks do not change.
    """

    def forms(word: str) -> tuple[str, ...]:
        # As _tsquery_word writes the word: whole, or as one or two prefixes.
        return (word, word[:-2]) if len(word) >= 7 and not word.isdigit() else (word,)

    all_forms = {f for group in parsed.groups for alternative in group for w in alternative for f in forms(w)}
    lexemes = _lexemes(all_forms)
    if any(len(found) > 1 for found in lexemes.values()):
        # A word the parser splits: leave it to to_tsquery.
        groups = [_tsquery(ParsedQuery(parsed.text, (group,)), "|") for group in parsed.groups]
        return _Matching(_tsquery(parsed, "&"), groups, sql="to_tsquery('russian', %s)")

    def word_terms(word: str) -> set[tuple[str, bool]]:
        """(lexeme, is a prefix) for the forms of a word."""
        is_prefix = not (word.isdigit() or len(word) < 3)
        return {(lexeme, is_prefix) for form in forms(word) for lexeme in lexemes[form]}

    def any_of(terms: set[tuple[str, bool]]) -> str:
        # 'кревет':* covers 'креветк':* and 'креветок': leave those out.
        prefixes = {lexeme for lexeme, is_prefix in terms if is_prefix}

        def covered(lexeme: str, is_prefix: bool) -> bool:
            return any(lexeme.startswith(p) and not (is_prefix and lexeme == p) for p in prefixes)

        kept = sorted(
            f"'{lexeme}'{':*' if is_prefix else ''}" for lexeme, is_prefix in terms if not covered(lexeme, is_prefix)
        )
        return " | ".join(kept)

    def all_of(parts) -> str:
        # to_tsquery drops stop words ("без") and the operators around them; so does this.
        return " & ".join(f"({part})" for part in parts if part)

    groups = []
    for group in parsed.groups:
        if all(len(alternative) == 1 for alternative in group):
            # A word, or a synonym for a list of words: all alternatives at once.
            groups.append(any_of({term for (word,) in group for term in word_terms(word)}))
        else:
            alternatives = (all_of(any_of(word_terms(w)) for w in alternative) for alternative in group)
            groups.append(" | ".join(f"({a})" for a in alternatives if a))
    return _Matching(every_word=all_of(groups), each_word=[g for g in groups if g])


def _fts_ids(
    scoring: tuple[str, str, str],
    matching: tuple[list[str], str],
    *,
    limit: int,
    exclude: list[int],
    where: tuple[str, list],
) -> list[int]:
    """The best `limit` products among the first candidates of each `matching` tsquery."""
    loose, strict, whole = scoring
    tsqueries, tsquery_sql = matching
    where_sql, where_params = where
    branch = f"""(
        SELECT id,
               ts_rank(search_vector, to_tsquery('russian', %s))
               + CASE WHEN search_vector @@ to_tsquery('russian', %s) THEN {ALL_WORDS_BONUS} ELSE 0 END
               + CASE WHEN search_vector @@ to_tsquery('russian', %s) THEN {WHOLE_WORDS_BONUS} ELSE 0 END
               + CASE WHEN in_stock THEN {IN_STOCK_BONUS} ELSE 0 END AS score
        FROM catalog_product
        WHERE search_vector @@ (SELECT {tsquery_sql})
          AND NOT (id = ANY(%s)){where_sql}
        LIMIT {max(FTS_CANDIDATES // len(tsqueries), 100)}
    )"""
    branches = " UNION ALL ".join([branch] * len(tsqueries))
    sql = f"SELECT id FROM ({branches}) c GROUP BY id ORDER BY max(score) DESC, id LIMIT %s"
    params: list = []
    for tsquery in tsqueries:
        params += [loose, strict, whole, tsquery, exclude, *where_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [row[0] for row in cursor.fetchall()]


def _trigram_ids(parsed: ParsedQuery, *, limit: int, exclude: list[int], where: tuple[str, list]) -> list[int]:
    where_sql, where_params = where
    text = " ".join(parsed.plain_words)
    # The <% operator and the GIN trigram index read their threshold from
    # pg_trgm.word_similarity_threshold. It is set, for this statement's
    # transaction only, by the sub-select that gives the operator its text:
    # the index scan needs that text before it starts, so the setting is in
    # place before anything reads it, without a transaction of our own.
    sql = f"""
        SELECT id FROM (
            SELECT id, word_similarity(%s, search_title) + CASE WHEN in_stock THEN {IN_STOCK_BONUS} ELSE 0 END AS score
            FROM catalog_product
            WHERE (SELECT %s::text FROM set_config('pg_trgm.word_similarity_threshold', %s, true)) <%% search_title
              AND NOT (id = ANY(%s)){where_sql}
            LIMIT {TRIGRAM_CANDIDATES}
        ) c
        ORDER BY score DESC, id
        LIMIT %s
    """
    threshold = str(settings.SEARCH_TRIGRAM_THRESHOLD)
    with connection.cursor() as cursor:
        cursor.execute(sql, [text, text, threshold, exclude, *where_params, limit])
        return [row[0] for row in cursor.fetchall()]


# --- SQLite and other databases ---------------------------------------------

_FALLBACK_CANDIDATES = 500


def _fallback_ids(parsed: ParsedQuery, *, limit: int, exclude: list[int], filters: Q) -> _Found:
    # Each alternative with the stems it is looked for by, worked out once, not per candidate.
    groups = [[(alternative, [crude_stem(w) for w in alternative]) for alternative in group] for group in parsed.groups]
    # A whole word between non-letters: "форели," in a title is the whole word "форели".
    whole = {
        w: re.compile(rf"(?<![0-9a-zа-я]){re.escape(w)}(?![0-9a-zа-я])")
        for group in parsed.groups
        for alternative in group
        for w in alternative
    }

    def contains(field: str, stem: str) -> Q:
        # instr(), not LIKE: half the time over long descriptions, and the
        # text is normalised (lower case) already, as the stems are.
        return Q(GreaterThan(StrIndex(field, Value(stem)), 0))

    loose = Q()
    for group in groups:
        for _, alt_stems in group:
            alt_q = Q()
            for stem in alt_stems:
                alt_q &= contains("search_title", stem) | contains("search_text", stem)
            loose |= alt_q
    # In table order, as on PostgreSQL: the model's ordering would make
    # SQLite read and sort every match before it takes the first ones.
    base = Product.objects.filter(filters).exclude(id__in=exclude).order_by()
    candidates = list(
        base.filter(loose).values_list("id", "search_title", "search_text", "in_stock")[:_FALLBACK_CANDIDATES]
    )

    def score(row) -> float:
        _, title, text, in_stock = row
        total = 0.0
        matched_groups = whole_groups = 0
        for group in groups:
            best = 0.0
            for _, alt_stems in group:
                if all(s in title for s in alt_stems):
                    best = 0.1
                    break
                if all(s in title or s in text for s in alt_stems):
                    best = 0.04
            if best:
                total += best
                matched_groups += 1
                whole_groups += any(
                    all(whole[w].search(title) or whole[w].search(text) for w in alternative)
                    for alternative, _ in group
                )
        if matched_groups == len(groups):
            total += ALL_WORDS_BONUS
        if whole_groups >= len(groups):
            total += WHOLE_WORDS_BONUS
        return total + (IN_STOCK_BONUS if in_stock else 0)

    scored = sorted(((score(row), row[0]) for row in candidates), key=lambda item: (-item[0], item[1]))
    complete = bool(scored) and scored[0][0] >= ALL_WORDS_BONUS
    return _Found([id_ for _, id_ in scored[: limit - len(exclude)]], complete)
