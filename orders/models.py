"""Customers across channels, their orders, and what a Bitrix24 deal stage tells them.

A customer is one person whichever channel they write from: an identity per
channel account and user id, and a phone (E.164) that is unique, so the same
phone given in two channels is one customer (orders.services.set_phone merges).
An order keeps what was bought at the price of that moment; its push to
Bitrix24 CRM and the deal's stage are recorded on it (orders/push.py).
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from conversations.models import Channel, ChannelAccount, Conversation

MONEY = {"max_digits": 12, "decimal_places": 2}


class Customer(models.Model):
    name = models.CharField(_("full name"), max_length=255, blank=True, default="")
    # E.164, set only through orders.services.set_phone (which normalizes and merges).
    phone = models.CharField(_("phone"), max_length=16, blank=True, default="")
    consent_to_contact = models.BooleanField(
        _("agrees to be contacted"), default=False, help_text=_("The customer agreed to be called or written to.")
    )
    consent_at = models.DateTimeField(_("consent given"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["phone"], condition=~Q(phone=""), name="customer_unique_phone"),
            models.CheckConstraint(condition=Q(phone="") | Q(phone__startswith="+"), name="customer_phone_e164"),
        ]

    def __str__(self) -> str:
        return self.name or self.phone or f"#{self.pk}"


class CustomerIdentity(models.Model):
    """Who the customer is in one channel account: a Telegram user of a bot, a Bitrix24 user of a portal."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="identities"
    )
    account = models.ForeignKey(
        ChannelAccount, verbose_name=_("channel account"), on_delete=models.PROTECT, related_name="+"
    )
    # The account's channel, copied for lists.
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    external_user_id = models.CharField(_("user id in the channel"), max_length=255)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer identity")
        verbose_name_plural = _("customer identities")
        constraints = [
            models.UniqueConstraint(fields=["account", "external_user_id"], name="customer_identity_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.external_user_id}"


class OrderState(models.TextChoices):
    NEW = "new", _("New")
    PAID = "paid", _("Paid")
    PREPARING = "preparing", _("Preparing")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    WON = "won", _("Closed")
    CANCELLED = "cancelled", _("Cancelled")


class NumberSequence(models.Model):
    """The last human order number given out; orders.services takes the next one under a row lock."""

    name = models.CharField(max_length=32, primary_key=True)
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("number sequence")
        verbose_name_plural = _("number sequences")

    def __str__(self) -> str:
        return f"{self.name}: {self.last_value}"


class Order(models.Model):
    State = OrderState

    class Fulfilment(models.TextChoices):
        DELIVERY = "delivery", _("Delivery")
        PICKUP = "pickup", _("Pickup")

    class Payment(models.TextChoices):
        ONLINE = "online", _("Online")
        CARD = "card", _("Card on receipt")
        CASH = "cash", _("Cash on receipt")

    class PushState(models.TextChoices):
        OFF = "off", _("Not sent (CRM off)")
        PENDING = "pending", _("Waiting to be sent")
        PUSHED = "pushed", _("In Bitrix24")
        FAILED = "failed", _("Failed")

    number = models.PositiveIntegerField(_("number"), unique=True, editable=False)
    # Our id of the order outside: the deal's ORIGIN_ID in Bitrix24. Not the pk or
    # the number, which a reset database gives out again.
    uid = models.UUIDField(_("external id"), default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="orders")
    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    # The customer's message that confirmed the order: one order per confirmation,
    # whichever worker or retry gets there (orders.services.create_order).
    confirmed_by = models.OneToOneField(
        "conversations.Message",
        verbose_name=_("confirmed by message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="confirmed_order",
    )
    # The dialog basket the order was made from (orders.basket.Basket.key): unique in
    # its conversation, so a confirmation sent twice, or answered by two workers at
    # once, makes one order.
    basket_key = models.CharField(_("basket"), max_length=32, blank=True, default="", editable=False)
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    state = models.CharField(_("state"), max_length=16, choices=OrderState.choices, default=OrderState.NEW)
    fulfilment = models.CharField(
        _("delivery or pickup"), max_length=16, choices=Fulfilment.choices, default=Fulfilment.DELIVERY
    )
    address = models.TextField(_("address"), blank=True, default="")
    desired_time = models.CharField(_("desired time"), max_length=255, blank=True, default="")
    payment = models.CharField(_("payment"), max_length=16, choices=Payment.choices, default=Payment.ONLINE)
    comment = models.TextField(_("comment"), blank=True, default="")
    items_total = models.DecimalField(_("goods"), **MONEY)
    delivery_cost = models.DecimalField(_("delivery cost"), **MONEY, default=0)
    total = models.DecimalField(_("total"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # The push to Bitrix24 CRM (orders.push): what is done is kept, so a retry repeats nothing.
    push_state = models.CharField(_("push to Bitrix24"), max_length=16, choices=PushState.choices)
    push_attempts = models.PositiveSmallIntegerField(_("push attempts"), default=0)
    push_error = models.TextField(_("last push error"), blank=True, default="")
    push_retry_at = models.DateTimeField(_("next push attempt"), null=True, blank=True)
    pushed_at = models.DateTimeField(_("pushed"), null=True, blank=True)
    crm_member_id = models.CharField(_("Bitrix24 portal"), max_length=64, blank=True, default="")
    crm_domain = models.CharField(_("Bitrix24 domain"), max_length=255, blank=True, default="")
    crm_contact_id = models.CharField(_("Bitrix24 contact"), max_length=32, blank=True, default="")
    crm_deal_id = models.CharField(_("Bitrix24 deal"), max_length=32, blank=True, default="")
    crm_rows_set = models.BooleanField(_("product rows sent"), default=False)
    crm_comment_id = models.CharField(_("transcript comment"), max_length=32, blank=True, default="")
    crm_stage_id = models.CharField(_("deal stage"), max_length=64, blank=True, default="")
    crm_modified_at = models.DateTimeField(_("deal changed"), null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["crm_domain", "crm_deal_id"], condition=~Q(crm_deal_id=""), name="order_unique_crm_deal"
            ),
            models.UniqueConstraint(
                fields=["conversation", "basket_key"], condition=~Q(basket_key=""), name="order_unique_basket"
            ),
            # Totals are computed by orders.services; not checked here as a sum, since SQLite adds decimals as floats.
            models.CheckConstraint(
                condition=Q(items_total__gte=0) & Q(delivery_cost__gte=0) & Q(total__gte=0),
                name="order_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(fulfilment="delivery") | ~Q(address=""), name="order_delivery_has_address"
            ),
        ]
        indexes = [
            models.Index(fields=["push_state", "push_retry_at"], name="order_push_idx"),
            models.Index(fields=["state", "-created_at"], name="order_state_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"№{self.number}"

    @property
    def crm_deal_url(self) -> str:
        if not (self.crm_deal_id and self.crm_domain):
            return ""
        return f"https://{self.crm_domain}/crm/deal/details/{self.crm_deal_id}/"


class OrderLine(models.Model):
    """One product of an order, as it was at the moment of ordering."""

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    title = models.CharField(_("title"), max_length=500)
    sku = models.CharField(_("SKU"), max_length=64, blank=True, default="")
    pack = models.CharField(_("pack"), max_length=64, blank=True, default="")
    quantity = models.PositiveIntegerField(_("number of items"))
    unit_price = models.DecimalField(_("price"), **MONEY)
    line_total = models.DecimalField(_("sum"), **MONEY)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_price_not_negative"),
            models.CheckConstraint(condition=Q(line_total__gte=0), name="order_line_total_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.title} × {self.quantity}"


class OrderChange(models.Model):
    """A change of an order's state, by a Bitrix24 stage or a person in admin, and what the customer was told."""

    class Source(models.TextChoices):
        CRM = "crm", _("Bitrix24 deal stage")
        STAFF = "staff", _("Staff in admin")

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="changes")
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    stage_id = models.CharField(_("deal stage"), max_length=64, blank=True, default="")
    state = models.CharField(_("state"), max_length=16, choices=OrderState.choices, blank=True, default="")
    message = models.ForeignKey(
        "conversations.Message",
        verbose_name=_("message to the customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("order change")
        verbose_name_plural = _("order changes")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order}: {self.stage_id or self.state}"


class OrderStageText(models.Model):
    """What the customer is told when their deal reaches a Bitrix24 stage, and the order's state then.

    Stage ids are Bitrix24's: "NEW", "PREPARATION", "WON", "LOSE" in the general
    pipeline, "C1:NEW" and the like in pipeline 1, "UC_..." for stages staff
    added. A "C1:..." stage without a row of its own uses the row of its part
    after the colon. A row without a stage gives the text of its state when
    staff set that state in admin.
    """

    stage_id = models.CharField(
        _("Bitrix24 stage"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("E.g. NEW, PREPARATION, WON, LOSE, C1:EXECUTING. Empty: used when staff set the state in admin."),
    )
    state = models.CharField(_("order state"), max_length=16, choices=OrderState.choices)
    text = models.TextField(
        _("text for the customer"),
        blank=True,
        default="",
        help_text=_(
            "{number} is the order number, {reason} the reason from the deal's comment; "
            "a line with {reason} is left out when there is none. Empty: the customer is not told."
        ),
    )

    class Meta:
        verbose_name = _("deal stage text")
        verbose_name_plural = _("deal stage texts")
        ordering = ["state", "stage_id"]
        constraints = [
            models.UniqueConstraint(fields=["stage_id"], condition=~Q(stage_id=""), name="order_stage_text_unique"),
        ]

    def __str__(self) -> str:
        return self.stage_id or self.get_state_display()


class ReturnState(models.TextChoices):
    # A request is feminine in Russian («заявка»), an order masculine: the labels have a context of their own.
    AWAITING_PHOTOS = "awaiting_photos", pgettext_lazy("return state", "Awaiting photos")
    NEW = "new", pgettext_lazy("return state", "New")
    APPROVED = "approved", pgettext_lazy("return state", "Approved")
    REJECTED = "rejected", pgettext_lazy("return state", "Rejected")
    REFUNDED = "refunded", pgettext_lazy("return state", "Money returned")


class ReturnRequest(models.Model):
    """A customer's request to return goods of an order they received (orders/returns.py).

    Opened from the dialog by one customer message (`opened_by`, unique): a
    retried task finds the request that message opened instead of opening
    another. It waits for photos (or the customer's «без фото»), then goes to
    staff, who decide in admin; each decision is told to the customer.
    """

    State = ReturnState

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="returns")
    # Who asked. Not protected: a customer merged into another (orders.services.set_phone)
    # is deleted; the order's customer is who the request is of from then on.
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.SET_NULL, related_name="returns"
    )
    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="return_requests",
    )
    opened_by = models.OneToOneField(
        "conversations.Message",
        verbose_name=_("opened by message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="opened_return",
    )
    # The message that sent the photos asked for (or said there are none): its retry finds the request done.
    submitted_by = models.OneToOneField(
        "conversations.Message",
        verbose_name=_("completed by message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submitted_return",
    )
    reason = models.TextField(_("what the customer wrote"), blank=True, default="")
    lines = models.ManyToManyField(OrderLine, verbose_name=_("order lines returned"), blank=True, related_name="+")
    state = models.CharField(
        _("state"), max_length=16, choices=ReturnState.choices, default=ReturnState.AWAITING_PHOTOS
    )
    without_photos = models.BooleanField(_("the customer has no photos"), default=False)
    note = models.TextField(
        _("note for the customer"),
        blank=True,
        default="",
        help_text=_("Added to the message the customer gets when you change the state (e.g. why it was rejected)."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("return request")
        verbose_name_plural = _("return requests")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The dialog's request waiting for photos (orders.selectors.return_awaiting_photos).
            models.Index(fields=["conversation", "state"], name="return_conversation_state_idx"),
            models.Index(fields=["state", "-created_at"], name="return_state_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"Возврат №{self.pk}" if self.pk else "Возврат"


def _return_photo_path(photo: "ReturnPhoto", filename: str) -> str:
    # `filename` is ours (orders.returns makes it from a random id), never the customer's.
    return f"returns/{photo.request_id}/{filename}"


class ReturnPhoto(models.Model):
    """A photo the customer sent for a return request, downloaded from the channel and kept."""

    request = models.ForeignKey(
        ReturnRequest, verbose_name=_("return request"), on_delete=models.CASCADE, related_name="photos"
    )
    file = models.FileField(_("file"), upload_to=_return_photo_path, max_length=255)
    mime_type = models.CharField(_("type"), max_length=64, blank=True, default="")
    size = models.PositiveIntegerField(_("size, bytes"))
    message = models.ForeignKey(
        "conversations.Message",
        verbose_name=_("message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Which of the message's attachments: with the message, one photo whichever retry stores it.
    attachment_index = models.PositiveSmallIntegerField(_("attachment number"), default=0)
    created_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("return photo")
        verbose_name_plural = _("return photos")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "attachment_index"], name="return_photo_unique_attachment"),
        ]

    def __str__(self) -> str:
        return f"{self.request}: {self.pk}"
