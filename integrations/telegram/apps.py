from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _forget_credentials(sender, **kwargs):
    from integrations.telegram.services import forget_credentials

    forget_credentials()


class TelegramConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations.telegram"
    label = "telegram"
    verbose_name = "Telegram"

    def ready(self):
        # A bot's secret changed in admin is in force at once in this process
        # (other processes read it again within CREDENTIALS_TTL_S).
        for signal in (post_save, post_delete):
            signal.connect(_forget_credentials, sender="conversations.ChannelAccount", dispatch_uid=f"tg-{signal}")
