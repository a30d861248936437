"""The evaluator's own check that a reply names only what the store sells, at its prices.

Independent of the guard that checks LLM answers before they are sent
(bots.llm_mode.check_facts): the evaluation must catch what that guard lets
through, so it shares none of its code or rules. A reply fails when:

- it quotes a price (a number with ₽, руб., р, RUB) that is not the price or
  old price of a product it shows or names (or a whole multiple of one, a
  total for several packs), not an amount of the FAQ, and not a number the
  customer wrote;
- a product line ("<name> — <price>") names no catalog product;
- it names a fish or seafood the catalog does not have at all ("икра белуги",
  "омуль"), outside a sentence that says there is none;
- it pairs a product word with a fish the catalog never pairs it with
  ("стейк горбуши", "икра сёмги").

Built once per run from the catalog it checks against.
"""

import itertools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from catalog.models import FAQEntry, Product

_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})
# A price: digits (with thousands spaces), then a rouble sign or word. "тыс." multiplies.
_PRICE_RE = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:[ ]\d{3})+|\d+)(?:[.,](\d{1,2}))?\s*(тыс\.?\s*|к\s+)?"
    r"(?:₽|руб(?:\.|лей|ля|ль)?(?![а-я])|р\.|р(?![а-я])|rub\b)",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"\d{1,3}(?:[ ]\d{3})+|\d+(?:[.,]\d+)?")
_WORD_RE = re.compile(r"[a-zа-я]+")
_TOKEN_RE = re.compile(r"[0-9a-zа-я]+")
# A product line: optional "1." or bullet, a name, a dash, a price.
_LINE_RE = re.compile(
    r"^\s*(?:\d+[.)]\s*|[•\-*]\s*)?(?P<name>[^\n—–]+?)\s+[—–-]\s+\d[\d ]*(?:[.,]\d+)?\s*(?:₽|руб|р\b)"
)
# A sentence that says something is not there is not an offer of it.
_NEGATION_RE = re.compile(r"\bнет\b|\bне\s|отсутств|законч|не продаем|не бывает", re.IGNORECASE)
_SENTENCE_RE = re.compile(r"(?<=[.!?…])\s+|\n")
# Where a clause ends inside a product line's name: ", а королевские — 1290 ₽".
_CLAUSE_RE = re.compile(r",\s+(?:а|и|но|или)\s+|[;.!?]\s+|\s+(?:а|но)\s+")
# Words of one phrase: "икра, креветки" is a list, not "икра креветок".
_PHRASE_RE = re.compile(r"[,;:()«»\"/—–]+|\s-\s|\s+(?:и|или)\s+")

# Fish and seafood people buy (and models name). Only those the catalog has
# nowhere count as invented; the rest are simply not looked at.
SEAFOOD_WORDS = """
белуга севрюга стерлядь калуга осетр осетрина омуль сиг нельма муксун пелядь ряпушка чавыча голец
карп сазан толстолобик сом окунь тилапия барабулька ставрида килька тюлька сардина сардинелла сайра
лобстер лангуст трепанг кукумария еж ежи спизула сурими мерлуза путассу пикша зубатка нототения
тарань чехонь карась налим форель лосось семга горбуша кета нерка кижуч тунец палтус треска
скумбрия сельдь мойва корюшка навага камбала хек минтай пангасиус дорадо сибас угорь лещ вобла судак щука
креветка краб раки рак омар лангустины мидии гребешок устрицы кальмар осьминог каракатица трубач рапана
анчоусы шпроты тобико
""".split()
# Product words a fish name follows in a product's name ("икра кеты", "филе трески").
PRODUCT_HEADS = "икра филе стейк тушка мясо печень паштет консервы".split()


def _amount(whole: str, cents: str | None = None, thousands: str | None = None) -> Decimal | None:
    try:
        value = Decimal(whole.replace(" ", "") + (f".{cents}" if cents else ""))
    except InvalidOperation:
        return None
    return value * 1000 if thousands else value


def prices_in(text: str) -> list[Decimal]:
    text = text.translate(_SPACES)
    return [a for a in (_amount(m[1], m[2], m[3]) for m in _PRICE_RE.finditer(text)) if a is not None]


def numbers_in(text: str) -> set[Decimal]:
    found = set()
    for raw in _NUMBER_RE.findall(text.translate(_SPACES)):
        value = _amount(raw.replace(",", "."))
        if value is not None:
            found |= {value, value * 1000}  # "до 5 тыс"
    return found


def _stems(word: str) -> frozenset[str]:
    """Stems a word form may have, so forms of one word meet: "мидии"/"мидий", "тунец"/"тунца", "сёмга"/"семгу"."""
    word = word.lower().replace("ё", "е").replace("ь", "").replace("ъ", "")
    stems = {word}
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            stems.add(word[: -len(ending)])
    # A fleeting vowel before the last consonant: тунец → тунц, угор(ь) → угр.
    for stem in list(stems):
        if len(stem) >= 4 and stem[-2] in "ео" and stem[-1] not in "аеиоуыэюя":
            stems.add(stem[:-2] + stem[-1])
    return frozenset(stems)


_ENDINGS = """ами ями ого его ому ему ыми ими ых их ая яя ое ее ые ие ой ей ий ый ую юю ов ев ах ях ам ям ом ем
ии ия ие ья ью ье а я о е ы и у ю й""".split()


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower().replace("ё", "е"))


