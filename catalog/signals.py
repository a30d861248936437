from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver
from django_q.signals import post_spawn


def _ensure_schedules(sender, **kwargs):
    from catalog.scrape import ensure_scrape_schedules

    ensure_scrape_schedules()


def _titles_changed(sender, **kwargs):
    from catalog.vocabulary import catalog_changed

    # At once for this process, and again at commit: another process that
    # rebuilt its vocabulary in between read the rows before the change.
    catalog_changed()
    transaction.on_commit(catalog_changed)


def connect(app_config) -> None:
    post_migrate.connect(_ensure_schedules, sender=app_config, dispatch_uid="catalog-scrape-schedules")
    # A product or synonym saved or deleted one by one (admin, API); imports
    # write in bulk, without signals, and the vocabulary sees them by itself.
    for model in ("Product", "SearchSynonym"):
        for event, signal in (("saved", post_save), ("deleted", post_delete)):
            signal.connect(
                _titles_changed, sender=app_config.get_model(model), dispatch_uid=f"catalog-vocabulary-{model}-{event}"
            )


@receiver(post_spawn, dispatch_uid="catalog-first-import")
def _first_import_on_worker_start(sender, proc_name, **kwargs):
    from catalog.scrape import queue_first_import_if_empty

    queue_first_import_if_empty()
