"""Catalog search: what a Russian-speaking customer means, not just what they typed.

One entry point, `search_products`, used by the API and the assistant.

On PostgreSQL:
1. an exact SKU comes first;
2. full-text search with the `russian` configuration over a weighted vector
   (title A, the rest B) kept by a trigger, with prefix matching so partial
   words and fleeting vowels ("креветок") still match; products matching every
   query word outrank those matching some;
3. if that finds fewer than asked, pg_trgm word similarity on the title fills
   up the list, which catches typos ("кревтки", "гребишок").
In-stock products get a bonus that decides between close scores only.

On SQLite (the embedded default) a simpler substring search over normalised
text with crude stems handles case, "ё"/"е" and common word forms.

Synonyms that staff edit in admin expand the query first: each word or phrase
of the query becomes a group of alternatives.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Value

from catalog.models import Product, SearchSynonym
from catalog.text import crude_stem, normalize_text, words

MAX_LIMIT = 50

# Words that carry no product meaning in a shop chat; dropped so they neither
# block an all-words match nor dilute trigram similarity.
NOISE_WORDS = frozenset(
    """
    а без бы в вам вас ваш ваши вот вы да для до если есть еще же за и из или
    к как какая какие какой каких ли мне можно мы на над не нет но ну о об от
    по под пожалуйста подскажите посоветуйте при про с со так там то у уже хочу
    хочется хотел хотела хотим что чтобы это эти я купить заказать нужен нужна
    нужно нужны наличии наличие налич есть цена цены стоит стоимость сколько
    почем товар товары продаете продаются имеется имеются рублей руб р шт
    """.split()
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


def parse_query(query: str) -> ParsedQuery:
    text = normalize_text(query)
    tokens = [w for w in words(text) if w not in NOISE_WORDS]
    if not tokens:
        return ParsedQuery(text=text, groups=())
    synonyms = _synonyms_in(" ".join(tokens))
    groups: list[tuple[tuple[str, ...], ...]] = []
    i = 0
    while i < len(tokens):
        for phrase_words, alternatives in synonyms:
            n = len(phrase_words)
            if tuple(tokens[i : i + n]) == phrase_words:
                group = [phrase_words] + [tuple(words(alt)) for alt in alternatives]
                groups.append(tuple(alt for alt in group if alt))
                i += n
                break
        else:
            groups.append(((tokens[i],),))
            i += 1
    return ParsedQuery(text=" ".join(tokens), groups=tuple(groups))


def _synonyms_in(text: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Active synonyms whose phrase occurs in the text, longest phrase first."""
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
) -> list[Product]:
    """Products for a customer's query, best first, with categories prefetched."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    if not query or not query.strip():
        return []
    filters = Q()
    if in_stock_only:
        filters &= Q(in_stock=True)
    if max_price is not None:
        filters &= Q(price__lte=max_price)

    # A query that is exactly a SKU means that product and nothing else.
    ids: list[int] = list(
        Product.objects.filter(filters, sku__iexact=query.strip())
        .exclude(sku="")
        .order_by("-in_stock", "id")
        .values_list("id", flat=True)[:limit]
    )
    parsed = parse_query(query)
    if parsed.groups and not ids:
        if connection.vendor == "postgresql":
            ids += _postgres_ids(parsed, limit=limit, exclude=ids, filters=filters)
        else:
            ids += _fallback_ids(parsed, limit=limit, exclude=ids, filters=filters)
    products = Product.objects.filter(id__in=ids).prefetch_related("categories")
    by_id = {p.id: p for p in products}
    return [by_id[i] for i in ids if i in by_id]


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
    if not filters:
        return "", []
    sql, params = Product.objects.filter(filters).values("id").query.sql_with_params()
    return f" AND p.id IN ({sql})", list(params)


def _postgres_ids(parsed: ParsedQuery, *, limit: int, exclude: list[int], filters: Q) -> list[int]:
    filter_sql, filter_params = _filter_sql(filters)
    loose, strict = _tsquery(parsed, "|"), _tsquery(parsed, "&")
    whole = _tsquery(parsed, "&", prefix=False)
    sql = f"""
        WITH q AS (
            SELECT to_tsquery('russian', %s) AS loose,
                   to_tsquery('russian', %s) AS strict,
                   to_tsquery('russian', %s) AS whole
        )
        SELECT p.id
        FROM catalog_product p, q
        WHERE p.search_vector @@ q.loose
          AND NOT (p.id = ANY(%s)) {filter_sql}
        ORDER BY
            ts_rank(p.search_vector, q.loose)
            + CASE WHEN p.search_vector @@ q.strict THEN {ALL_WORDS_BONUS} ELSE 0 END
            + CASE WHEN p.search_vector @@ q.whole THEN {WHOLE_WORDS_BONUS} ELSE 0 END
            + CASE WHEN p.in_stock THEN {IN_STOCK_BONUS} ELSE 0 END DESC,
            p.id
        LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [loose, strict, whole, exclude, *filter_params, limit - len(exclude)])
        ids = [row[0] for row in cursor.fetchall()]
    found = exclude + ids
    if len(found) < limit:
        ids += _trigram_ids(parsed, limit=limit - len(found), exclude=found, filters=filters)
    return ids