@dataclass
class _Known:
    title: str
    stems: frozenset[str]  # of its title, pack, characteristics, categories and description
    prices: frozenset[Decimal]


class CatalogFacts:
    """What the catalog sells and what it costs, read once; `problems(...)` judges a reply."""

    def __init__(self):
        self.products: dict[str, _Known] = {}
        self.by_title: dict[str, _Known] = {}
        self.vocabulary: set[str] = set()
        self.all_prices: set[Decimal] = set()
        # Stems of the words product names start with ("икра", "креветки", "набор").
        self.title_heads: set[str] = set()
        for product in Product.objects.prefetch_related("categories"):
            values = [str(v) for v in (product.characteristics or {}).values() if isinstance(v, str | int | float)]
            described = " ".join(
                [
                    product.title,
                    product.unit,
                    *values,
                    *(c.title for c in product.categories.all()),
                    product.short_description,
                    product.description,
                ]
            )
            stems = frozenset(s for w in _words(described) for s in _stems(w))
            prices = frozenset(p for p in (product.price, product.old_price) if p is not None)
            known = _Known(product.title, stems, prices)
            self.products[product.sku or f"id:{product.pk}"] = known
            self.by_title[_plain(product.title)] = known
            self.vocabulary |= stems
            self.all_prices |= prices
            first = _words(product.title)[:1]
            if first:
                self.title_heads |= _stems(first[0])
        self.faq_amounts: set[Decimal] = set()
        for answer in FAQEntry.objects.filter(is_active=True).values_list("answer", flat=True):
            self.faq_amounts |= set(prices_in(answer)) | numbers_in(answer)
        self.fish_stems = {s for word in SEAFOOD_WORDS for s in _stems(word)}
        self.heads = {s for word in PRODUCT_HEADS for s in _stems(word)}
        self.product_words = self.fish_stems | self.heads | self.title_heads

    def problems(
        self, text: str, *, skus: list[str], customer_text: str = "", order_amounts: frozenset[Decimal] = frozenset()
    ) -> list[str]:
        """What in the reply is not the catalog's: invented prices and products, in words for the report.

        `order_amounts`: the sums an ordering dialog may quote (its basket's and orders', worked out by the caller).
        """
        text = text.translate(_SPACES)
        named = [self.products[s] for s in skus if s in self.products] + self._named(text)
        problems = []
        allowed = self.faq_amounts | numbers_in(customer_text) | order_amounts
        for known in named:
            allowed |= {price * n for price in known.prices for n in range(1, 11)}
        if not named:
            allowed |= self.all_prices
        for price in prices_in(text):
            if price not in allowed:
                problems.append(f"price {_rub(price)} is not a price of the products shown or of the FAQ")
        for line in text.split("\n"):
            match = _LINE_RE.match(line)
            if match and not self._is_catalog_name(match["name"]):
                problems.append(f"product line «{match['name'].strip()}» names no catalog product")
        for sentence in _SENTENCE_RE.split(text):
            if _NEGATION_RE.search(sentence):
                continue
            tokens = _words(sentence)
            for word in tokens:
                stems = _stems(word)
                if stems & self.fish_stems and not stems & self.vocabulary:
                    problems.append(f"«{word}»: the catalog has no such fish or seafood")
            for phrase in _PHRASE_RE.split(sentence):
                tokens = _words(phrase)
                for head, fish in itertools.pairwise(tokens):
                    head_stems, fish_stems = _stems(head), _stems(fish)
                    if not (head_stems & self.heads and fish_stems & self.fish_stems and fish_stems & self.vocabulary):
                        continue
                    if not any(head_stems & k.stems and fish_stems & k.stems for k in self.products.values()):
                        problems.append(f"«{head} {fish}»: no such product in the catalog")
        return list(dict.fromkeys(problems))

    def _named(self, text: str) -> list[_Known]:
        """Catalog products whose whole title the text quotes."""
        plain = f" {_plain(text)} "
        return [known for title, known in self.by_title.items() if title and f" {title} " in plain]

    def _is_catalog_name(self, name: str) -> bool:
        """A product line's name is a catalog title, or catalog words that one product has together.

        Only the name's last clause counts ("…стоят 2190 рублей, а королевские — 1290 ₽" names
        «королевские»), and only its words the catalog knows: a made-up fish is the fish check's to
        report. A name with no product word ("Доставка по Москве") is not a product's: True.
        """
        plain = f" {_plain(name)}"
        if any(plain.endswith(f" {title}") for title in self.by_title):
            return True
        clause = _CLAUSE_RE.split(_PRICE_RE.sub(" ", name.translate(_SPACES)))[-1]
        tokens = [w for w in _words(clause) if len(w) > 1]
        for start, word in enumerate(tokens):
            if _stems(word) & self.product_words:
                wanted = [stems for stems in map(_stems, tokens[start:]) if stems & self.vocabulary]
                return any(all(s & known.stems for s in wanted) for known in self.products.values())
        return True


def _plain(text: str) -> str:
    """Words and numbers, lower case, "ё" as "е", single spaces: for comparing names."""
    return " ".join(_TOKEN_RE.findall(text.lower().replace("ё", "е")))


def _rub(amount: Decimal) -> str:
    return f"{amount.normalize():f} ₽"
