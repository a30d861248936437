from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django_q.signals import post_spawn


def _ensure_schedules(sender, **kwargs):
    from catalog.scrape import ensure_scrape_schedules

    ensure_scrape_schedules()


def connect(app_config) -> None:
    post_migrate.connect(_ensure_schedules, sender=app_config, dispatch_uid="catalog-scrape-schedules")


@receiver(post_spawn, dispatch_uid="catalog-first-import")
def _first_import_on_worker_start(sender, proc_name, **kwargs):
    from catalog.scrape import queue_first_import_if_empty

    queue_first_import_if_empty()
