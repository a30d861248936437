"""Entry points for the django-q2 worker; the work itself is in catalog.scrape."""

import logging

from catalog.models import ScrapeRun
from catalog.scrape import ScrapeAlreadyRunning, execute_scrape_run, run_scrape, scrape_is_configured

logger = logging.getLogger(__name__)


def scrape(run_id: int) -> str:
    run = ScrapeRun.objects.get(pk=run_id)
    return execute_scrape_run(run).status


def scheduled_scrape(mode: str) -> str:
    if not scrape_is_configured():
        logger.info("scheduled %s scrape skipped: TILDA_STORE_PARTUID is not set", mode)
        return "not configured"
    try:
        return run_scrape(mode=mode, triggered_by="schedule").status
    except ScrapeAlreadyRunning as exc:
        logger.info("scheduled %s scrape skipped: %s", mode, exc)
        return "skipped"
