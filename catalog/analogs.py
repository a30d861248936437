"""What to offer instead of a product that is out of stock.

The same product in another form or size comes first ("Тунец стейк с/м" ->
"Тунец охлаждённый стейк", "Икра кеты 250 г" -> "Икра кеты 100 г"), in its
category before others (a chilled steak may live in another category than a
frozen one); then other products of the category, the ones closest to the
request first.
"""

from rapidfuzz import fuzz

from catalog.models import Product
from catalog.search import search_products
from catalog.text import crude_stem, other_form_stems, words

# Beginnings of the words of a title that say how a product is cut, processed or
# packed rather than what it is; with sizes, units and abbreviations ("с/м")
# left out, what remains names the product ("икра кеты", "тунец").
_FORM_STEMS = tuple(
    """
    охлажд заморож морожен свежеморож сыроморож варен варено бланшир очищ неочищ
    копчен копчени холодн горяч солен слабосол малосол посол пряно вялен сушен
    маринов маринад пастериз зернист пробойн ястычн натуральн классическ премиум
    жив цел цельн филе стейк тушк кусок куск ломтик
    спинк брюшк кольц мяс фаланг клешн щупальц кож голов раковин половинк
    масле соус соку собственн упаковк вакуум лоток пакет банк ведр пластиков
    """.split()
)
_UNITS = frozenset("г гр кг мл л шт уп без на для из под".split())

# token_set_ratio of two products' names at or above which they are one
# product: it is 100 when one name holds the other ("кальмар" and "кальмар
# командорский"), about 60 for "икра кеты" and "икра горбуши".
SAME_PRODUCT_SCORE = 90
# How many in-stock products named like the out-of-stock one are looked at.
SAME_PRODUCT_CANDIDATES = 20


def product_name(title: str) -> list[str]:
    """The words of a title that name the product, without its form, size or pack ("икра кеты", "тунец")."""
    return [
        w
        for w in words(title)
        if len(w) > 1 and w not in _UNITS and not any(c.isdigit() for c in w) and not w.startswith(_FORM_STEMS)
    ]


def same_product_score(title: str, other: str) -> float:
    """How much two titles name one product, 0..100, whatever their forms and sizes.

    The first word of a name is what the product is, and must agree:
    "Кета тушка" is not "Икра кеты" though "кеты" is all of its name.
    """
    name, other_name = product_name(title), product_name(other)
    if not name or not other_name or not _one_word(name[0], other_name[0]):
        return 0.0
    stems, other_stems = [crude_stem(w) for w in name], [crude_stem(w) for w in other_name]
    # The first words agree: the same stem for both, whatever its fleeting vowel.
    return fuzz.token_set_ratio(" ".join(stems), " ".join([stems[0], *other_stems[1:]]))


def _one_word(word: str, other: str) -> bool:
    """Two forms of one word: one stem, or one with a fleeting vowel ("угорь", "угря")."""
    stem, other_stem = crude_stem(word), crude_stem(other)
    return stem == other_stem or other_stem in other_form_stems(word) or stem in other_form_stems(other)


def analogs_for(
    product: Product, query: str, limit: int = 3, *, candidates: list[Product] | None = None
) -> list[Product]:
    """In-stock products to offer instead: the same product in another form or size, then its category's.

    `candidates`, the search results the product came from, saves searching again.
    """
    category_ids = {c.id for c in product.categories.all()}  # prefetched by search_products
    if candidates is None:
        candidates = search_products(query, limit=20, in_stock_only=True)
    pool = [p for p in candidates if p.in_stock and p.id != product.id]

    def same(p: Product) -> bool:
        return same_product_score(product.title, p.title) >= SAME_PRODUCT_SCORE

    if not any(same(p) for p in pool):
        # The request may not name it as the title does ("тунец с/м" for
        # "Тунец стейк с/м"): look for the product's own name.
        name = " ".join(product_name(product.title))
        seen = {p.id for p in pool}
        if name:
            found = search_products(name, limit=SAME_PRODUCT_CANDIDATES, in_stock_only=True)
            pool += [p for p in found if p.id != product.id and p.id not in seen]

    def in_category(p: Product) -> bool:
        return bool(category_ids & {c.id for c in p.categories.all()})

    same_product = [p for p in pool if same(p)]
    # In the category first, then the closest name; the search's order decides between equals.
    same_product.sort(key=lambda p: (not in_category(p), -same_product_score(product.title, p.title)))
    close = same_product + [p for p in pool if in_category(p) and p not in same_product]
    if len(close) < limit and category_ids:
        more = (
            Product.objects.filter(categories__in=category_ids, in_stock=True)
            .exclude(id__in=[product.id, *(p.id for p in close)])
            .distinct()
            .order_by("sort_order", "id")[: limit - len(close)]
        )
        close += list(more)
    return close[:limit]
