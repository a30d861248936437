"""The Bitrix24 catalog import as runs: claimed, read whole, checked, then applied in one transaction.

The Tilda scrape's rules (catalog/scrape.py), on ScrapeRun rows of source
"bitrix24": one active run per source (the database refuses a second); a run
that fails midway changes nothing and is recorded as failed with its reason;
a run that sees far fewer products than the catalog holds (below
SCRAPER_MIN_RATIO) is refused unless forced; products gone from Bitrix24 are
marked unavailable, never deleted. Each run reads everything, prices and stock
included, so there is one kind of run and one schedule (B24_CATALOG_INTERVAL_S),
which does nothing unless B24_CATALOG_IMPORT is on; `manage.py
b24_import_catalog` runs one at once either way.

The portal is the one orders go to (orders.push.clients_for): the app's
install for a member id, else the webhook, else the first installed portal.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from catalog.importers.records import ImportReport
from catalog.models import ScrapeRun, Source
from catalog.scrape import ScrapeAlreadyRunning, finish_run, queue_scrape_run, suspicious_shrink
from catalog.services import import_products
from integrations.bitrix24.catalog import fetch_catalog
from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error
from orders.push import clients_for

logger = logging.getLogger(__name__)

SCHEDULE = "catalog: Bitrix24 import"


def run_import(
    *, force: bool = False, triggered_by: str = "", member_id: str = "", client: Bitrix24Client | None = None
) -> ScrapeRun:
    """Claim the source and run an import in this process (the command, the schedule)."""
    run = queue_import_run(force=force, triggered_by=triggered_by)
    return execute_import_run(run, member_id=member_id, client=client)


def queue_import_run(*, force: bool = False, triggered_by: str = "") -> ScrapeRun:
    """A new run of the source, or ScrapeAlreadyRunning."""
    return queue_scrape_run(mode=ScrapeRun.Mode.FULL, force=force, triggered_by=triggered_by, source=Source.BITRIX24)


def execute_import_run(run: ScrapeRun, *, member_id: str = "", client: Bitrix24Client | None = None) -> ScrapeRun:
    """Read the whole catalog, then apply it in one go. Never raises for a bad run."""
    run.status = ScrapeRun.Status.RUNNING
    run.save(update_fields=["status"])
    try:
        client = client or clients_for(member_id).reads
        fetched = fetch_catalog(client, iblock_id=_iblock_id(), store_ids=_store_ids())
        run.pages = fetched.requests
        report = ImportReport(source=Source.BITRIX24, skipped=fetched.skipped)
        refusal = suspicious_shrink(len(fetched.products), forced=run.forced, source=Source.BITRIX24, origin="Bitrix24")
        if refusal:
            report.seen = len(fetched.products)
            finish_run(run, report, ScrapeRun.Status.REFUSED, refusal)
            return run
        import_products(
            source=Source.BITRIX24,
            products=fetched.products,
            categories=fetched.categories,
            mark_missing_unavailable=True,
            report=report,
        )
        finish_run(run, report, ScrapeRun.Status.OK)
        logger.info(
            "bitrix24 catalog run #%s (%s API): %s products in %s requests",
            run.pk,
            fetched.api,
            report.seen,
            fetched.requests,
        )
    except (Bitrix24Error, ValueError) as exc:
        logger.warning("bitrix24 catalog run #%s failed: %s", run.pk, exc)
        finish_run(run, ImportReport(source=Source.BITRIX24), ScrapeRun.Status.FAILED, str(exc))
    except Exception as exc:
        logger.exception("bitrix24 catalog run #%s failed", run.pk)
        finish_run(run, ImportReport(source=Source.BITRIX24), ScrapeRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
    return run


def scheduled_import() -> str:
    """The periodic task."""
    if not settings.B24_CATALOG_IMPORT:
        return "off"
    try:
        return run_import(triggered_by="schedule").status
    except ScrapeAlreadyRunning as exc:
        logger.info("scheduled bitrix24 catalog import skipped: %s", exc)
        return "skipped"


def ensure_catalog_import_schedule() -> None:
    """The periodic run, created once (and idle while B24_CATALOG_IMPORT is off); staff may edit it in admin."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=SCHEDULE,
        defaults={
            "func": "integrations.bitrix24.catalog_tasks.scheduled_import",
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, settings.B24_CATALOG_INTERVAL_S // 60),
            "repeats": -1,
            "next_run": timezone.now() + timedelta(seconds=settings.B24_CATALOG_INTERVAL_S),
        },
    )


def _iblock_id() -> int | None:
    value = str(settings.B24_CATALOG_IBLOCK_ID).strip()
    if value and not value.isdigit():
        raise ValueError(f"B24_CATALOG_IBLOCK_ID {value!r} is not a number")
    return int(value) if value else None


def _store_ids() -> list[int]:
    values = [str(v).strip() for v in settings.B24_CATALOG_STORE_IDS if str(v).strip()]
    wrong = [v for v in values if not v.isdigit()]
    if wrong:
        raise ValueError(f"B24_CATALOG_STORE_IDS has ids that are not numbers: {', '.join(wrong)}")
    return [int(v) for v in values]
