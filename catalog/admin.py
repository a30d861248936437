import re
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from catalog.forms import CsvImportForm, ProductAdminForm
from catalog.importers.csv_file import CsvFormatError
from catalog.importers.records import ImportReport
from catalog.models import Category, FAQEntry, Product, ScrapeRun, SearchMiss, SearchSynonym, Source
from catalog.scrape import ScrapeAlreadyRunning, enqueue_scrape, finish_run, queue_scrape_run, scrape_is_configured
from catalog.services import import_csv, refresh_search_fields

# A title this long fits the product list at 1,366 px beside the other columns.
LIST_TITLE_CHARS = 60


def truncated(text: str, chars: int):
    """A list cell: the start of a long text, all of it on hover."""
    if len(text) <= chars:
        return text
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(chars))


# What staff read for a failed or refused import: the run's error (English,
# for the log and the command) matched by its known beginnings.
_RUN_ERRORS = [
    (
        re.compile(r"refused: (?P<origin>.+?) returned (?P<seen>\d+) products but the catalog has (?P<known>\d+)"),
        _(
            "The import was refused: %(origin)s returned %(seen)s products, but the catalog has %(known)s. "
            "Nothing was changed. If the store really has that few products now, run the import with --force "
            "(«manage.py scrape --force»); otherwise check the store and try again later."
        ),
    ),
    (
        re.compile(r"abandoned: "),
        _(
            "The import did not finish in time (SCRAPER_STALE_AFTER_S) and was stopped; nothing was changed. "
            "The task worker (qcluster) has probably stopped: start it again and run the import once more."
        ),
    ),
    (
        re.compile(r"not queued: (?P<detail>.*)"),
        _(
            "The import could not be handed to the task worker (%(detail)s). "
            "Check that the task queue (Redis or the database) is reachable and the worker is running, then try again."
        ),
    ),
    (
        re.compile(r"TILDA_STORE_PARTUID is not set"),
        _(
            "Import from Tilda is not set up: find the store ids with «manage.py scrape --discover <shop URL>», "
            "put TILDA_STORE_PARTUID into .env and restart the server and the task worker."
        ),
    ),
    (
        re.compile(r"csv: (?P<detail>.*)", re.S),
        _("The CSV file could not be read (%(detail)s); nothing was changed. Correct the file and upload it again."),
    ),
    (
        re.compile(r"more than (?P<pages>\d+) pages"),
        _(
            "The store has more than %(pages)s catalog pages; nothing was changed. "
            "Raise SCRAPER_MAX_PAGES in .env and run the import again."
        ),
    ),
    (
        re.compile(r"slice (?P<page>\d+): (?P<detail>.*)"),
        _(
            "Tilda did not return catalog page %(page)s (%(detail)s); nothing was changed. "
            "Check that the server can reach store.tildaapi.com and run the import again; "
            "if it keeps failing, check TILDA_STORE_PARTUID with «manage.py scrape --discover»."
        ),
    ),
]


_ORIGINS = {"the store": _("the Tilda store")}


def run_error_explained(error: str) -> str:
    """A run's error as a Russian sentence saying what to do ("" for a run without one)."""
    if not error:
        return ""
    for pattern, text in _RUN_ERRORS:
        match = pattern.match(error)
        if match:
            values = match.groupdict()
            if "origin" in values:
                values["origin"] = _ORIGINS.get(values["origin"], values["origin"])
            return str(text) % values if values else str(text)
    return gettext(
        "The import failed (%(error)s); nothing was changed. Look into the task worker's log and try again."
    ) % {"error": error}


