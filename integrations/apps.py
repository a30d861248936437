from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_schedules(sender, **kwargs):
    from integrations.tasks import ensure_sweep_schedule

    ensure_sweep_schedule()


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self):
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="integrations-sweep-schedule")
