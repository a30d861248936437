from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from catalog.importers.csv_file import CsvFormatError
from catalog.services import import_csv


class Command(BaseCommand):
    help = (
        "Import products from a CSV file (columns sku, title, category, price, quantity, description, url, image), "
        "updating existing products by SKU."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="CSV file in UTF-8 or Windows-1251, with ; or , between cells.")

    def handle(self, *args, file: Path, **options):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(_("Cannot read %(file)s: %(error)s") % {"file": file, "error": exc.strerror}) from exc
        try:
            report = import_csv(data)
        except CsvFormatError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            _("Created: %(created)s, updated: %(updated)s, unchanged: %(unchanged)s, skipped: %(skipped)s.")
            % {
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": len(report.skipped),
            }
        )
        for row in report.skipped:
            self.stdout.write(_("line %(line)s: %(reason)s") % {"line": row.ref, "reason": row.reason})
