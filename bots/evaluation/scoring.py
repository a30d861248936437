"""Judging one reply against what the scenario expects, and adding up the scores.

Each failed expectation is one line saying what was expected and what the
reply had, for the report. A case (scenario) passes when every turn passes;
a category's score is the share of its cases that pass.
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

from bots.evaluation.scenarios import Expect

_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})
# A product marker the reply should have rendered: never shown to a customer.
_LEFTOVER = re.compile(r"\[\[|\]\]|\x00")


@dataclass
class Shown:
    """A product a reply showed: enough to judge it without the database."""

    sku: str
    title: str
    price: Decimal | None
    in_stock: bool
    categories: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "sku": self.sku,
            "title": self.title,
            "price": None if self.price is None else f"{self.price.normalize():f}",
            "in_stock": self.in_stock,
        }


@dataclass
class Observed:
    """What the bot did with one customer turn."""

    text: str | None  # None: no reply at all
    kind: str = ""
    products: list[Shown] = field(default_factory=list)  # in the order the reply lists them
    handoff: bool = False
    llm_error: str = ""


def comparable(text: str) -> str:
    """A reply as regexes read it: "ё" as "е", non-breaking spaces as spaces."""
    return text.translate(_SPACES).replace("ё", "е").replace("Ё", "Е")


def judge(expect: Expect, got: Observed, previous: Observed | None = None) -> list[str]:
    """The expectations the reply fails, each as "expected …, got …"."""
    if expect.silent:
        return [] if got.text is None else [f"expected no reply (the dialog is with a person), got {got.kind!r}"]
    if got.text is None:
        return ["expected a reply, got none (the bot stayed silent)"]
    failures = []
    text = comparable(got.text)
    if not text.strip():
        failures.append("expected a reply, got an empty text")
    if _LEFTOVER.search(got.text):
        failures.append("the reply shows an unrendered product marker")
    for pattern in expect.facts:
        if not pattern.search(text):
            failures.append(f"expected fact /{pattern.pattern}/: not in the reply")
    for pattern in expect.forbidden:
        match = pattern.search(text)
        if match:
            failures.append(f"forbidden /{pattern.pattern}/: the reply has «{match[0]}»")
    if expect.handoff is True and not got.handoff:
        failures.append(f"expected a hand-off to a person, got a {got.kind or 'plain'} reply")
    elif expect.handoff is False and got.handoff:
        failures.append("expected no hand-off, got a hand-off to a person")
    skus = [p.sku for p in got.products]
    missing = [s for s in expect.products if s not in skus]
    if missing:
        failures.append(f"expected products {', '.join(missing)} among those shown, got {_list(skus)}")
    if expect.products_any and not set(expect.products_any) & set(skus):
        failures.append(f"expected one of {', '.join(expect.products_any)} among those shown, got {_list(skus)}")
    unwanted = [s for s in expect.products_none if s in skus]
    if unwanted:
        failures.append(f"expected none of {', '.join(unwanted)}, got them among {_list(skus)}")
    if expect.no_products and skus:
        failures.append(f"expected no products, got {_list(skus)}")
    if expect.only_categories:
        wanted = {c.lower().replace("ё", "е") for c in expect.only_categories}
        outside = [p.sku for p in got.products if not wanted & {c.lower().replace("ё", "е") for c in p.categories}]
        if outside:
            failures.append(f"expected only products of {', '.join(expect.only_categories)}, got {_list(outside)}")
    if expect.each_title is not None:
        other = [p for p in got.products if not expect.each_title.search(comparable(p.title))]
        if other:
            failures.append(
                f"expected only products titled /{expect.each_title.pattern}/, got "
                + ", ".join(f"{p.sku} {p.title}" for p in other)
            )
    if expect.first_in_stock:
        first = next((p for p in got.products if p.in_stock), None)
        if first is None or first.sku not in expect.first_in_stock:
            failures.append(
                f"expected {' or '.join(expect.first_in_stock)} as the first product in stock, got "
                + (f"{first.sku} {first.title}" if first else "none in stock")
            )
    if expect.max_price is not None:
        dear = [p for p in got.products if p.price is None or p.price > expect.max_price]
        if dear:
            failures.append(f"expected prices up to {_rub(expect.max_price)}, got {_priced(dear)}")
    if expect.min_price is not None:
        cheap = [p for p in got.products if p.price is None or p.price < expect.min_price]
        if cheap:
            failures.append(f"expected prices from {_rub(expect.min_price)}, got {_priced(cheap)}")
    if expect.previous_product is not None:
        failures += _previous_product(expect.previous_product, skus, previous)
    if expect.cheaper_than_previous:
        failures += _cheaper(got, previous)
    return failures


def _previous_product(position: int, skus: list[str], previous: Observed | None) -> list[str]:
    earlier = previous.products if previous else []
    if len(earlier) < position:
        return [f"expected product #{position} of the previous reply, which showed only {len(earlier)}"]
    wanted = earlier[position - 1].sku
    if wanted not in skus:
        return [f"expected product #{position} of the previous reply ({wanted}) among those shown, got {_list(skus)}"]
    return []


def _cheaper(got: Observed, previous: Observed | None) -> list[str]:
    first = next((p for p in (previous.products if previous else []) if p.price is not None), None)
    if first is None:
        return ["expected products cheaper than the previous reply's, which showed none with a price"]
    if not got.products:
        return [f"expected products cheaper than {first.sku} ({_rub(first.price)}), got none"]
    dear = [p for p in got.products if p.price is None or p.price >= first.price]
    if dear:
        return [f"expected products cheaper than {first.sku} ({_rub(first.price)}), got {_priced(dear)}"]
    return []


def _list(skus: list[str]) -> str:
    return ", ".join(skus) if skus else "none"


def _rub(amount: Decimal) -> str:
    return f"{amount.normalize():f} ₽"


def _priced(products: list[Shown]) -> str:
    return ", ".join(f"{p.sku} ({_rub(p.price) if p.price is not None else 'no price'})" for p in products)


@dataclass
class Score:
    cases: int = 0
    passed: int = 0

    @property
    def score(self) -> float:
        return self.passed / self.cases if self.cases else 0.0

    def as_json(self) -> dict:
        return {"cases": self.cases, "passed": self.passed, "score": round(self.score, 4)}


def scores(results) -> tuple[Score, dict[str, Score]]:
    """(overall, by category in the order categories first appear) for case results with .category and .passed."""
    overall, by_category = Score(), {}
    for result in results:
        score = by_category.setdefault(result.category, Score())
        for s in (overall, score):
            s.cases += 1
            s.passed += bool(result.passed)
    return overall, by_category
