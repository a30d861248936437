"""manage.py replay_spool: replay the webhook events kept while the database was down.

Run at start-up, before the web server takes requests (docker-compose.yml,
`make run`), so what a stopped node kept is answered; the worker's sweep and
the web process's catch-up thread replay the rest (integrations.spool).
"""

from django.core.management.base import BaseCommand

from integrations import spool


class Command(BaseCommand):
    help = "Replay the webhook events kept in the spool while the database was down."

    def handle(self, *args, **options):
        result = spool.replay()
        self.stdout.write(
            f"spool {spool.directory()}: {result.replayed} replayed, {result.refused} refused, "
            f"{result.failed} set aside, {result.pending} left"
        )
        if result.stopped:
            self.stderr.write("replay stopped early (the database failed, or another replay is running)")
