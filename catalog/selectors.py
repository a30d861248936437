"""Reads of the catalog other than search."""

from django.db.models import Count, Max, OuterRef, Q, Subquery

from catalog.models import Category, FAQEntry, Product
from catalog.text import crude_stem, words


def catalog_stats() -> dict:
    totals = Product.objects.aggregate(
        products=Count("id"),
        in_stock=Count("id", filter=Q(in_stock=True)),
    )
    sources = {
        row["source"]: {"products": row["products"], "last_import": row["last_import"]}
        for row in Product.objects.values("source")
        .annotate(products=Count("id"), last_import=Max("last_seen_at"))
        .order_by("source")
    }
    return {
        "products": totals["products"],
        "in_stock": totals["in_stock"],
        "out_of_stock": totals["products"] - totals["in_stock"],
        "categories": Category.objects.count(),
        "faq": FAQEntry.objects.filter(is_active=True).count(),
        "sources": sources,
    }


def catalog_is_empty() -> bool:
    return not Product.objects.exists()


def match_faq(text: str, *, limit: int = 1) -> list[FAQEntry]:
    """Active FAQ entries whose keywords the text uses, best first.

    A keyword counts when each of its words matches a word of the text: the
    word's crude stem starts it ("доставка" matches "доставку"), or, for a
    longer stem, all but its last two letters do ("доставка" matches
    "доставляете": verbs and nouns of one root part late). Words of the
    question itself count for less. Between entries that score the same, the
    one whose matched words are rarer across the FAQ wins: "работаете с
    ресторанами?" is about restaurants, which only one answer names, not
    about working hours.
    """
    tokens = words(text)
    if not tokens:
        return []
    entries = list(FAQEntry.objects.filter(is_active=True))

    def matches(word: str, token: str) -> bool:
        stem = crude_stem(word)
        if token.startswith(stem):
            return True
        root = stem[:-2]
        return len(root) >= MIN_FAQ_ROOT and token.startswith(root)

    def has(word: str) -> bool:
        return any(matches(word, token) for token in tokens)

    entry_words: list[set[str]] = []

    def rarity(word: str) -> float:
        if not entry_words:
            # Read only when two entries match: most messages match none or one.
            entry_words.extend(set(words(f"{e.question} {e.answer} {' '.join(e.keyword_list)}")) for e in entries)
        used_by = sum(1 for found in entry_words if any(matches(word, w) for w in found))
        return 1 / max(used_by, 1)

    matching = []
    for entry in entries:
        score = 0
        matched: list[str] = []
        for keyword in entry.keyword_list:
            keyword_words = words(keyword)
            if keyword_words and all(has(w) for w in keyword_words):
                score += 2 + len(keyword_words) - 1
                matched += keyword_words
        question_words = [w for w in set(words(entry.question)) if len(w) >= 5 and has(w)]
        score += len(question_words)
        if score >= 2:
            matching.append((score, {*matched, *question_words}, entry))
    if len(matching) > 1:
        scored = [(score, sum(rarity(w) for w in used), -entry.sort_order, entry) for score, used, entry in matching]
        scored.sort(key=lambda item: item[:3], reverse=True)
        return [entry for *_, entry in scored[:limit]]
    return [entry for *_, entry in matching[:limit]]


# The shortest shared root that still says one word ("достав"), not a chance prefix ("кур").
MIN_FAQ_ROOT = 5


def categories_in_stock(*, limit: int = 10) -> list[str]:
    """Titles of top-level categories with something in stock, in the store's order."""
    # A category's first in-stock product link, as a scalar sub-select with
    # LIMIT 1: it stops at the first match. A join with DISTINCT reads every
    # product link of the catalog; an EXISTS is planned as a semi-join that
    # collects all the links of each category.
    first_in_stock = Product.categories.through.objects.filter(category=OuterRef("pk"), product__in_stock=True).values(
        "pk"
    )[:1]
    return list(
        Category.objects.filter(parent__isnull=True)
        .annotate(in_stock_link=Subquery(first_in_stock))
        .filter(in_stock_link__isnull=False)
        .order_by("sort_order", "title")
        .values_list("title", flat=True)[:limit]
    )
