"""Scenario files: dialogs with what a correct answer to each customer turn shows.

A file is YAML, either a list of scenarios or a mapping with `category` (the
default for its scenarios) and `scenarios`:

    category: search
    scenarios:
      - id: caviar-plain
        description: A plain question about caviar.
        setup:                      # optional
          settings: {contacts: "Телефон +7 495 000-00-00"}
          out_of_stock: [MR-00018]  # SKUs switched out of stock for this scenario
          in_stock: [MR-00019]      # SKUs switched in stock
        turns:
          - say: есть икра?
            expect:
              facts: ['икр']         # regexes that must match the reply
              products_any: [MR-00001, MR-00004]
              handoff: false        # the default

Every field is checked when the file is read: a misspelt field or a value of
the wrong type is an error naming the file, the scenario and the field, never
an expectation silently ignored.
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
MODES = ("retrieval", "llm")
# Assistant settings a scenario may set up; the LLM fields belong to the run (--provider).
SETTINGS_FIELDS = {
    "store_name": str,
    "contacts": str,
    "handoff_words": str,
    "handoff_text": str,
    "waiting_text": str,
    "banned_phrases": str,
    "max_reply_chars": int,
    "tone": str,
    "policies": str,
}
_SKU_RE = re.compile(r"^\S+$")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Expect:
    """What a correct reply to one customer turn shows. Empty lists check nothing."""

    facts: tuple[re.Pattern, ...] = ()
    forbidden: tuple[re.Pattern, ...] = ()
    products: tuple[str, ...] = ()
    products_any: tuple[str, ...] = ()
    products_none: tuple[str, ...] = ()
    no_products: bool = False
    only_categories: tuple[str, ...] = ()
    # Every product shown has a title this regex matches ("кревет": only shrimps).
    each_title: re.Pattern | None = None
    # The first in-stock product the reply lists is one of these: the best match, the nearest analog.
    first_in_stock: tuple[str, ...] = ()
    max_price: Decimal | None = None
    min_price: Decimal | None = None
    # The reply shows the n-th product (1-based, as listed) of the previous reply.
    previous_product: int | None = None
    # Every product shown (at least one) costs less than the first product of the previous reply.
    cheaper_than_previous: bool = False
    # True: the dialog goes to a person; False (default): it does not; None: not checked.
    handoff: bool | None = False
    # The bot does not answer (a dialog already with a person).
    silent: bool = False

    def skus(self) -> set[str]:
        return {*self.products, *self.products_any, *self.products_none, *self.first_in_stock}


@dataclass(frozen=True)
class Turn:
    say: str
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True)
class Setup:
    settings: dict = field(default_factory=dict)
    out_of_stock: tuple[str, ...] = ()
    in_stock: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    id: str
    category: str
    turns: tuple[Turn, ...]
    file: str = ""
    description: str = ""
    setup: Setup = field(default_factory=Setup)
    # The modes the scenario applies to; both by default.
    modes: tuple[str, ...] = MODES

    def skus(self) -> set[str]:
        return {*self.setup.out_of_stock, *self.setup.in_stock, *(s for t in self.turns for s in t.expect.skus())}


def load_scenarios(paths=None) -> list[Scenario]:
    """Scenarios of the files (or of the *.yaml files of directories), in file order; ids unique across them."""
    files: list[Path] = []
    for path in map(Path, paths or [SCENARIO_DIR]):
        if path.is_dir():
            files += sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        elif path.exists():
            files.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or directory")
    if not files:
        raise ScenarioError(f"no scenario files in {', '.join(map(str, paths or [SCENARIO_DIR]))}")
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for path in files:
        for scenario in load_file(path):
            if scenario.id in seen:
                raise ScenarioError(f"{path}: scenario {scenario.id!r}: field 'id': also used in {seen[scenario.id]}")
            seen[scenario.id] = str(path)
            scenarios.append(scenario)
    return scenarios


def load_file(path: Path) -> list[Scenario]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot be read: {exc}") from None
    default_category = None
    if isinstance(data, dict):
        _no_unknown(data, {"category", "scenarios"}, _Where(path))
        default_category = data.get("category")
        if default_category is not None and not _nonempty_str(default_category):
            raise ScenarioError(f"{path}: field 'category': must be a non-empty string")
        data = data.get("scenarios")
    if not isinstance(data, list) or not data:
        raise ScenarioError(f"{path}: field 'scenarios': must be a non-empty list of scenarios")
    return [_scenario(item, n, path, default_category) for n, item in enumerate(data, 1)]


@dataclass(frozen=True)
class _Where:
    """Where a value is, for an error message: file, scenario, turn."""

    path: Path
    scenario: str = ""
    turn: int | None = None

    def error(self, field_name: str, problem: str) -> ScenarioError:
        where = [str(self.path)]
        if self.scenario:
            where.append(f"scenario {self.scenario}")
        if self.turn is not None:
            where.append(f"turn {self.turn}")
        return ScenarioError(f"{': '.join(where)}: field '{field_name}': {problem}")


def _scenario(item, n: int, path: Path, default_category: str | None) -> Scenario:
    where = _Where(path, scenario=f"#{n}")
    if not isinstance(item, dict):
        raise where.error("scenarios", f"item {n} must be a mapping, got {_type(item)}")
    scenario_id = item.get("id")
    if not _nonempty_str(scenario_id) or not re.fullmatch(r"[\w.\-]+", scenario_id):
        raise where.error("id", "required: letters, digits, '-', '_' or '.'")
    where = _Where(path, scenario=repr(scenario_id))
    _no_unknown(item, {"id", "category", "description", "setup", "turns", "modes"}, where)
    category = item.get("category", default_category)
    if not _nonempty_str(category):
        raise where.error("category", "required (here or as the file's 'category')")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise where.error("description", f"must be a string, got {_type(description)}")
    modes = item.get("modes", list(MODES))
    if isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, list) or not modes or any(m not in MODES for m in modes):
        raise where.error("modes", f"must be a list of {', '.join(MODES)}")
    turns = item.get("turns")
    if not isinstance(turns, list) or not turns:
        raise where.error("turns", "must be a non-empty list of turns")
    return Scenario(
        id=scenario_id,
        category=category.strip(),
        turns=tuple(_turn(t, k, _Where(path, where.scenario, k)) for k, t in enumerate(turns, 1)),
        file=str(path),
        description=description.strip(),
        setup=_setup(item.get("setup"), where),
        modes=tuple(modes),
    )


def _setup(value, where: _Where) -> Setup:
    if value is None:
        return Setup()
    if not isinstance(value, dict):
        raise where.error("setup", f"must be a mapping, got {_type(value)}")
    _no_unknown(value, {"settings", "out_of_stock", "in_stock"}, where, prefix="setup.")
    raw_settings = value.get("settings") or {}
    if not isinstance(raw_settings, dict):
        raise where.error("setup.settings", f"must be a mapping, got {_type(raw_settings)}")
    settings = {}
    for name, raw in raw_settings.items():
        kind = SETTINGS_FIELDS.get(name)
        if kind is None:
            raise where.error(f"setup.settings.{name}", f"unknown setting; known: {', '.join(SETTINGS_FIELDS)}")
        settings[name] = _setting(raw, kind, where, f"setup.settings.{name}")
    return Setup(
        settings=settings,
        out_of_stock=_skus(value.get("out_of_stock"), where, "setup.out_of_stock"),
        in_stock=_skus(value.get("in_stock"), where, "setup.in_stock"),
    )


def _setting(raw, kind, where: _Where, name: str):
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise where.error(name, f"must be a whole number, got {_type(raw)}")
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = str(raw)  # a store name of digits
    if not isinstance(raw, str):
        raise where.error(name, f"must be a string, got {_type(raw)}")
    return raw


_EXPECT_FIELDS = {
    "facts",
    "forbidden",
    "products",
    "products_any",
    "products_none",
    "no_products",
    "only_categories",
    "each_title",
    "first_in_stock",
    "max_price",
    "min_price",
    "previous_product",
    "cheaper_than_previous",
    "handoff",
    "silent",
}


def _turn(item, k: int, where: _Where) -> Turn:
    if isinstance(item, str):
        return Turn(say=item)
    if not isinstance(item, dict):
        raise where.error("turns", f"turn {k} must be a mapping with 'say', got {_type(item)}")
    _no_unknown(item, {"say", "expect"}, where)
    say = item.get("say")
    if isinstance(say, int | float) and not isinstance(say, bool):
        say = str(say)
    if not _nonempty_str(say):
        raise where.error("say", "required: what the customer writes")
    raw = item.get("expect") or {}
    if not isinstance(raw, dict):
        raise where.error("expect", f"must be a mapping, got {_type(raw)}")
    _no_unknown(raw, _EXPECT_FIELDS, where, prefix="expect.")
    expect = Expect(
        facts=_patterns(raw.get("facts"), where, "expect.facts"),
        forbidden=_patterns(raw.get("forbidden"), where, "expect.forbidden"),
        products=_skus(raw.get("products"), where, "expect.products"),
        products_any=_skus(raw.get("products_any"), where, "expect.products_any"),
        products_none=_skus(raw.get("products_none"), where, "expect.products_none"),
        no_products=_bool(raw.get("no_products", False), where, "expect.no_products"),
        only_categories=_strings(raw.get("only_categories"), where, "expect.only_categories"),
        each_title=_pattern(raw.get("each_title"), where, "expect.each_title"),
        first_in_stock=_skus(raw.get("first_in_stock"), where, "expect.first_in_stock"),
        max_price=_price(raw.get("max_price"), where, "expect.max_price"),
        min_price=_price(raw.get("min_price"), where, "expect.min_price"),
        previous_product=_position(raw.get("previous_product"), where, "expect.previous_product"),
        cheaper_than_previous=_bool(raw.get("cheaper_than_previous", False), where, "expect.cheaper_than_previous"),
        handoff=_bool(raw.get("handoff", False), where, "expect.handoff", allow_none=True),
        silent=_bool(raw.get("silent", False), where, "expect.silent"),
    )
    if (expect.previous_product or expect.cheaper_than_previous) and k == 1:
        raise where.error(
            "expect.previous_product" if expect.previous_product else "expect.cheaper_than_previous",
            "needs an earlier turn",
        )
    if expect.no_products and (expect.products or expect.products_any):
        raise where.error("expect.no_products", "contradicts expect.products / expect.products_any")
    return Turn(say=say.strip(), expect=expect)


def _no_unknown(mapping: dict, known: set[str], where: _Where, prefix: str = "") -> None:
    unknown = sorted(str(k) for k in mapping if k not in known)
    if unknown:
        raise where.error(prefix + unknown[0], f"unknown field; known: {', '.join(sorted(known))}")


def _patterns(value, where: _Where, name: str) -> tuple[re.Pattern, ...]:
    patterns = []
    for n, raw in enumerate(_list(value, where, name), 1):
        if not _nonempty_str(raw):
            raise where.error(name, f"item {n} must be a non-empty regex string, got {_type(raw)}")
        try:
            # Replies are matched with "ё" read as "е", so a pattern is too.
            patterns.append(re.compile(raw.replace("ё", "е").replace("Ё", "Е"), re.IGNORECASE))
        except re.error as exc:
            raise where.error(name, f"item {n} {raw!r} is not a valid regex: {exc}") from None
    return tuple(patterns)


def _pattern(value, where: _Where, name: str) -> re.Pattern | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise where.error(name, f"must be one regex string, got {_type(value)}")
    return _patterns(value, where, name)[0]


def _skus(value, where: _Where, name: str) -> tuple[str, ...]:
    skus = []
    for n, raw in enumerate(_list(value, where, name), 1):
        if not isinstance(raw, str) or not _SKU_RE.match(raw):
            raise where.error(name, f"item {n} must be a SKU such as 'MR-00001', got {raw!r}")
        skus.append(raw)
    return tuple(skus)


def _strings(value, where: _Where, name: str) -> tuple[str, ...]:
    items = _list(value, where, name)
    if any(not _nonempty_str(v) for v in items):
        raise where.error(name, "must be a list of non-empty strings")
    return tuple(v.strip() for v in items)


def _list(value, where: _Where, name: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise where.error(name, f"must be a list, got {_type(value)}")
    return value


def _bool(value, where: _Where, name: str, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        raise where.error(name, f"must be true or false{' or null' if allow_none else ''}, got {value!r}")
    return value


def _price(value, where: _Where, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise where.error(name, f"must be a number of roubles, got {_type(value)}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise where.error(name, f"must be a number of roubles, got {value!r}") from None
    if price < 0:
        raise where.error(name, "must not be negative")
    return price


def _position(value, where: _Where, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.error(name, f"must be a position 1, 2, 3…, got {value!r}")
    return value


def _nonempty_str(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _type(value) -> str:
    return "nothing" if value is None else type(value).__name__