class InStockFilter(admin.SimpleListFilter):
    title = _("in stock")
    parameter_name = "in_stock"

    def lookups(self, request, model_admin):
        return [("yes", _("In stock")), ("no", _("Out of stock"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(in_stock=True)
        if self.value() == "no":
            return queryset.filter(in_stock=False)
        return queryset


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["title", "parent", "source", "sort_order", "product_count"]
    list_editable = ["sort_order"]
    list_filter = ["source"]
    search_fields = ["title"]
    autocomplete_fields = ["parent"]

    @admin.display(description=_("number of products"))
    def product_count(self, category):
        return category.products.count()


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    # Shop links without a scheme are https ones (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    form = ProductAdminForm
    # Seven columns, two of them inputs, fit a 1,366 px screen; "available" and
    # "last seen" are on the product page and in the filters.
    list_display = ["short_title", "sku", "price", "quantity", "in_stock_icon", "source"]
    list_display_links = ["short_title"]
    list_editable = ["price", "quantity"]
    list_filter = ["categories", InStockFilter, "is_available", "source"]
    list_select_related = ["parent"]
    search_fields = ["title", "sku", "external_id", "brand"]
    autocomplete_fields = ["parent", "categories"]
    readonly_fields = [
        "source",
        "external_id",
        "image_preview",
        "first_seen_at",
        "last_seen_at",
        "price_changed_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["title", "sku", "parent", "categories", "brand", "unit"]}),
        (_("Price and stock"), {"fields": ["price", "old_price", "currency", "quantity", "is_available"]}),
        (_("Description"), {"fields": ["short_description", "description", "url", "image_url", "image_preview"]}),
        (_("Characteristics"), {"fields": ["characteristics"]}),
        (
            _("Source"),
            {"fields": ["source", "external_id", "first_seen_at", "last_seen_at", "price_changed_at", "updated_at"]},
        ),
    ]

    @admin.display(description=_("title"), ordering="title")
    def short_title(self, product):
        return truncated(product.title, LIST_TITLE_CHARS)

    @admin.display(description=_("in stock"), boolean=True, ordering="in_stock")
    def in_stock_icon(self, product):
        return product.in_stock

    @admin.display(description=_("image preview"))
    def image_preview(self, product):
        # Only a web address: a javascript: or data: one never reaches the page.
        if not product.image_url.lower().startswith(("http://", "https://")):
            return "—"
        return format_html(
            '<img src="{}" alt="" style="max-width:240px;max-height:240px" loading="lazy" '
            'referrerpolicy="no-referrer">',
            product.image_url,
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Search text includes category titles, so it is rebuilt after the M2M save.
        refresh_search_fields(form.instance)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "can_run_import": self.has_change_permission(request),
            "scrape_configured": scrape_is_configured(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        import_view = self.admin_site.admin_view(self.import_csv_view)
        scrape_view = self.admin_site.admin_view(require_POST(self.scrape_now_view))
        return [
            path("import-csv/", import_view, name="catalog_product_import_csv"),
            path("scrape-now/", scrape_view, name="catalog_product_scrape_now"),
            *super().get_urls(),
        ]

    def scrape_now_view(self, request):
        """The "run now" buttons: queue a Tilda import for the task worker."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        mode = request.POST.get("mode")
        if mode not in ScrapeRun.Mode.values:
            messages.error(request, _("Unknown import mode."))
            return redirect("admin:catalog_product_changelist")
        try:
            run = enqueue_scrape(mode=mode, triggered_by=f"admin: {request.user.get_username()}")
        except ScrapeAlreadyRunning as exc:
            messages.warning(request, _("An import is already in progress (run #%(id)s).") % {"id": exc.active.pk})
            return redirect("admin:catalog_scraperun_changelist")
        messages.success(request, _("Import #%(id)s queued; the task worker runs it in a moment.") % {"id": run.pk})
        return redirect(reverse("admin:catalog_scraperun_change", args=[run.pk]))

    def import_csv_view(self, request):
        """Upload form, and the import report on the same page after an upload."""
        # The file both creates and updates products.
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        report = run = None
        form = CsvImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report, run = self._import_csv_as_run(request, form)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import products from CSV"),
            "form": form,
            "report": report,
            "run": run,
        }
        return TemplateResponse(request, "admin/catalog/product/import_csv.html", context)

    def _import_csv_as_run(self, request, form):
        """The upload as an import run of source "csv", listed with the scrapes; (report, run)."""
        upload = form.cleaned_data["file"]
        try:
            run = queue_scrape_run(
                mode=ScrapeRun.Mode.FULL,
                source=Source.CSV,
                triggered_by=f"admin: {request.user.get_username()}"[:32],
            )
        except ScrapeAlreadyRunning as exc:
            form.add_error("file", _("Another CSV import is in progress (run #%(id)s).") % {"id": exc.active.pk})
            return None, None
        try:
            report = import_csv(upload.read())
        except CsvFormatError as exc:
            form.add_error("file", str(exc))
            finish_run(run, ImportReport(source=Source.CSV), ScrapeRun.Status.FAILED, f"csv: {upload.name}: {exc}")
            return None, run
        except Exception as exc:
            # Recorded before the error page, or the claim would block CSV imports until it went stale.
            finish_run(run, ImportReport(source=Source.CSV), ScrapeRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        finish_run(run, report, ScrapeRun.Status.OK)
        return report, run


@admin.register(FAQEntry)
class FAQEntryAdmin(admin.ModelAdmin):
    list_display = ["question", "keywords", "is_active", "sort_order"]
    list_editable = ["is_active", "sort_order"]
    list_filter = ["is_active"]
    search_fields = ["question", "answer", "keywords"]


@admin.register(SearchSynonym)
class SearchSynonymAdmin(admin.ModelAdmin):
    list_display = ["phrase", "meaning", "is_active"]
    list_editable = ["is_active"]
    list_filter = ["is_active"]
    search_fields = ["phrase", "meaning"]


@admin.register(SearchMiss)
class SearchMissAdmin(admin.ModelAdmin):
    """What customers searched for and the catalog did not have; recorded by the bot, read here and in the reports."""

    list_display = ["query", "times", "last_at", "add_synonym"]
    search_fields = ["query"]
    readonly_fields = ["query", "times", "first_at", "last_at"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("synonym"))
    def add_synonym(self, miss):
        url = reverse("admin:catalog_searchsynonym_add") + "?" + urlencode({"phrase": miss.query})
        return format_html('<a href="{}">{}</a>', url, _("add a synonym"))


@admin.register(ScrapeRun)
class ScrapeRunAdmin(admin.ModelAdmin):
    """History of catalog imports; written by the runs only."""

    # The figures a store owner looks at, and the reason in words: fits 1,366 px.
    # (The figures one by one are on the run's page.)
    list_display = ["started_at", "source", "mode", "status", "figures", "short_error"]
    list_filter = ["status", "mode", "source"]
    date_hierarchy = "started_at"
    readonly_fields = [
        *(f.name for f in ScrapeRun._meta.fields if f.name not in ("skipped_details", "error")),
        "error_explained",
        "error",
        "skipped_table",
    ]
    exclude = ["skipped_details"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("duration, s"))
    def duration_seconds(self, run):
        return f"{run.duration.total_seconds():.1f}" if run.duration else "—"

    @admin.display(description=_("products"))
    def figures(self, run):
        """ "получено: 108; новых: 3; изменено: 5" — a figure after its word needs no plural form."""
        rows = [
            (_("seen"), run.seen),
            (_("new products"), run.created),
            (_("changed products"), run.updated),
            (_("products switched off"), run.marked_unavailable),
            (_("skipped"), run.skipped),
        ]
        return "; ".join(f"{label}: {value}" for n, (label, value) in enumerate(rows) if value or n == 0)

    @admin.display(description=_("what happened"))
    def short_error(self, run):
        return truncated(run_error_explained(run.error), 60) or "—"

    @admin.display(description=_("what happened"))
    def error_explained(self, run):
        return run_error_explained(run.error) or "—"

    @admin.display(description=_("skipped products"))
    def skipped_table(self, run):
        if not run.skipped_details:
            return "—"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td></tr>", ((item["ref"], item["reason"]) for item in run.skipped_details)
        )
        return format_html("<table>{}</table>", rows)
