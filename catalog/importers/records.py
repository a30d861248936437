"""What an importer hands to catalog.services: plain records, no ORM objects."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass
class CategoryRecord:
    external_id: str
    title: str
    sort_order: int = 0
    parent_external_id: str = ""


@dataclass
class ProductRecord:
    external_id: str
    title: str
    sku: str = ""
    parent_external_id: str = ""
    short_description: str = ""
    description: str = ""
    price: Decimal | None = None
    old_price: Decimal | None = None
    currency: str = "RUB"
    quantity: int | None = None
    is_available: bool = True
    unit: str = ""
    url: str = ""
    image_url: str = ""
    characteristics: dict = field(default_factory=dict)
    brand: str = ""
    category_external_ids: list[str] = field(default_factory=list)
    # Title-only category names, for sources without category ids (CSV).
    category_titles: list[str] = field(default_factory=list)
    sort_order: int = 0


@dataclass
class SkippedRow:
    ref: str  # a line number, a uid: whatever lets a person find the row
    reason: str


@dataclass
class ImportReport:
    source: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seen: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    marked_unavailable: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)

    def skip(self, ref: str, reason: str) -> None:
        self.skipped.append(SkippedRow(ref=str(ref), reason=reason))

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "seen": self.seen,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "marked_unavailable": self.marked_unavailable,
            "skipped": [{"ref": s.ref, "reason": s.reason} for s in self.skipped],
        }
