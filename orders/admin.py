"""Orders and customers in admin: lists to find them, an order page with its lines and dialog, the stage texts.

Staff change an order's state on its page; the change goes through
orders.services.set_state, which tells the customer. Everything else on an
order is what the customer ordered and is shown, not edited. Return requests
likewise: staff set the state (and a note for the customer) and the customer
is told (orders.returns.set_state); their photos are served to staff only.
"""

import csv
import re

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from orders import returns, services
from orders.models import (
    Customer,
    CustomerIdentity,
    Order,
    OrderChange,
    OrderLine,
    OrderStageText,
    ReturnPhoto,
    ReturnRequest,
)
from orders.phones import InvalidPhone, display_phone, normalize_phone
from orders.selectors import MAX_NUMBER, customer_conversations, customers_with_order_counts

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
    fields = ["name", "phone", "consent_to_contact", "consent_at", "created_at", "dialogs"]
    readonly_fields = ["phone", "consent_at", "created_at", "dialogs"]
    inlines = [CustomerIdentityInline, CustomerOrderInline]

    # A customer has a few dialogs; more than this is a list to read in Conversations.
    DIALOGS_SHOWN = 20

    @admin.display(description=_("dialogs"))
    def dialogs(self, customer):
        conversations = list(customer_conversations(customer)[: self.DIALOGS_SHOWN])
        if not conversations:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> · {}',
            (
                (
                    reverse("admin:conversations_conversation_change", args=[c.pk]),
                    str(c),
                    timezone.localtime(c.last_message_at).strftime("%d.%m.%Y %H:%M") if c.last_message_at else "—",
                )
                for c in conversations
            ),
        )

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


# Return requests ------------------------------------------------------------------


class ReturnPhotoInline(admin.TabularInline):
    model = ReturnPhoto
    extra = 0
    can_delete = False
    fields = ["preview", "mime_type", "size", "created_at"]
    readonly_fields = fields
    verbose_name_plural = _("photos")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("photo"))
    def preview(self, photo):
        url = reverse("admin:orders_returnrequest_photo", args=[photo.pk])
        if photo.mime_type not in returns.SHOWN_TYPES:
            return format_html('<a href="{}">{}</a>', url, _("Download"))
        return format_html(
            '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="" style="max-height:160px;max-width:240px">'
            "</a>",
            url,
            url,
        )


@admin.register(ReturnRequest)
class ReturnRequestAdmin(admin.ModelAdmin):
    """Staff decide on a return here: the state they set goes through orders.returns.set_state, which tells
    the customer (with the note for the customer, when there is one)."""

    list_display = ["__str__", "order_link", "customer_name", "state", "photo_count", "created_at"]
    list_filter = ["state", "created_at"]
    list_select_related = ["order", "order__customer"]
    search_fields = ["order__customer__name"]
    search_help_text = _("An order number, a phone (any way it is written) or a customer's name.")
    date_hierarchy = "created_at"
    inlines = [ReturnPhotoInline]
    fields = [
        "state", "note", "order_link", "customer_link", "dialog_link", "goods", "reason", "without_photos",
        "created_at", "updated_at",
    ]  # fmt: skip
    readonly_fields = [
        "order_link", "customer_link", "dialog_link", "goods", "reason", "without_photos", "created_at", "updated_at",
    ]  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(photo_total=Count("photos"))

    def has_add_permission(self, request):
        # Requests come from the dialog (orders.returns.open_request), never from admin.
        return False

    def has_delete_permission(self, request, obj=None):
        # What was asked and decided is kept, with its photos.
        return False

    def get_search_results(self, request, queryset, search_term):
        return _search(
            queryset,
            search_term,
            number_field="order__number",
            phone_field="order__customer__phone",
            name_field="order__customer__name",
        ), False

    def get_urls(self):
        photo = path(
            "photo/<int:photo_id>/",
            self.admin_site.admin_view(self.photo_view),
            name="orders_returnrequest_photo",
        )
        return [photo, *super().get_urls()]

    def photo_view(self, request, photo_id: int):
        """A photo's bytes, to staff who may see return requests; never at a public URL."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        photo = get_object_or_404(ReturnPhoto, pk=photo_id)
        shown = photo.mime_type in returns.SHOWN_TYPES
        try:
            content = photo.file.open("rb")
        except FileNotFoundError:
            # Kept by a worker whose storage this web process does not share (see MEDIA_ROOT).
            raise Http404(_("The photo file is not in this server's storage.")) from None
        response = FileResponse(
            content,
            content_type=photo.mime_type if shown else "application/octet-stream",
            as_attachment=not shown,
            filename=f"return-{photo.request_id}-{photo.pk}{returns.PICTURE_TYPES.get(photo.mime_type, '')}",
        )
        # What a customer sent is shown as a picture and nothing else.
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'"
        response["Cache-Control"] = "private, max-age=3600"
        return response

    def save_model(self, request, obj, form, change):
        if not change or "state" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        # The note first, with the state as it was; then the state through the service, which tells the customer.
        state = obj.state
        obj.state = form.initial["state"]
        super().save_model(request, obj, form, change)
        result = returns.set_state(request=obj, state=state, actor=request.user)
        if result is not None and result.message is not None:
            self.message_user(request, _("The customer is told: «%(text)s»") % {"text": result.message.text})
        elif result is not None:
            self.message_user(request, _("State changed; the customer was not told (no text or no dialog)."))

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, obj):
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">№{}</a>', url, obj.order.number)

    @admin.display(description=_("customer"))
    def customer_name(self, obj):
        return obj.order.customer

    @admin.display(description=_("customer"))
    def customer_link(self, obj):
        url = reverse("admin:orders_customer_change", args=[obj.order.customer_id])
        phone = display_phone(obj.order.customer.phone)
        return format_html('<a href="{}">{}</a>{}', url, obj.order.customer, f", {phone}" if phone else "")

    @admin.display(description=_("dialog"))
    def dialog_link(self, obj):
        if obj.conversation_id is None:
            return "—"
        url = reverse("admin:conversations_conversation_change", args=[obj.conversation_id])
        return format_html('<a href="{}">{}</a>', url, _("Open the dialog"))

    @admin.display(description=_("goods returned"))
    def goods(self, obj):
        return "; ".join(f"{line.title} × {line.quantity}" for line in obj.lines.order_by("id")) or "—"

    @admin.display(description=_("photos"), ordering="photo_total")
    def photo_count(self, obj):
        return obj.photo_total
