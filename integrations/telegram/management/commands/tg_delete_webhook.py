from django.core.management.base import BaseCommand, CommandError

from integrations.telegram import services
from integrations.telegram.client import TelegramError
from integrations.webhooks import WebhookError


class Command(BaseCommand):
    help = "Remove a Telegram bot's webhook (deleteWebhook), e.g. before running tg_polling."

    def add_arguments(self, parser):
        parser.add_argument("--account", default=services.DEFAULT, help="bot account key (default: the env's bot)")
        parser.add_argument("--drop-pending-updates", action="store_true", help="discard updates waiting at Telegram")

    def handle(self, *args, account, drop_pending_updates, **options):
        try:
            services.delete_webhook(account, drop_pending_updates=drop_pending_updates)
        except (TelegramError, WebhookError) as exc:
            raise CommandError(f"deleteWebhook failed: {exc}") from None
        self.stdout.write(self.style.SUCCESS("Webhook removed: updates wait for getUpdates (tg_polling)."))
