"""Timings of the Tilda sync (catalog.scrape.run_scrape) against a local fake Tilda Store.

    .venv/bin/python bench/scrape.py [--products 20000] [--small 5000] [--page-size 100] [--worst-case]

Creates the database of DATABASE_URL if missing (default storebot_bench_scrape on
the local PostgreSQL; its name must contain "bench"), migrates it and empties the
catalog with TRUNCATE ... CASCADE (products, categories, scrape runs and what
points at them). Generates N catalog products deterministically in the format of
Tilda's `getproductslist` pages (about 10% of Tilda products have 2-3 editions,
which become variants, so N counts parents and variants) and serves them from a
ThreadingHTTPServer on 127.0.0.1. Then times, through run_scrape, with the
queries counted by CaptureQueriesContext:

  1. a full import into the empty catalog,
  2. a second full import with nothing changed,
  3. a prices run after 10% of the prices changed on the server,

and checks the ScrapeRun counts and the stored prices. With --worst-case, also
4. a prices run after every price changed (a store-wide price rise) and 5. a full
import after every product changed (a new line in every description). A smaller
full import, and the same one in pages of half the size, show what the number of
SQL queries follows. The polite pause between pages (SCRAPER_PAGE_DELAY_S) is off:
this measures our code, not the wait. PostgreSQL only. Exits 1 when a target is
missed or a check fails.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# Run as a script: the project root must be importable for bench.database and Django.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.database import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storebot_bench_scrape"
PARTUID = "531000"
RECID = "770000001"
API_PATH = "/api/getproductslist/"
CHANGED_SHARE = 0.10

TARGET_FULL_S = 60.0
TARGET_UNCHANGED_S = 20.0
TARGET_PRICES_S = 20.0

# --- the fake store's catalog ----------------------------------------------------------

PARTS = [
    "Красная икра",
    "Другая икра",
    "Креветки",
    "Кальмары и осьминоги",
    "Мидии и гребешки",
    "Крабы и раки",
    "Лососёвые",
    "Белая рыба",
    "Морская рыба",
    "Копчёная рыба",
    "Деликатесы",
    "Консервы",
    "Полуфабрикаты",
    "Акции",
    "Новинки",
]

# title, part, kind, price of 1 kg in roubles
SPECIES = [
    ("Икра горбуши", "Красная икра", "caviar", 6500),
    ("Икра кеты", "Красная икра", "caviar", 8000),
    ("Икра нерки", "Красная икра", "caviar", 9000),
    ("Икра форели", "Красная икра", "caviar", 6000),
    ("Икра щуки", "Другая икра", "caviar", 4000),
    ("Икра мойвы", "Другая икра", "caviar", 1200),
    ("Икра летучей рыбы тобико", "Другая икра", "caviar", 3500),
    ("Креветки тигровые", "Креветки", "shrimp", 1600),
    ("Креветки королевские", "Креветки", "shrimp", 1100),
    ("Креветки северные", "Креветки", "shrimp", 900),
    ("Креветки аргентинские", "Креветки", "shrimp", 1700),
    ("Кальмар командорский", "Кальмары и осьминоги", "mollusc", 700),
    ("Осьминог", "Кальмары и осьминоги", "mollusc", 2500),
    ("Мидии черноморские", "Мидии и гребешки", "mollusc", 600),
    ("Гребешок морской", "Мидии и гребешки", "mollusc", 3200),
    ("Краб камчатский", "Крабы и раки", "crab", 9000),
    ("Раки", "Крабы и раки", "crab", 1800),
    ("Лангустины", "Крабы и раки", "crab", 3500),
    ("Лосось атлантический", "Лососёвые", "fish", 1900),
    ("Сёмга", "Лососёвые", "fish", 2100),
    ("Форель радужная", "Лососёвые", "fish", 1600),
    ("Кета", "Лососёвые", "fish", 900),
    ("Треска", "Белая рыба", "fish", 700),
    ("Палтус", "Белая рыба", "fish", 1500),
    ("Минтай", "Белая рыба", "fish", 350),
    ("Судак", "Белая рыба", "fish", 900),
    ("Скумбрия", "Морская рыба", "fish", 550),
    ("Сельдь атлантическая", "Морская рыба", "fish", 400),
    ("Тунец", "Морская рыба", "fish", 2200),
    ("Угорь", "Деликатесы", "fish", 3500),
    ("Печень трески", "Консервы", "other", 1500),
    ("Крабовые палочки", "Полуфабрикаты", "other", 400),
]
PROCESSING = {
    "caviar": ["зернистая", "слабосолёная", "пастеризованная", "малосольная", "премиум"],
    "shrimp": ["с/м", "в/м", "варёно-мороженые", "очищенные", "в маринаде"],
    "mollusc": ["с/м", "в/м", "варёный", "копчёный", "маринованный"],
    "crab": ["варёно-мороженый", "с/м", "живой", "охлаждённый"],
    "fish": ["с/м", "охлаждённый", "холодного копчения", "горячего копчения", "слабосолёный", "пряного посола"],
    "other": ["натуральная", "в масле", "классические"],
}
CUTS = {
    "caviar": [""],
    "shrimp": ["16/20", "21/25", "31/40", "50/70", "90/120"],
    "mollusc": ["", "филе", "тушка", "мясо", "щупальца"],
    "crab": ["", "фаланги", "клешни", "мясо"],
    "fish": ["", "филе", "филе на коже", "стейк", "тушка", "ломтики", "спинка"],
    "other": [""],
}
PACKS = {
    "caviar": ["100 г", "140 г", "250 г", "500 г", "1 кг"],
    "shrimp": ["500 г", "800 г", "1 кг", "2 кг"],
    "mollusc": ["250 г", "500 г", "1 кг", "2 кг"],
    "crab": ["500 г", "1 кг", "2 кг"],
    "fish": ["200 г", "300 г", "500 г", "1 кг"],
    "other": ["120 г", "200 г", "230 г", "500 г"],
}
BRANDS = ["Русское море", "Меридиан", "Балтийский берег", "Дальморепродукт", "Камчатка-Фиш", "Норд Фиш", ""]
COUNTRIES = ["Россия", "Россия", "Россия", "Норвегия", "Чили", "Фарерские острова", "Вьетнам", "Аргентина"]


def _kg(pack: str) -> Decimal:
    amount, unit = pack.split()
    return Decimal(amount) if unit == "кг" else Decimal(amount) / 1000


def _price(rng: random.Random, per_kg: int, pack: str) -> int:
    value = Decimal(per_kg) * _kg(pack) * Decimal(rng.uniform(0.85, 1.25))
    return max(49, int(value // 10 * 10 - 1))


def _price_text(rng: random.Random, value: int) -> str:
    """Prices as Tilda writes them: mostly "1290.0000", sometimes "1 290" or "1290.00"."""
    style = rng.random()
    if style < 0.8:
        return f"{value}.0000"
    if style < 0.9:
        return f"{value:,}".replace(",", " ")
    return f"{value}.00"


def _quantity_text(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.4:
        return ""  # not tracked
    if style < 0.45:
        return "-1"  # not tracked either
    if style < 0.5:
        return "0"
    return str(rng.randint(1, 60))


def _parse_number(text: str) -> Decimal:
    return Decimal(text.replace(" ", "")).quantize(Decimal("0.01"))


@dataclass
class Unit:
    """One catalog row the store's data produces: a product, or an edition (a variant)."""

    external_id: str
    product: dict
    edition: dict | None = None

    @property
    def holder(self) -> dict:
        return self.edition if self.edition is not None else self.product


