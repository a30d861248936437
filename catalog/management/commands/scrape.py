from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.importers.tilda import TildaError, fetch_store_ids
from catalog.models import ScrapeRun
from catalog.scrape import ScrapeAlreadyRunning, run_scrape, run_summary


class Command(BaseCommand):
    help = "Import the catalog from the Tilda shop now: everything (--full, default) or prices and stock (--prices)."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--full", action="store_const", dest="mode", const=ScrapeRun.Mode.FULL)
        mode.add_argument("--prices", action="store_const", dest="mode", const=ScrapeRun.Mode.PRICES)
        mode.add_argument(
            "--discover", metavar="URL", help="Print the store ids found on a shop page, for the settings."
        )
        parser.add_argument(
            "--force", action="store_true", help="Apply a full import even if the store returned far fewer products."
        )

    def handle(self, *args, mode=None, discover=None, force=False, **options):
        if discover:
            return self._discover(discover)
        mode = mode or ScrapeRun.Mode.FULL
        with tqdm(desc="pages", unit="page", disable=options["verbosity"] == 0, file=self.stderr) as bar:

            def progress(page):
                bar.update(1)
                bar.set_postfix(products=len(page.products))

            try:
                run = run_scrape(mode=mode, force=force, triggered_by="command", progress=progress)
            except ScrapeAlreadyRunning as exc:
                raise CommandError(str(exc)) from None
        self._summary(run)
        if run.status != ScrapeRun.Status.OK:
            raise CommandError(f"{run.get_status_display()}: {run.error}")

    def _summary(self, run: ScrapeRun) -> None:
        for line in run_summary(run):
            self.stdout.write(line)

    def _discover(self, url: str) -> None:
        try:
            pairs = fetch_store_ids(url)
        except TildaError as exc:
            raise CommandError(str(exc)) from None
        if not pairs:
            raise CommandError(f"no Tilda store block found on {url}")
        for partuid, recid in pairs:
            self.stdout.write(f"storepartuid={partuid} recid={recid}")
        self.stdout.write("")
        self.stdout.write(f"TILDA_STORE_PARTUID={','.join(dict.fromkeys(p for p, _ in pairs))}")
        self.stdout.write(f"TILDA_RECID={pairs[0][1]}")
