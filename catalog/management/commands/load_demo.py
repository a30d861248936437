from django.core.management.base import BaseCommand

from catalog.demo import load_demo_store
from catalog.selectors import catalog_is_empty


class Command(BaseCommand):
    help = "Load the demo seafood catalog and FAQ that ship with the repository."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the catalog already has products.")

    def handle(self, *args, if_empty=False, **options):
        if if_empty and not catalog_is_empty():
            self.stdout.write("The catalog already has products; demo not loaded.")
            return
        report, (faq_created, faq_updated) = load_demo_store()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo catalog: {report.created} created, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped; "
                f"FAQ: {faq_created} created, {faq_updated} updated."
            )
        )
        for row in report.skipped:
            self.stdout.write(f"  skipped {row.ref}: {row.reason}")
