from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_schedules(sender, **kwargs):
    from orders.tasks import ensure_pull_schedule

    ensure_pull_schedule()


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"
    verbose_name = _("Orders")

    def ready(self):
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="orders-pull-schedule")
