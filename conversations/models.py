from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    BITRIX24 = "bitrix24", "Bitrix24"
    TELEGRAM = "telegram", "Telegram"
    OZON = "ozon", "Ozon"
    WILDBERRIES = "wildberries", "Wildberries"
    YANDEX_MARKET = "yandex_market", _("Yandex Market")
    CLI = "cli", _("Command line")


class Conversation(models.Model):
    class State(models.TextChoices):
        BOT = "bot", _("Bot answers")
        OPERATOR = "operator", _("Operator answers")
        CLOSED = "closed", _("Closed")

    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    external_id = models.CharField(_("dialog id in the channel"), max_length=255)
    customer_name = models.CharField(_("customer"), max_length=255, blank=True, default="")
    customer_external_id = models.CharField(_("customer id in the channel"), max_length=255, blank=True, default="")
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.BOT)
    assigned_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    # Channel-specific facts a sender needs (e.g. Bitrix24's chat entity type).
    channel_data = models.JSONField(_("channel data"), default=dict, blank=True)
    # History older than this is not shown to the assistant: a new session
    # (e.g. a new Open Lines session in Bitrix24) starts a fresh context.
    context_started_at = models.DateTimeField(_("context started"), null=True, blank=True)
    handed_off_at = models.DateTimeField(_("handed to an operator"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_message_at = models.DateTimeField(_("last message"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="conversation_unique_dialog_per_channel"),
        ]
        indexes = [models.Index(fields=["state", "-last_message_at"], name="conversation_state_recent_idx")]

    def __str__(self) -> str:
        who = self.customer_name or self.customer_external_id or self.external_id
        return f"{self.get_channel_display()}: {who}"


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("Incoming")
        OUT = "out", _("Outgoing")

    class Author(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        BOT = "bot", _("Bot")
        OPERATOR = "operator", _("Operator")
        SYSTEM = "system", _("System")

    class Delivery(models.TextChoices):
        NOT_APPLICABLE = "", _("—")
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    class ReplyKind(models.TextChoices):
        NONE = "", _("—")
        GREETING = "greeting", _("Greeting")
        FAQ = "faq", _("FAQ")
        CATALOG = "catalog", _("Catalog")
        LLM = "llm", _("LLM")
        FALLBACK = "fallback", _("Fallback")
        HANDOFF = "handoff", _("Handoff")
        CLARIFY = "clarify", _("Clarifying question")

    # No index of its own: message_conversation_time_idx starts with it, and
    # every webhook event would keep both up to date.
    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.CASCADE,
        related_name="messages",
        db_index=False,
    )
    # Copied from the conversation so the database can keep external ids
    # unique per channel.
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    author = models.CharField(_("author"), max_length=16, choices=Author.choices)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("operator"), null=True, blank=True, on_delete=models.SET_NULL
    )
    text = models.TextField(_("text"))
    external_id = models.CharField(_("message id in the channel"), max_length=255, blank=True, default="")
    raw_payload = models.JSONField(_("payload"), default=dict, blank=True)
    in_reply_to = models.ForeignKey(
        "self", verbose_name=_("reply to"), null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    # Outgoing messages: delivery through the channel.
    delivery_state = models.CharField(
        _("delivery"), max_length=16, choices=Delivery.choices, blank=True, default=Delivery.NOT_APPLICABLE
    )
    delivery_attempts = models.PositiveIntegerField(_("delivery attempts"), default=0)
    delivery_error = models.TextField(_("last delivery error"), blank=True, default="")
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    # Bot replies: how the reply was made.
    reply_kind = models.CharField(_("made by"), max_length=16, choices=ReplyKind.choices, blank=True, default="")
    products = models.ManyToManyField("catalog.Product", verbose_name=_("products cited"), blank=True, related_name="+")
    llm_model = models.CharField(_("LLM model"), max_length=128, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("time taken, ms"), null=True, blank=True)
    llm_error = models.TextField(_("LLM failure"), blank=True, default="")

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        constraints = [
            # A channel that delivers the same event twice gets one message.
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~Q(external_id=""),
                name="message_unique_external_id_per_channel",
            ),
            # A customer message gets at most one bot reply, even when two
            # workers pick it up at once.
            models.UniqueConstraint(
                fields=["in_reply_to"],
                condition=Q(author="bot"),
                name="message_one_bot_reply_per_message",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_conversation_time_idx"),
            models.Index(
                fields=["delivery_state", "created_at"],
                condition=Q(direction="out"),
                name="message_outgoing_delivery_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_author_display()}: {self.text[:60]}"