@dataclass
class StoreData:
    products: list[dict]
    parts: list[dict]
    units: list[Unit]

    @property
    def rows(self) -> int:
        return len(self.units)

    @property
    def variants(self) -> int:
        return sum(u.edition is not None for u in self.units)

    @property
    def families(self) -> int:
        return sum(1 for p in self.products if p["editions"])


def generate_store(rows: int, seed: int) -> StoreData:
    """Tilda products adding up to exactly `rows` catalog rows (parents and variants)."""
    rng = random.Random(seed)
    parts = [{"uid": str(531001 + i), "title": title, "sort": i} for i, title in enumerate(PARTS)]
    part_uid = {p["title"]: int(p["uid"]) for p in parts}
    products: list[dict] = []
    units: list[Unit] = []
    edition_uid = 880_000_000_000
    while len(units) < rows:
        number = len(products) + 1
        uid = 770_000_000_000 + number
        title, part, kind, per_kg = rng.choice(SPECIES)
        processing, cut = rng.choice(PROCESSING[kind]), rng.choice(CUTS[kind])
        name = " ".join(w for w in (title, cut, processing) if w)
        brand = rng.choice(BRANDS)
        left = rows - len(units)
        editions_count = rng.choice((2, 2, 3)) if rng.random() < 0.1 and left >= 3 else 0
        editions_count = min(editions_count, left - 1)
        partuids = [part_uid[part]]
        if rng.random() < 0.15:
            partuids.append(part_uid[rng.choice(("Акции", "Новинки", "Копчёная рыба"))])
        sku = f"TB-{number:06d}"
        characteristics = [{"title": "Страна", "value": rng.choice(COUNTRIES)}]
        if brand:
            characteristics.append({"title": "Производитель", "value": brand})
        product = {
            "uid": uid,
            "title": "",
            "sku": sku,
            "descr": f"{title} {processing}. Доставка по Москве и области.",
            "text": (
                f"<p>{name}, <b>{brand or 'собственный импорт'}</b>.</p>"
                f"<p>Хранение: при температуре не выше −18 °C. Срок годности 12 месяцев.</p>"
            ),
            "price": "",
            "priceold": "",
            "quantity": "",
            "mark": rng.choice(("", "", "", "Хит", "Новинка")),
            "portion": 0,
            "unit": "",
            "single": "",
            "url": f"https://shop.example/tproduct/{uid}-{number}",
            "gallery": json.dumps([{"img": f"https://static.tildacdn.example/tild{uid}/photo.jpg"}]),
            "buttonlink": "",
            "json_options": "",
            "sort": 1000 + rng.randint(0, 50) * 10,
            "partuids": json.dumps(partuids),
            "externalid": f"ext{uid}",
            "characteristics": characteristics,
            "editions": [],
        }
        units.append(Unit(str(uid), product))
        if editions_count:
            packs = sorted(rng.sample(PACKS[kind], min(editions_count, len(PACKS[kind]))), key=_kg)
            product["title"] = name
            product["json_options"] = json.dumps(
                [{"title": "Фасовка", "params": {"view": "buttons"}, "values": packs}], ensure_ascii=False
            )
            for k, pack in enumerate(packs, start=1):
                edition_uid += 1
                edition = {
                    "uid": edition_uid,
                    "externalid": f"e{edition_uid}",
                    "sku": f"{sku}-{k}",
                    "price": _price_text(rng, _price(rng, per_kg, pack)),
                    "priceold": "",
                    "quantity": _quantity_text(rng),
                    "img": "",
                    "Фасовка": pack,
                }
                product["editions"].append(edition)
                units.append(Unit(str(edition_uid), product, edition))
            product["price"] = product["editions"][0]["price"]
        else:
            pack = rng.choice(PACKS[kind])
            price = _price(rng, per_kg, pack)
            product["title"] = f"{name}, {pack}"
            product["price"] = _price_text(rng, price)
            if rng.random() < 0.2:
                product["priceold"] = f"{int(price * 1.2) // 10 * 10}.0000"
            product["quantity"] = _quantity_text(rng)
            characteristics.insert(0, {"title": "Фасовка", "value": pack})
        products.append(product)
    return StoreData(products=products, parts=parts, units=units)


