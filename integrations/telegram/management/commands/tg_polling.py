import time

from django.core.management.base import BaseCommand, CommandError

from integrations.telegram import services
from integrations.telegram.client import TelegramClient, TelegramError
from integrations.webhooks import WebhookError

# After a failed poll (network, Telegram's 5xx), wait this long before the next.
PAUSE_S = 5


class Command(BaseCommand):
    help = (
        "Receive a Telegram bot's updates by long polling (getUpdates) into the same pipeline as the webhook, "
        "for a machine without a public HTTPS address. The bot must have no webhook (tg_delete_webhook)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default=services.DEFAULT, help="bot account key (default: the env's bot)")
        parser.add_argument("--timeout", type=int, default=50, help="seconds Telegram holds each poll open")
        parser.add_argument("--once", action="store_true", help="one poll, then exit")

    def handle(self, *args, account, timeout, once, **options):
        try:
            client = TelegramClient.for_account(services.account_row(account))
        except (TelegramError, WebhookError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Polling Telegram for bot account {account!r}; Ctrl-C stops.")
        while True:
            try:
                count = services.poll_once(account, client=client, timeout=0 if once else timeout)
            except TelegramError as exc:
                if exc.permanent:
                    # 409: a webhook is set; 401: a wrong token. Polling again will not help.
                    raise CommandError(f"getUpdates failed: {exc}") from None
                self.stderr.write(f"getUpdates failed ({exc.code}); retrying in {PAUSE_S}s")
                if once:
                    return
                time.sleep(PAUSE_S)
                continue
            if count:
                self.stdout.write(f"{count} updates taken in")
            if once:
                return