def _trigram_ids(parsed: ParsedQuery, *, limit: int, exclude: list[int], filters: Q) -> list[int]:
    filter_sql, filter_params = _filter_sql(filters)
    text = " ".join(parsed.plain_words)
    sql = f"""
        SELECT p.id
        FROM catalog_product p
        WHERE %s <%% p.search_title
          AND NOT (p.id = ANY(%s)) {filter_sql}
        ORDER BY
            word_similarity(%s, p.search_title)
            + CASE WHEN p.in_stock THEN {IN_STOCK_BONUS} ELSE 0 END DESC,
            p.id
        LIMIT %s
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # The <% operator uses the GIN trigram index with this threshold.
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)",
            [str(settings.SEARCH_TRIGRAM_THRESHOLD)],
        )
        cursor.execute(sql, [text, exclude, *filter_params, text, limit])
        return [row[0] for row in cursor.fetchall()]


# --- SQLite and other databases ---------------------------------------------

_FALLBACK_CANDIDATES = 500


def _fallback_ids(parsed: ParsedQuery, *, limit: int, exclude: list[int], filters: Q) -> list[int]:
    def stems(alternative: tuple[str, ...]) -> list[str]:
        return [crude_stem(w) for w in alternative]

    def group_q(group) -> Q:
        q = Q()
        for alternative in group:
            alt_q = Q()
            for stem in stems(alternative):
                alt_q &= Q(search_title__contains=stem) | Q(search_text__contains=stem)
            q |= alt_q
        return q

    base = Product.objects.filter(filters).exclude(id__in=exclude)
    loose = Q()
    for group in parsed.groups:
        loose |= group_q(group)
    candidates = list(
        base.filter(loose).values_list("id", "search_title", "search_text", "in_stock")[:_FALLBACK_CANDIDATES]
    )

    def score(row) -> float:
        _, title, text, in_stock = row
        total = 0.0
        matched_groups = whole_groups = 0
        for group in parsed.groups:
            best = 0.0
            for alternative in group:
                alt_stems = stems(alternative)
                if all(s in title for s in alt_stems):
                    best = max(best, 0.1)
                elif all(s in title or s in text for s in alt_stems):
                    best = max(best, 0.04)
                padded = f" {title} {text} "
                if best and all(f" {w} " in padded for w in alternative):
                    whole_groups += 1
            total += best
            matched_groups += best > 0
        if matched_groups == len(parsed.groups):
            total += ALL_WORDS_BONUS
        if whole_groups >= len(parsed.groups):
            total += WHOLE_WORDS_BONUS
        return total + (IN_STOCK_BONUS if in_stock else 0)

    candidates.sort(key=lambda row: (-score(row), row[0]))
    return [row[0] for row in candidates[: limit - len(exclude)]]
