from rest_framework import serializers

from catalog.models import ScrapeRun
from catalog.search import MAX_LIMIT
from config.api import StrictBooleanField


class CatalogSearchInputSerializer(serializers.Serializer):
    """The query parameters of GET /catalog/search; the schema declares them from these fields.

    Validate a plain dict (`request.query_params.dict()`), not the QueryDict:
    DRF reads a blank value in a QueryDict as an absent one, so `limit=`
    would quietly mean the default instead of a 400.
    """

    q = serializers.CharField(
        required=True,
        allow_blank=True,
        trim_whitespace=False,
        max_length=500,
        help_text="What the customer is looking for.",
    )
    limit = serializers.IntegerField(
        required=False, default=10, min_value=1, max_value=MAX_LIMIT, help_text="How many products at most."
    )


class ProductResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    sku = serializers.CharField()
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True, coerce_to_string=True)
    old_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True, coerce_to_string=True)
    currency = serializers.CharField()
    quantity = serializers.IntegerField(allow_null=True)
    in_stock = serializers.BooleanField()
    url = serializers.CharField()
    image = serializers.CharField(source="image_url")
    categories = serializers.SerializerMethodField()

    def get_categories(self, product) -> list[str]:
        return [c.title for c in product.categories.all()]


class CatalogSearchOutputSerializer(serializers.Serializer):
    query = serializers.CharField()
    # How the query was read, as the bot reads it: "икра до 1000", "креветки 1 кг".
    price_min = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    price_max = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    pack_size = serializers.CharField(allow_null=True)
    results = ProductResultSerializer(many=True)


class SourceStatsSerializer(serializers.Serializer):
    products = serializers.IntegerField()
    last_import = serializers.DateTimeField(allow_null=True)


class CatalogStatsOutputSerializer(serializers.Serializer):
    products = serializers.IntegerField()
    in_stock = serializers.IntegerField()
    out_of_stock = serializers.IntegerField()
    categories = serializers.IntegerField()
    faq = serializers.IntegerField()
    sources = serializers.DictField(child=SourceStatsSerializer())


class ScrapeRunInputSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=ScrapeRun.Mode.choices, default=ScrapeRun.Mode.FULL)
    force = StrictBooleanField(
        default=False,
        help_text="Import even if the store returned far fewer products than the catalog has (SCRAPER_MIN_RATIO).",
    )


class ScrapeConflictSerializer(serializers.Serializer):
    """409: another run holds the source."""

    error = serializers.CharField()
    active_run = serializers.IntegerField(allow_null=True, help_text="The id of the run that is queued or running.")


class ScrapeRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScrapeRun
        fields = [
            "id", "source", "mode", "status", "triggered_by", "forced", "started_at", "finished_at",
            "pages", "seen", "created", "updated", "unchanged", "marked_unavailable", "skipped",
            "skipped_details", "error",
        ]  # fmt: skip
        read_only_fields = fields