def change_prices(store: "FakeStore", share: float, seed: int) -> dict[str, Decimal]:
    """Raise the price of `share` of the catalog rows; the new price of each, by external id.

    A row is a simple product, the parent of a family (its own product-level
    price) or one edition (a variant): each counts once, as in the catalog.
    """
    rng = random.Random(seed)
    chosen = rng.sample(store.data.units, round(len(store.data.units) * share))
    changed = {}
    with store.lock:
        for unit in chosen:
            holder = unit.holder
            old = _parse_number(holder["price"])
            new = (old + max(10, old * Decimal("0.05"))).quantize(Decimal("1"))
            holder["price"] = f"{new}.0000"
            changed[unit.external_id] = new.quantize(Decimal("0.01"))
        store.pages.clear()
    return changed


def change_descriptions(store: "FakeStore", line: str) -> None:
    """Add a line to every product's short description: every catalog row changes, variants too."""
    with store.lock:
        for product in store.data.products:
            product["descr"] += line
        store.pages.clear()


# --- the fake store's API -----------------------------------------------------------------


@dataclass
class FakeStore:
    data: StoreData
    lock: threading.Lock = field(default_factory=threading.Lock)
    pages: dict = field(default_factory=dict)  # (slice, size) -> rendered body
    requests: int = 0

    def page(self, slice_number: int, size: int) -> bytes:
        with self.lock:
            self.requests += 1
            key = (slice_number, size)
            if key not in self.pages:
                products = self.data.products
                start = (slice_number - 1) * size
                more = start + size < len(products)
                body = {
                    "partuid": int(PARTUID),
                    "total": len(products),
                    "products": products[start : start + size],
                    "parts": self.data.parts,
                    "nextslice": slice_number + 1 if more else "",
                }
                self.pages[key] = json.dumps(body, ensure_ascii=False).encode()
            return self.pages[key]


class TildaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' Session expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls

    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != API_PATH:
            return self._answer(404, b"not found", "text/plain")
        if query.get("storepartuid") != PARTUID:
            # Tilda answers this as plain text with status 200.
            return self._answer(200, b"Wrong storepartuid", "text/plain")
        try:
            slice_number = max(1, int(query.get("slice", "1")))
            size = max(1, min(int(query.get("size", "36")), 2000))
        except ValueError:
            return self._answer(400, b"bad slice or size", "text/plain")
        body = self.server.store.page(slice_number, size)
        return self._answer(200, body, "application/json; charset=utf-8")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def start_server(store: FakeStore) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TildaHandler)
    server.daemon_threads = True
    server.store = store
    threading.Thread(target=server.serve_forever, name="fake-tilda", daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}{API_PATH}"


# --- database -------------------------------------------------------------------------------


def empty_catalog() -> None:
    """No products, categories or scrape runs: every measured full import starts from nothing.

    CASCADE also empties the tables that point at them (the products a chat
    message mentioned): this is a bench database.
    """
    from django.db import connection

    from catalog.models import Category, Product, ScrapeRun

    tables = [Product.categories.through, Product, Category, ScrapeRun]
    with connection.cursor() as cursor:
        names = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in tables)
        cursor.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


# --- measured runs ----------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    mode: str
    seconds: float
    fetch_seconds: float
    queries: int
    requests: int
    run: object  # the ScrapeRun

    @property
    def per_second(self) -> float:
        return self.run.seen / self.seconds if self.seconds else 0.0


def timed_run(name: str, mode: str, store: FakeStore) -> Result:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from catalog.models import ScrapeRun
    from catalog.scrape import run_scrape

    last_page = 0.0

    def progress(page):
        nonlocal last_page
        last_page = time.perf_counter()

    requests_before = store.requests
    reset_queries()
    start = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        run = run_scrape(mode=mode, triggered_by="bench", progress=progress)
    elapsed = time.perf_counter() - start
    count = len(queries)
    if count >= connection.queries_limit:
        print(f"warning: {name} made at least {count} queries, more than Django logs", file=sys.stderr)
    result = Result(
        name=name,
        mode=mode,
        seconds=elapsed,
        fetch_seconds=(last_page - start) if last_page else elapsed,
        queries=count,
        requests=store.requests - requests_before,
        run=run,
    )
    r = run
    print(
        f"{name}: {elapsed:.1f} s (fetch {result.fetch_seconds:.1f} s + store {elapsed - result.fetch_seconds:.1f} s), "
        f"{result.per_second:.0f} products/s, {count} queries, {r.pages} pages ({result.requests} requests); "
        f"status {r.status}, seen {r.seen}, created {r.created}, updated {r.updated}, unchanged {r.unchanged}, "
        f"marked unavailable {r.marked_unavailable}, skipped {r.skipped}"
    )
    if r.status != ScrapeRun.Status.OK:
        print(f"  run failed: {r.error}", file=sys.stderr)
    return result


