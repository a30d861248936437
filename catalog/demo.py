"""The demo seafood store that ships with the repository (Tilda pages + FAQ)."""

import json
from pathlib import Path

from catalog.importers.records import ImportReport
from catalog.importers.tilda import parse_page
from catalog.models import Source
from catalog.services import import_products, load_faq

DEMO_DIR = Path(__file__).resolve().parent / "demo_store"


def load_demo_store(directory: Path = DEMO_DIR) -> tuple[ImportReport, tuple[int, int]]:
    """Import the demo pages through the Tilda parser, then the FAQ."""
    products, categories = [], {}
    report = ImportReport(source=Source.TILDA)
    for page_file in sorted(directory.glob("tilda_page_*.json")):
        page = parse_page(page_file.read_text(encoding="utf-8"))
        products += page.products
        categories.update({c.external_id: c for c in page.categories})
        report.skipped += page.skipped
    import_products(
        source=Source.TILDA,
        products=products,
        categories=list(categories.values()),
        mark_missing_unavailable=True,
        report=report,
    )
    faq = json.loads((directory / "faq.json").read_text(encoding="utf-8"))
    return report, load_faq(faq)
