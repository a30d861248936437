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


class StoreAdminConfig(AdminConfig):
    """INSTALLED_APPS lists this instead of django.contrib.admin, so admin.site is a StoreAdminSite."""

    default_site = "config.admin_site.StoreAdminSite"


class CountedChangeList(ChangeList):
    """A list whose counter reads in Russian grammar: «1 частый вопрос», «3 частых вопроса», «10 частых вопросов».

    Django's counter puts the number before the model's plural name («10 Частые
    вопросы»); a ModelAdmin with a `counted(n)` method (an ngettext of its own
    words) gives the phrase instead, shown by an app's admin/<app>/pagination.html.
    """

    @property
    def result_count_text(self) -> str:
        return self.model_admin.counted(self.result_count)


class CountedAdminMixin:
    def get_changelist(self, request, **kwargs):
        return CountedChangeList

    def counted(self, count: int) -> str:
        raise NotImplementedError
