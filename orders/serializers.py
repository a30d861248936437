from rest_framework import serializers

from orders.models import Customer, Order, OrderLine, OrderState

MAX_PAGE = 100
MAX_OFFSET = 1_000_000


class OrderListInputSerializer(serializers.Serializer):
    """The query parameters of GET /api/orders/ (validate `request.query_params.dict()`, see catalog's)."""

    state = serializers.ChoiceField(choices=OrderState.choices, required=False, help_text="Only orders in this state.")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=MAX_PAGE)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class OrderCustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "phone", "consent_to_contact"]
        read_only_fields = fields


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["product", "title", "sku", "pack", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    customer = OrderCustomerSerializer()
    lines = OrderLineSerializer(many=True)
    crm_deal_url = serializers.SerializerMethodField(help_text="The order's deal in Bitrix24, once pushed.")

    class Meta:
        model = Order
        fields = [
            "number", "state", "customer", "channel", "fulfilment", "address", "desired_time", "payment",
            "comment", "items_total", "delivery_cost", "total", "currency", "lines", "push_state",
            "crm_deal_url", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_crm_deal_url(self, order) -> str | None:
        return order.crm_deal_url or None


class OrderListOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Orders matching, on every page.")
    results = OrderSerializer(many=True)
