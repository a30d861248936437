"""Orders and customers in admin: lists to find them, an order page with its lines and dialog, the stage texts.

Staff change an order's state on its page; the change goes through
orders.services.set_state, which tells the customer. Everything else on an
order is what the customer ordered and is shown, not edited.
"""

import csv
import re

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from orders import services
from orders.models import Customer, CustomerIdentity, Order, OrderChange, OrderLine, OrderStageText
from orders.phones import InvalidPhone, display_phone, normalize_phone
from orders.selectors import MAX_NUMBER, customers_with_order_counts

CSV_COLUMNS = [
    _("number"), _("created"), _("state"), _("customer"), _("phone"), _("channel"), _("delivery or pickup"),
    _("address"), _("desired time"), _("payment"), _("comment"), _("goods"), _("delivery cost"), _("total"),
    _("push to Bitrix24"), _("deal in Bitrix24"), _("order lines"),
]  # fmt: skip
# A spreadsheet runs a cell that starts with one of these as a formula: such text is exported quoted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _search(queryset, term: str, *, number_field: str | None, phone_field: str, name_field: str):
    """Orders or customers by a number («1001», «№1001»), a phone in any writing, part of one, or a name."""
    term = term.strip()
    if not term:
        return queryset
    found = Q(**{f"{name_field}__icontains": term})
    bare = term.lstrip("№#").strip()
    if number_field and bare.isdigit() and int(bare) <= MAX_NUMBER:
        found |= Q(**{number_field: int(bare)})
    try:
        found |= Q(**{phone_field: normalize_phone(term)})
    except InvalidPhone:
        pass
    digits = re.sub(r"\D", "", term)
    if len(digits) >= 4:
        found |= Q(**{f"{phone_field}__contains": digits})
    return queryset.filter(found)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ["title", "sku", "pack", "quantity", "unit_price", "line_total", "product"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class OrderChangeInline(admin.TabularInline):
    model = OrderChange
    extra = 0
    can_delete = False
    fields = ["created_at", "source", "stage_id", "state", "message_text"]
    readonly_fields = fields
    verbose_name_plural = _("history")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("told the customer"))
    def message_text(self, change):
        return change.message.text if change.message else "—"


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "channel", "total", "state", "push_state", "created_at"]
    list_filter = ["state", "push_state", "channel", "fulfilment", "payment", "created_at"]
    list_select_related = ["customer"]
    search_fields = ["customer__name"]
    search_help_text = _("An order number, a phone (any way it is written) or a customer's name.")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderChangeInline]
    actions = ["export_csv", "push_again"]
    crm_fields = [
        "push_state", "push_attempts", "push_error", "push_retry_at", "pushed_at",
        "deal_link", "crm_stage_id", "crm_modified_at",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["number", "state", "created_at", "customer_link", "customer_phone", "dialog_link"]}),
        (_("Delivery and payment"), {"fields": ["fulfilment", "address", "desired_time", "payment", "comment"]}),
        (_("Totals"), {"fields": ["items_total", "delivery_cost", "total", "currency"]}),
        (_("Bitrix24"), {"fields": crm_fields}),
    ]
    readonly_fields = [
        "number", "created_at", "customer_link", "customer_phone", "dialog_link", "fulfilment", "address",
        "desired_time", "payment", "comment", "items_total", "delivery_cost", "total", "currency", "push_state",
        "push_attempts", "push_error", "push_retry_at", "pushed_at", "deal_link", "crm_stage_id", "crm_modified_at",
    ]  # fmt: skip

    def has_add_permission(self, request):
        # Orders come from the dialog (orders.services.create_order), never from admin.
        return False

    def get_search_results(self, request, queryset, search_term):
        return _search(
            queryset, search_term, number_field="number", phone_field="customer__phone", name_field="customer__name"
        ), False

    def save_model(self, request, obj, form, change):
        if not change or "state" not in form.changed_data:
            return
        # Through the service: the state is set under the order's lock and the customer told.
        result = services.set_state(order=obj, state=obj.state, actor=request.user)
        if result is not None and result.message is not None:
            self.message_user(request, _("The customer is told: «%(text)s»") % {"text": result.message.text})
        elif result is not None:
            self.message_user(request, _("State changed; the customer was not told (no text or no dialog)."))

    @admin.display(description=_("customer"))
    def customer_link(self, order):
        url = reverse("admin:orders_customer_change", args=[order.customer_id])
        return format_html('<a href="{}">{}</a>', url, order.customer)

    @admin.display(description=_("phone"))
    def customer_phone(self, order):
        return display_phone(order.customer.phone) or "—"

    @admin.display(description=_("dialog"))
    def dialog_link(self, order):
        if order.conversation_id is None:
            return "—"
        url = reverse("admin:conversations_conversation_change", args=[order.conversation_id])
        return format_html('<a href="{}">{}</a>', url, _("Open the dialog"))

    @admin.display(description=_("deal in Bitrix24"))
    def deal_link(self, order):
        if not order.crm_deal_url:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', order.crm_deal_url, order.crm_deal_id)

    @admin.action(description=_("Export selected orders to CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(
            True, f"orders-{timezone.localdate():%Y-%m-%d}.csv"
        )
        response.write("\ufeff")  # Excel reads UTF-8 only with its mark
        writer = csv.writer(response, delimiter=";")
        writer.writerow([str(label) for label in CSV_COLUMNS])
        orders = queryset.select_related("customer").prefetch_related("lines").order_by("number")
        for order in orders:
            lines = "; ".join(f"{line.title} × {line.quantity}" for line in order.lines.all())
            row = [
                order.number,
                timezone.localtime(order.created_at).strftime("%Y-%m-%d %H:%M"),
                order.get_state_display(),
                order.customer.name,
                order.customer.phone,
                order.get_channel_display(),
                order.get_fulfilment_display(),
                order.address,
                order.desired_time,
                order.get_payment_display(),
                order.comment,
                order.items_total,
                order.delivery_cost,
                order.total,
                order.get_push_state_display(),
                order.crm_deal_url,
                lines,
            ]
            writer.writerow([_cell(value) for value in row])
        return response

    @admin.action(description=_("Send selected orders to Bitrix24 again"), permissions=["change"])
    def push_again(self, request, queryset):
        if not settings.B24_CRM_ORDERS:
            self.message_user(request, _("Bitrix24 CRM is off (B24_CRM_ORDERS)."), messages.WARNING)
            return
        orders = list(queryset.exclude(push_state=Order.PushState.PUSHED))
        for order in orders:
            Order.objects.filter(pk=order.pk).update(
                push_state=Order.PushState.PENDING, push_attempts=0, push_retry_at=None
            )
            order.push_attempts = 0
            services.enqueue_push(order)
        self.message_user(request, _("Orders queued for Bitrix24: %(count)d.") % {"count": len(orders)})


def _cell(value):
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class CustomerIdentityInline(admin.TabularInline):
    model = CustomerIdentity
    extra = 0
    can_delete = False
    fields = ["channel", "account", "external_user_id", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CustomerOrderInline(admin.TabularInline):
    model = Order
    extra = 0
    can_delete = False
    fields = ["order_link", "state", "total", "channel", "created_at"]
    readonly_fields = fields
    ordering = ["-created_at"]
    verbose_name_plural = _("orders")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("order"))
    def order_link(self, order):
        url = reverse("admin:orders_order_change", args=[order.pk])
        return format_html('<a href="{}">№{}</a>', url, order.number)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "phone", "consent_to_contact", "order_count", "created_at"]
    list_filter = ["consent_to_contact", "created_at"]
    search_fields = ["name"]
    search_help_text = _("A phone (any way it is written) or a name.")
    fields = ["name", "phone", "consent_to_contact", "consent_at", "created_at"]
    readonly_fields = ["phone", "consent_at", "created_at"]
    inlines = [CustomerIdentityInline, CustomerOrderInline]

    def get_queryset(self, request):
        return customers_with_order_counts()

    def has_add_permission(self, request):
        return False

    def get_search_results(self, request, queryset, search_term):
        return _search(queryset, search_term, number_field=None, phone_field="phone", name_field="name"), False

    def save_model(self, request, obj, form, change):
        if "consent_to_contact" in form.changed_data:
            services.set_consent(obj, given=obj.consent_to_contact)
        super().save_model(request, obj, form, change)

    @admin.display(description=_("orders"), ordering="order_count")
    def order_count(self, customer):
        return customer.order_count


@admin.register(OrderStageText)
class OrderStageTextAdmin(admin.ModelAdmin):
    list_display = ["stage_id", "state", "text"]
    list_filter = ["state"]
    search_fields = ["stage_id", "text"]
