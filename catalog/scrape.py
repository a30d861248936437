"""Keeping the catalog in step with the store's Tilda shop.

A run reads every page first and applies the import only when all of them
arrived, in one transaction: a run that fails midway changes nothing. Each
run is a ScrapeRun row; the database allows one queued or running run per
source, so runs never overlap whichever process starts them.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.importers.records import CategoryRecord, ImportReport, ProductRecord, SkippedRow
from catalog.importers.tilda import TildaClient, TildaError, TildaPage
from catalog.models import Product, ScrapeRun, Source
from catalog.services import BATCH_SIZE, import_products, in_batches, write_fields

logger = logging.getLogger(__name__)

# Skipped products kept on a run for staff to read; the count is always exact.
MAX_SKIPPED_DETAILS = 200
ACTIVE = (ScrapeRun.Status.QUEUED, ScrapeRun.Status.RUNNING)

Progress = Callable[[TildaPage], None]


class ScrapeAlreadyRunning(Exception):
    def __init__(self, active: ScrapeRun | None):
        self.active = active
        name = f"#{active.pk} ({active.status})" if active else ""
        super().__init__(f"another scrape run {name} is active".replace("  ", " "))


class ScrapeNotConfigured(Exception):
    pass


def queue_scrape_run(
    *, mode: str, force: bool = False, triggered_by: str = "", source: str = Source.TILDA
) -> ScrapeRun:
    """Claim the source for a new run, or raise ScrapeAlreadyRunning.

    Every import that reads a whole outside catalog (Tilda, Bitrix24) runs as
    ScrapeRun rows of its source, with these rules: one active run per source,
    an abandoned one expired, a shrunk catalog refused unless forced.
    """
    expire_stale_runs(source)
    try:
        with transaction.atomic():
            return ScrapeRun.objects.create(source=source, mode=mode, forced=force, triggered_by=triggered_by)
    except IntegrityError:
        raise ScrapeAlreadyRunning(active_scrape_run(source)) from None


def active_scrape_run(source: str = Source.TILDA) -> ScrapeRun | None:
    return ScrapeRun.objects.filter(source=source, status__in=ACTIVE).first()


def expire_stale_runs(source: str) -> None:
    """A run whose worker died would hold the source forever; let it go."""
    cutoff = timezone.now() - timedelta(seconds=settings.SCRAPER_STALE_AFTER_S)
    ScrapeRun.objects.filter(source=source, status__in=ACTIVE, started_at__lt=cutoff).update(
        status=ScrapeRun.Status.FAILED,
        finished_at=timezone.now(),
        error="abandoned: still active after SCRAPER_STALE_AFTER_S (worker stopped?)",
    )


def execute_scrape_run(run: ScrapeRun, *, client: TildaClient | None = None, progress: Progress | None = None):
    """Fetch every page, then apply the import in one go. Never raises for a bad run."""
    run.status = ScrapeRun.Status.RUNNING
    run.save(update_fields=["status"])
    try:
        products, categories, skipped, pages = _fetch_catalog(client or TildaClient.from_settings(), progress)
        run.pages = pages
        report = ImportReport(source=Source.TILDA, skipped=skipped)
        if run.mode == ScrapeRun.Mode.FULL:
            refusal = suspicious_shrink(len(products), forced=run.forced)
            if refusal:
                report.seen = len(products)
                finish_run(run, report, ScrapeRun.Status.REFUSED, refusal)
                return run
            import_products(
                source=Source.TILDA,
                products=products,
                categories=categories,
                mark_missing_unavailable=True,
                report=report,
            )
        else:
            update_prices(source=Source.TILDA, products=products, report=report)
        finish_run(run, report, ScrapeRun.Status.OK)
    except (TildaError, ScrapeNotConfigured) as exc:
        logger.warning("scrape run #%s failed: %s", run.pk, exc)
        finish_run(run, ImportReport(source=Source.TILDA), ScrapeRun.Status.FAILED, str(exc))
    except Exception as exc:
        logger.exception("scrape run #%s failed", run.pk)
        finish_run(run, ImportReport(source=Source.TILDA), ScrapeRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
    return run


def run_scrape(
    *, mode: str, force: bool = False, triggered_by: str = "", client=None, progress: Progress | None = None
) -> ScrapeRun:
    """Queue and execute a run in this process (the command, the scheduled task)."""
    run = queue_scrape_run(mode=mode, force=force, triggered_by=triggered_by)
    return execute_scrape_run(run, client=client, progress=progress)


def _fetch_catalog(client: TildaClient, progress: Progress | None):
    partuids = [p.strip() for p in settings.TILDA_STORE_PARTUID if p.strip()]
    if not partuids:
        raise ScrapeNotConfigured("TILDA_STORE_PARTUID is not set; `manage.py scrape --discover <shop URL>` finds it")
    products: dict[str, ProductRecord] = {}
    categories: dict[str, CategoryRecord] = {}
    skipped: list[SkippedRow] = []
    pages = 0
    for partuid in partuids:
        for page in client.iter_pages(partuid=partuid, recid=settings.TILDA_RECID):
            pages += 1
            # A product shown in several store parts arrives once per part.
            products.update((p.external_id, p) for p in page.products)
            categories.update((c.external_id, c) for c in page.categories)
            skipped += page.skipped
            if progress:
                progress(page)
    return list(products.values()), list(categories.values()), skipped, pages


def suspicious_shrink(seen: int, *, forced: bool, source: str = Source.TILDA, origin: str = "the store") -> str:
    """Why a run that saw far fewer products than the catalog holds is refused ("" when it is not)."""
    if forced:
        return ""
    known = Product.objects.filter(source=source, is_available=True).count()
    if known and seen < settings.SCRAPER_MIN_RATIO * known:
        return (
            f"refused: {origin} returned {seen} products but the catalog has {known} "
            f"(below SCRAPER_MIN_RATIO={settings.SCRAPER_MIN_RATIO}); run with --force if that is right"
        )
    return ""


def finish_run(run: ScrapeRun, report: ImportReport, status: str, error: str = "") -> None:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    run.seen = report.seen
    run.created = report.created
    run.updated = report.updated
    run.unchanged = report.unchanged
    run.marked_unavailable = report.marked_unavailable
    run.skipped = len(report.skipped)
    run.skipped_details = [{"ref": s.ref, "reason": s.reason} for s in report.skipped[:MAX_SKIPPED_DETAILS]]
    run.save()


def run_summary(run: ScrapeRun, *, pages_label: str = "pages") -> list[str]:
    """A finished run in lines for a command's output: its figures, then what it skipped."""
    rows = [
        ("run", f"#{run.pk} {run.get_mode_display()}"),
        ("status", run.get_status_display()),
        (pages_label, run.pages),
        ("seen", run.seen),
        ("created", run.created),
        ("updated", run.updated),
        ("unchanged", run.unchanged),
        ("marked unavailable", run.marked_unavailable),
        ("skipped", run.skipped),
        ("time", f"{run.duration.total_seconds():.1f} s" if run.duration else "—"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    return lines + [f"  skipped {item['ref']}: {item['reason']}" for item in run.skipped_details]


_PRICE_FIELDS = ("price", "old_price", "quantity", "is_available")


@transaction.atomic
def update_prices(*, source: str, products: list[ProductRecord], report: ImportReport) -> ImportReport:
    """Prices, old prices and stock of known products, in bulk.

    Unknown products are left for the next full run; nothing else is touched.
    """
    now = timezone.now()
    for batch in in_batches(products, BATCH_SIZE):
        existing = {
            p.external_id: p
            for p in Product.objects.filter(source=source, external_id__in=[r.external_id for r in batch]).only(
                "id", "external_id", "price_changed_at", "last_seen_at", *_PRICE_FIELDS
            )
        }
        changed, unchanged = [], []
        for record in batch:
            report.seen += 1
            product = existing.get(record.external_id)
            if product is None:
                continue
            values = {
                "price": record.price,
                "old_price": record.old_price,
                "quantity": record.quantity,
                "is_available": True,
            }
            if all(getattr(product, k) == v for k, v in values.items()):
                unchanged.append(product.id)
                continue
            if (product.price, product.old_price) != (record.price, record.old_price):
                product.price_changed_at = now
            for name, value in values.items():
                setattr(product, name, value)
            product.last_seen_at = now
            changed.append(product)
        if changed:
            write_fields(changed, [*_PRICE_FIELDS, "price_changed_at", "last_seen_at"])
        if unchanged:
            Product.objects.filter(id__in=unchanged).update(last_seen_at=now)
        report.updated += len(changed)
        report.unchanged += len(unchanged)
    report.finished_at = timezone.now()
    return report


def enqueue_scrape(*, mode: str, force: bool = False, triggered_by: str = "") -> ScrapeRun:
    """Claim the source and hand the run to the task worker."""
    from django_q.tasks import async_task

    run = queue_scrape_run(mode=mode, force=force, triggered_by=triggered_by)
    try:
        async_task("catalog.tasks.scrape", run.pk, task_name=f"scrape-{run.mode}-{run.pk}")
    except Exception as exc:
        # Without a queued task the claim would block every run until it went stale.
        finish_run(run, ImportReport(source=Source.TILDA), ScrapeRun.Status.FAILED, f"not queued: {exc}")
        raise
    return run


def scrape_is_configured() -> bool:
    return any(p.strip() for p in settings.TILDA_STORE_PARTUID)


SCHEDULES = {
    ScrapeRun.Mode.FULL: ("catalog: Tilda full import", "SCRAPER_FULL_INTERVAL_S"),
    ScrapeRun.Mode.PRICES: ("catalog: Tilda prices and stock", "SCRAPER_PRICE_INTERVAL_S"),
}


def ensure_scrape_schedules() -> None:
    """The two periodic runs, created once; staff may edit them in admin afterwards."""
    from django_q.models import Schedule

    for mode, (name, interval_setting) in SCHEDULES.items():
        Schedule.objects.get_or_create(
            name=name,
            defaults={
                "func": "catalog.tasks.scheduled_scrape",
                "args": repr(str(mode)),
                "schedule_type": Schedule.MINUTES,
                "minutes": max(1, getattr(settings, interval_setting) // 60),
                "repeats": -1,
                "next_run": timezone.now() + timedelta(seconds=getattr(settings, interval_setting)),
            },
        )


def queue_first_import_if_empty() -> ScrapeRun | None:
    """A new installation gets its catalog at once rather than at the next schedule."""
    if not scrape_is_configured() or Product.objects.filter(source=Source.TILDA).exists():
        return None
    try:
        return enqueue_scrape(mode=ScrapeRun.Mode.FULL, triggered_by="first start")
    except ScrapeAlreadyRunning:
        return None