class Checks:
    def __init__(self):
        self.items: list[tuple[str, bool, str]] = []

    def add(self, label: str, ok: bool, detail: str = "") -> None:
        self.items.append((label, bool(ok), detail))

    def equal(self, label: str, got, expected) -> None:
        self.add(label, got == expected, f"{got}" if got == expected else f"got {got}, expected {expected}")

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.items)

    def print(self) -> None:
        print("\n== checks")
        for label, ok, detail in self.items:
            print(f"  [{'ok' if ok else 'FAIL'}] {label}: {detail}")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def pages_for(store: StoreData, page_size: int) -> int:
    return -(-len(store.products) // page_size)


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=20_000, help="catalog rows, variants included (20000)")
    parser.add_argument("--small", type=int, default=5_000, help="size of the query-scaling import (5000)")
    parser.add_argument("--page-size", type=int, default=100, help="products per Tilda page (100)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--worst-case",
        action="store_true",
        help="also time a prices run with every price changed and a full import with every product changed",
    )
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        print(f"bench/scrape.py measures PostgreSQL; DATABASE_URL is {url!r}.", file=sys.stderr)
        print(f"Set DATABASE_URL to a PostgreSQL database, e.g. {DEFAULT_DATABASE_URL}", file=sys.stderr)
        return 2
    name = unquote(urlsplit(url).path.lstrip("/"))
    if "bench" not in name:
        print(f"bench/scrape.py empties the catalog of its database; {name!r} is no bench database.", file=sys.stderr)
        print(f"Use a database named *bench*, e.g. {DEFAULT_DATABASE_URL}", file=sys.stderr)
        return 2
    ensure_database(url)

    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from catalog.models import Category, Product

    if connection.vendor != "postgresql":
        print(f"bench/scrape.py needs PostgreSQL, the settings give {connection.vendor}.", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    print(
        f"database {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']} "
        f"(PostgreSQL {server_version}); Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {_load()} (other work on the machine shows in the timings)"
    )

    started = time.perf_counter()
    data = generate_store(args.products, args.seed)
    store = FakeStore(data)
    server, api_url = start_server(store)
    settings.TILDA_API_URL = api_url
    settings.TILDA_STORE_PARTUID = [PARTUID]
    settings.TILDA_RECID = RECID
    settings.TILDA_PAGE_SIZE = args.page_size
    production_delay = settings.SCRAPER_PAGE_DELAY_S
    settings.SCRAPER_PAGE_DELAY_S = 0
    pages = pages_for(data, args.page_size)
    print(
        f"fake Tilda store at {api_url}: {len(data.products)} Tilda products ({data.families} of them with 2-3 "
        f"editions) = {data.rows} catalog products ({data.variants} of them variants), {len(data.parts)} parts, "
        f"{pages} pages of {args.page_size}; generated in {time.perf_counter() - started:.1f} s"
    )
    print(
        f"polite delay OFF for the bench: SCRAPER_PAGE_DELAY_S = 0 (configured: {production_delay} s, which would "
        f"add {(pages - 1) * production_delay:.0f} s of sleeping to each run of {pages} pages)"
    )

    checks = Checks()
    empty_catalog()
    print(f"\n== {data.rows} products")
    full = timed_run("1. full import, empty catalog", "full", store)
    checks.equal("run 1 created every row", full.run.created, data.rows)
    checks.equal("run 1 stored rows", Product.objects.count(), data.rows)
    checks.equal("run 1 stored variants", Product.objects.filter(parent__isnull=False).count(), data.variants)
    checks.equal("run 1 categories", Category.objects.count(), len(data.parts))
    checks.equal("run 1 pages", full.run.pages, pages)

    again = timed_run("2. full import, nothing changed", "full", store)
    checks.equal(
        "run 2 created/updated/unchanged",
        (again.run.created, again.run.updated, again.run.unchanged),
        (0, 0, data.rows),
    )
    checks.equal("run 2 marked unavailable", again.run.marked_unavailable, 0)

    before = dict(Product.objects.values_list("external_id", "price"))
    changed = change_prices(store, CHANGED_SHARE, args.seed + 1)
    changed_variants = sum(1 for u in data.units if u.edition is not None and u.external_id in changed)
    print(
        f"changed {len(changed)} prices on the server ({len(changed) - changed_variants} products or family parents,"
        f" {changed_variants} variants)"
    )
    prices = timed_run("3. prices run, 10% changed", "prices", store)
    after = dict(Product.objects.values_list("external_id", "price"))
    differ = {key for key, price in after.items() if before.get(key) != price}
    wrong = [key for key in changed if after.get(key) != changed[key]]
    print(f"products whose price changed in the catalog: {len(differ)} (changed on the server: {len(changed)})")
    checks.equal("run 3 prices changed in the catalog", len(differ), len(changed))
    checks.add("run 3 the changed products are the ones changed", differ == set(changed), f"{len(differ)}")
    checks.equal("run 3 new prices stored", len(wrong), 0)
    checks.equal(
        "run 3 updated/unchanged", (prices.run.updated, prices.run.unchanged), (len(changed), data.rows - len(changed))
    )
    checks.equal(
        "run 3 price_changed_at set",
        Product.objects.filter(price_changed_at__gte=prices.run.started_at).count(),
        len(changed),
    )

    runs = [(full, TARGET_FULL_S), (again, TARGET_UNCHANGED_S), (prices, TARGET_PRICES_S)]
    if args.worst_case:
        everything = change_prices(store, 1.0, args.seed + 2)
        print(f"\nchanged every price on the server ({len(everything)})")
        all_prices = timed_run("4. prices run, every price changed", "prices", store)
        stored = dict(Product.objects.values_list("external_id", "price"))
        checks.equal("run 4 updated", all_prices.run.updated, data.rows)
        checks.equal("run 4 new prices stored", sum(stored[k] != v for k, v in everything.items()), 0)
        line = " Новый урожай."
        change_descriptions(store, line)
        print(f"added {line.strip()!r} to every product's short description on the server")
        all_full = timed_run("5. full import, every product changed", "full", store)
        checks.equal(
            "run 5 created/updated/unchanged",
            (all_full.run.created, all_full.run.updated, all_full.run.unchanged),
            (0, data.rows, 0),
        )
        checks.equal(
            "run 5 descriptions stored", Product.objects.filter(short_description__endswith=line).count(), data.rows
        )
        runs += [(all_prices, TARGET_PRICES_S), (all_full, TARGET_FULL_S)]

    # The same import at another size and another page size: what the query count follows.
    scaling = [(data, args.page_size, full)]
    small_data = generate_store(args.small, args.seed)
    store.data = small_data
    store.pages.clear()
    for page_size in (args.page_size, max(1, args.page_size // 2)):
        settings.TILDA_PAGE_SIZE = page_size
        empty_catalog()
        print(f"\n== {small_data.rows} products, pages of {page_size}")
        result = timed_run(f"full import of {small_data.rows}, empty catalog", "full", store)
        checks.equal(f"{small_data.rows} in pages of {page_size}: created", result.run.created, small_data.rows)
        scaling.insert(-1, (small_data, page_size, result))
    settings.TILDA_PAGE_SIZE = args.page_size
    server.shutdown()
    server.server_close()

    checks.print()

    from catalog.services import BATCH_SIZE

    print("\n== SQL queries of a full import into an empty catalog")
    print(
        f"{'products':>9}{'page size':>11}{'pages':>7}{'batches':>9}{'queries':>9}{'queries/page':>14}"
        f"{'queries/1000 products':>23}{'queries/batch':>15}"
    )
    batches = {}
    for store_data, page_size, result in scaling:
        # import_products stores parents, then variants, in batches of BATCH_SIZE.
        parents = store_data.rows - store_data.variants
        batches[store_data.rows] = -(-parents // BATCH_SIZE) + -(-store_data.variants // BATCH_SIZE)
        print(
            f"{store_data.rows:>9}{page_size:>11}{result.run.pages:>7}{batches[store_data.rows]:>9}{result.queries:>9}"
            f"{result.queries / result.run.pages:>14.2f}{result.queries * 1000 / store_data.rows:>23.2f}"
            f"{result.queries / batches[store_data.rows]:>15.2f}"
        )
    small, big = scaling[0][2], scaling[-1][2]
    per_batch = (big.queries - small.queries) / max(1, batches[data.rows] - batches[small_data.rows])
    fixed = big.queries - per_batch * batches[data.rows]
    print(
        f"{data.rows}/{small_data.rows} products = {data.rows / small_data.rows:.1f}x: pages "
        f"{big.run.pages / small.run.pages:.1f}x, queries {big.queries / small.queries:.2f}x; halving the page size "
        f"changes queries by {scaling[1][2].queries - small.queries:+d}. Queries = {fixed:.0f} + {per_batch:.1f} per "
        f"batch of {BATCH_SIZE} products: none per product or per page."
    )

    print(f"\n== {data.rows} products ({data.variants} of them variants), pages of {args.page_size}, no page delay")
    header = f"{'run':<40}{'wall s':>8}{'products/s':>12}{'queries':>9}{'pages':>7}"
    header += f"{'created':>9}{'updated':>9}{'unchanged':>11}{'target':>10}{'result':>8}"
    print(header)
    met = True
    for result, target in runs:
        r = result.run
        ok = result.seconds < target and r.status == "ok"
        met &= ok
        print(
            f"{result.name:<40}{result.seconds:>8.1f}{result.per_second:>12.0f}{result.queries:>9}{r.pages:>7}"
            f"{r.created:>9}{r.updated:>9}{r.unchanged:>11}{'< ' + format(target, '.0f') + ' s':>10}"
            f"{'met' if ok else 'MISSED':>8}"
        )
    print(
        f"checks {'passed' if checks.ok else 'FAILED'}; bench took {time.perf_counter() - started:.0f} s; "
        f"load average {_load()}"
    )
    return 0 if met and checks.ok else 1


if __name__ == "__main__":
    sys.exit(main())
