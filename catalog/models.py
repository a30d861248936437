from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from catalog.text import normalize_text


class Source(models.TextChoices):
    TILDA = "tilda", _("Tilda Store")
    CSV = "csv", _("CSV file")
    ONEC = "onec", _("1C")
    BITRIX24 = "bitrix24", _("Bitrix24")
    MANUAL = "manual", _("Entered by hand")


class Category(models.Model):
    title = models.CharField(_("title"), max_length=255)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent category"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(_("external id"), max_length=64, blank=True, default="")
    sort_order = models.IntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["sort_order", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="category_unique_external_id_per_source",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Product(models.Model):
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(_("external id"), max_length=64)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent product"),
        help_text=_("Set for a variant of another product, e.g. a 500 g pack."),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="variants",
    )
    sku = models.CharField(_("SKU"), max_length=64, blank=True, default="")
    title = models.CharField(_("title"), max_length=500)
    short_description = models.TextField(_("short description"), blank=True, default="")
    description = models.TextField(_("description"), blank=True, default="")
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=2, null=True, blank=True)
    old_price = models.DecimalField(_("old price"), max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    quantity = models.IntegerField(
        _("quantity"), null=True, blank=True, help_text=_("Empty means stock is not tracked.")
    )
    is_available = models.BooleanField(
        _("available"),
        default=True,
        help_text=_("Listed in the store. Products that disappear from the source are switched off, not deleted."),
    )
    in_stock = models.GeneratedField(
        expression=models.Case(
            models.When(Q(is_available=True) & (Q(quantity__isnull=True) | Q(quantity__gt=0)), then=True),
            default=False,
        ),
        output_field=models.BooleanField(),
        db_persist=True,
        verbose_name=_("in stock"),
    )
    unit = models.CharField(_("portion / unit"), max_length=64, blank=True, default="")
    url = models.URLField(_("product page"), max_length=1000, blank=True, default="")
    image_url = models.URLField(_("image"), max_length=1000, blank=True, default="")
    characteristics = models.JSONField(_("characteristics"), default=dict, blank=True)
    brand = models.CharField(_("brand"), max_length=255, blank=True, default="")
    categories = models.ManyToManyField(Category, verbose_name=_("categories"), blank=True, related_name="products")
    sort_order = models.IntegerField(_("sort order"), default=0)

    first_seen_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    price_changed_at = models.DateTimeField(_("last price change"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # Normalised text kept by catalog.services.refresh_search_fields; on
    # PostgreSQL a trigger turns it into search_vector (see migration 0002).
    search_title = models.TextField(editable=False, blank=True, default="")
    search_text = models.TextField(editable=False, blank=True, default="")
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sort_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="product_unique_external_id_per_source"),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="product_price_not_negative"
            ),
        ]
        indexes = [
            models.Index(Upper("sku"), name="product_sku_upper_idx"),
            models.Index(fields=["source", "last_seen_at"], name="product_source_seen_idx"),
            models.Index(fields=["in_stock"], name="product_in_stock_idx"),
            # The other packs of a product are the titles that start like its own
            # (catalog.followups.pack_siblings): a LIKE 'prefix%' that the trigram
            # index answers in milliseconds and text_pattern_ops at once.
            models.Index(fields=["search_title"], opclasses=["text_pattern_ops"], name="product_title_prefix_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class FAQEntry(models.Model):
    question = models.CharField(_("question"), max_length=500)
    answer = models.TextField(_("answer"))
    keywords = models.TextField(
        _("keywords"),
        blank=True,
        default="",
        help_text=_("Comma-separated words and phrases a customer may use for this question."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.IntegerField(_("sort order"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("FAQ entry")
        verbose_name_plural = _("FAQ")
        ordering = ["sort_order", "id"]
        indexes = [models.Index(fields=["is_active", "sort_order"], name="faq_active_sort_idx")]

    def __str__(self) -> str:
        return self.question

    @property
    def keyword_list(self) -> list[str]:
        return [k.strip() for k in self.keywords.split(",") if k.strip()]


class SearchSynonym(models.Model):
    """A word or phrase customers use, and what it means in this catalog."""

    phrase = models.CharField(
        _("word or phrase"),
        max_length=200,
        unique=True,
        help_text=_("What a customer writes, e.g. «шримп» or «красная икра»."),
    )
    meaning = models.TextField(
        _("means"),
        help_text=_(
            "Comma-separated words or phrases used in the catalog, e.g. «креветки» or «икра горбуши, икра кеты»."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("search synonym")
        verbose_name_plural = _("search synonyms")
        ordering = ["phrase"]

    def __str__(self) -> str:
        return f"{self.phrase} → {self.meaning}"

    def save(self, *args, **kwargs):
        # Queries are matched in normalised form, so the phrase is stored that way.
        self.phrase = normalize_text(self.phrase)
        super().save(*args, **kwargs)

    @property
    def alternatives(self) -> list[str]:
        return [m.strip() for m in self.meaning.split(",") if m.strip()]


class SearchMiss(models.Model):
    """A search that found nothing, as customers typed it (normalised), with how often: the reports
    offer a synonym for it."""

    query = models.CharField(_("query"), max_length=200, unique=True)
    times = models.PositiveIntegerField(_("times"), default=1)
    first_at = models.DateTimeField(_("first"), auto_now_add=True)
    last_at = models.DateTimeField(_("last"), db_index=True)

    class Meta:
        verbose_name = _("search with no results")
        verbose_name_plural = _("searches with no results")
        ordering = ["-last_at"]

    def __str__(self) -> str:
        return self.query


class ScrapeRun(models.Model):
    """One import run from an outside catalog (Tilda), kept as its history."""

    class Mode(models.TextChoices):
        FULL = "full", _("Full import")
        PRICES = "prices", _("Prices and stock")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        OK = "ok", _("Done")
        FAILED = "failed", _("Failed")
        REFUSED = "refused", _("Refused")

    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.TILDA)
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    triggered_by = models.CharField(_("started by"), max_length=32, blank=True, default="")
    forced = models.BooleanField(_("forced"), default=False)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    pages = models.PositiveIntegerField(_("pages"), default=0)
    seen = models.PositiveIntegerField(_("seen"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    marked_unavailable = models.PositiveIntegerField(_("marked unavailable"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    skipped_details = models.JSONField(_("skipped products"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True, default="")

    class Meta:
        verbose_name = _("scrape run")
        verbose_name_plural = _("scrape runs")
        ordering = ["-started_at", "-id"]
        constraints = [
            # Two runs of one source never overlap: the database refuses a
            # second active row, whichever process (web, worker, command) asks.
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(status__in=["queued", "running"]),
                name="scrape_run_one_active_per_source",
            ),
        ]
        indexes = [models.Index(fields=["source", "mode", "-started_at"], name="scrape_run_recent_idx")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.get_mode_display()} #{self.pk}"

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None
