from django.apps import AppConfig


class TelegramConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations.telegram"
    label = "telegram"
    verbose_name = "Telegram"
