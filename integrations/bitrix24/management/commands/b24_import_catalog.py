"""Import the product catalog kept in Bitrix24 now, whatever B24_CATALOG_IMPORT says (it governs the schedule)."""

from django.core.management.base import BaseCommand, CommandError

from catalog.models import ScrapeRun
from catalog.scrape import ScrapeAlreadyRunning, run_summary
from integrations.bitrix24.catalog_tasks import run_import


class Command(BaseCommand):
    help = "Import the Bitrix24 product catalog now (products, sections, prices, stock); prints a summary."

    def add_arguments(self, parser):
        parser.add_argument(
            "--member-id",
            default="",
            help="Portal (member id) of an installed OAuth application; without it, the portal orders go to.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Apply the import even if Bitrix24 returned far fewer products."
        )

    def handle(self, *args, member_id="", force=False, **options):
        try:
            run = run_import(force=force, triggered_by="command", member_id=member_id)
        except ScrapeAlreadyRunning as exc:
            raise CommandError(str(exc)) from None
        for line in run_summary(run, pages_label="requests"):
            self.stdout.write(line)
        if run.status != ScrapeRun.Status.OK:
            raise CommandError(f"{run.get_status_display()}: {run.error}")
