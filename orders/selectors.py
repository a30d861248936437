"""Reads of orders and customers, for the API, admin and the deal events."""

from django.db.models import Count, Prefetch, QuerySet

from orders.models import Customer, Order, OrderLine

# Order numbers are a PositiveIntegerField: anything larger is no order (and would overflow the query).
MAX_NUMBER = 2_147_483_647


def orders_list(*, state: str = "") -> QuerySet[Order]:
    """Newest first, with what a list shows (customer, lines) fetched along."""
    orders = Order.objects.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id"))
    )
    if state:
        orders = orders.filter(state=state)
    return orders.order_by("-created_at", "-id")


def order_by_number(number: int) -> Order | None:
    if not 0 < number <= MAX_NUMBER:
        return None
    return orders_list().filter(number=number).first()


def order_for_deal(*, domain: str, deal_id: str) -> Order | None:
    """The order whose Bitrix24 deal this is; a deal id repeats across portals, so the domain too when known."""
    orders = Order.objects.filter(crm_deal_id=deal_id)
    if domain:
        orders = orders.filter(crm_domain=domain)
    return orders.order_by("pk").first()


def customers_with_order_counts() -> QuerySet[Customer]:
    return Customer.objects.annotate(order_count=Count("orders"))
