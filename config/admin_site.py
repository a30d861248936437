"""The admin named for the store, with «Открыть сайт» leading to the operators' inbox.

The store name is read on each request (staff rename the store in the assistant
settings), never at import time: the admin site is built before the database is.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.views.main import ChangeList
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def store_name() -> str:
    from bots.models import AssistantSettings

    name = AssistantSettings.objects.filter(pk=1).values_list("store_name", flat=True).first()
    return name or settings.STORE_NAME


def site_url() -> str:
    """The operators' inbox once it has a page, the admin index until then."""
    try:
        return reverse("inbox:list")
    except NoReverseMatch:
        return reverse("admin:index")


class StoreAdminSite(admin.AdminSite):
    def each_context(self, request):
        context = super().each_context(request)
        name = getattr(request, "_store_name", None)
        if name is None:
            name = request._store_name = store_name()
        context["site_header"] = name or _("Store back office")
        context["site_title"] = name or _("Store back office")
        context["site_url"] = site_url()
        return context

    def index(self, request, extra_context=None):
        name = getattr(request, "_store_name", None) or store_name()
        request._store_name = name
        title = _("Managing %(store)s") % {"store": name} if name else _("Store back office")
        return super().index(request, {"title": title, **(extra_context or {})})

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every list counts in Russian grammar, the ModelAdmins of Django, django_q and ours alike.

        An admin class not built on CountedAdminMixin is registered as a subclass
        of it under the same name, so no app has to remember the mixin.
        """
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, CountedAdminMixin):
            admin_class = type(admin_class)(
                admin_class.__name__,
                (CountedAdminMixin, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        return super().register(model_or_iterable, admin_class, **options)


class StoreAdminConfig(AdminConfig):
    """INSTALLED_APPS lists this instead of django.contrib.admin, so admin.site is a StoreAdminSite."""

    default_site = "config.admin_site.StoreAdminSite"


# A list's counter for each model of ours and Django's: ngettext gives Russian its
# three forms («1 заказ», «3 заказа», «5 заказов»). A model not here reads
# «<verbose_name_plural>: N» (counted_phrase), which is grammatical for any N.
COUNTED = {
    "auth.group": lambda n: ngettext("%(count)s group", "%(count)s groups", n),
    "auth.user": lambda n: ngettext("%(count)s user", "%(count)s users", n),
    "django_q.schedule": lambda n: ngettext("%(count)s scheduled task", "%(count)s scheduled tasks", n),
    "django_q.success": lambda n: ngettext("%(count)s successful task", "%(count)s successful tasks", n),
    "django_q.failure": lambda n: ngettext("%(count)s failed task", "%(count)s failed tasks", n),
    "django_q.ormq": lambda n: ngettext("%(count)s queued task", "%(count)s queued tasks", n),
    "catalog.category": lambda n: ngettext("%(count)s category", "%(count)s categories", n),
    "catalog.product": lambda n: ngettext("%(count)s product", "%(count)s products", n),
    "catalog.faqentry": lambda n: ngettext(
        "%(count)s frequently asked question", "%(count)s frequently asked questions", n
    ),
    "catalog.searchsynonym": lambda n: ngettext("%(count)s search synonym", "%(count)s search synonyms", n),
    "catalog.scraperun": lambda n: ngettext("%(count)s import run", "%(count)s import runs", n),
    "conversations.conversation": lambda n: ngettext("%(count)s conversation", "%(count)s conversations", n),
    "conversations.channelaccount": lambda n: ngettext("%(count)s channel account", "%(count)s channel accounts", n),
    "integrations.portal": lambda n: ngettext("%(count)s Bitrix24 portal", "%(count)s Bitrix24 portals", n),
    "orders.order": lambda n: ngettext("%(count)s order", "%(count)s orders", n),
    "orders.customer": lambda n: ngettext("%(count)s customer", "%(count)s customers", n),
    "orders.orderstagetext": lambda n: ngettext("%(count)s deal stage text", "%(count)s deal stage texts", n),
    "orders.returnrequest": lambda n: ngettext("%(count)s return request", "%(count)s return requests", n),
    "inbox.workinghours": lambda n: ngettext("%(count)s day of the week", "%(count)s days of the week", n),
    "inbox.holiday": lambda n: ngettext("%(count)s holiday", "%(count)s holidays", n),
    "inbox.slapolicy": lambda n: ngettext("%(count)s response time target", "%(count)s response time targets", n),
    "inbox.cannedreply": lambda n: ngettext("%(count)s canned reply", "%(count)s canned replies", n),
    # bots.assistantsettings is a single row: «настройки ассистента: 1» reads well.
}


def counted_phrase(model, count: int) -> str:
    """«3 заказа» for a model in COUNTED, «<verbose_name_plural>: 3» for any other."""
    phrase = COUNTED.get(model._meta.label_lower)
    if phrase is not None:
        return phrase(count) % {"count": count}
    return _("%(name)s: %(count)s") % {"name": model._meta.verbose_name_plural, "count": count}


class CountedChangeList(ChangeList):
    """A list whose counter reads in Russian grammar: «1 частый вопрос», «3 частых вопроса», «10 частых вопросов».

    Django's counter puts the number before the model's plural name («10 Частые
    вопросы»); templates/admin/pagination.html and actions.html show this phrase
    instead, from the ModelAdmin's `counted(n)` (CountedAdminMixin's reads COUNTED).
    """

    @property
    def result_count_text(self) -> str:
        return self.model_admin.counted(self.result_count)


class CountedAdminMixin:
    """StoreAdminSite.register puts this under every ModelAdmin; an admin may still name it itself."""

    def get_changelist(self, request, **kwargs):
        changelist = super().get_changelist(request, **kwargs)
        # An admin with a list of its own (as DRF's token admin has) keeps it;
        # the templates then fall back to Django's words.
        return CountedChangeList if changelist is ChangeList else changelist

    def counted(self, count: int) -> str:
        return counted_phrase(self.model, count)
