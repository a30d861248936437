from django.core.management.base import BaseCommand, CommandError

from integrations.telegram import services
from integrations.telegram.client import TelegramError
from integrations.webhooks import WebhookError


class Command(BaseCommand):
    help = "Point a Telegram bot at this service's webhook (setWebhook with secret_token and allowed_updates)."

    def add_arguments(self, parser):
        parser.add_argument("--account", default=services.DEFAULT, help="bot account key (default: the env's bot)")
        parser.add_argument("--url", default="", help="webhook URL (default: PUBLIC_URL + the account's path)")
        parser.add_argument("--drop-pending-updates", action="store_true", help="discard updates waiting at Telegram")

    def handle(self, *args, account, url, drop_pending_updates, **options):
        try:
            result = services.set_webhook(account, url=url, drop_pending_updates=drop_pending_updates)
        except (TelegramError, WebhookError) as exc:
            raise CommandError(f"setWebhook failed: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"@{result['username']} now posts {', '.join(result['allowed_updates'])} to {result['url']}"
            )
        )
