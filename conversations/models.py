from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from conversations.encryption import EncryptedTextField


class Channel(models.TextChoices):
    BITRIX24 = "bitrix24", "Bitrix24"
    TELEGRAM = "telegram", "Telegram"
    OZON = "ozon", "Ozon"
    WILDBERRIES = "wildberries", "Wildberries"
    YANDEX_MARKET = "yandex_market", _("Yandex Market")
    CLI = "cli", _("Command line")


class ChannelAccount(models.Model):
    """One bot or connection of a channel: a Telegram bot, a Bitrix24 portal, a marketplace account.

    Conversations belong to an account, so dialog and message ids coming from
    two accounts never collide. `key` names the account in its webhook URL
    (/tg/<key>/webhook) or is the channel's own id for it (a Bitrix24 portal's
    member_id); the account configured from the environment is "default".
    Secrets are encrypted at rest and never shown back in admin.
    """

    DEFAULT_KEY = "default"

    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    key = models.SlugField(_("key"), max_length=64, help_text=_("Used in the account's webhook address."))
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    token = EncryptedTextField(_("token"), blank=True, default="")
    webhook_secret = EncryptedTextField(_("webhook secret"), blank=True, default="")
    # Where staff are told about a hand-off (a Telegram group chat id, a Bitrix24 dialog id).
    operator_chat_id = models.CharField(_("operators' chat"), max_length=64, blank=True, default="")
    is_active = models.BooleanField(_("active"), default=True)
    # What the channel learned about the account (a bot's username and id...).
    options = models.JSONField(_("options"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("channel account")
        verbose_name_plural = _("channel accounts")
        ordering = ["channel", "key"]
        constraints = [models.UniqueConstraint(fields=["channel", "key"], name="channel_account_unique_key")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.name or self.key}"


class Conversation(models.Model):
    class State(models.TextChoices):
        BOT = "bot", _("Bot answers")
        OPERATOR = "operator", _("Operator answers")
        CLOSED = "closed", _("Closed")

    # The account's channel, copied for filters and lists.
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    account = models.ForeignKey(
        ChannelAccount, verbose_name=_("channel account"), on_delete=models.PROTECT, related_name="conversations"
    )
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
    # What the bot last showed (product ids, the query, its price and pack
    # size), so a follow-up such as «а подешевле?» refers to it; written with
    # each bot reply (bots.dialog), void once older than the context or a hand-off.
    dialog_context = models.JSONField(_("dialog context"), default=dict, blank=True)
    handed_off_at = models.DateTimeField(_("handed to an operator"), null=True, blank=True)
    # Why the last hand-off happened, for staff and the reports.
    handoff_reason = models.CharField(_("hand-off reason"), max_length=500, blank=True, default="")
    # The customer blocked the bot (Telegram): nothing is sent until they unblock it.
    blocked_at = models.DateTimeField(_("blocked the bot"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_message_at = models.DateTimeField(_("last message"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "external_id"], name="conversation_unique_dialog_per_account"),
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
        # The send left and no answer came back: never sent again blindly; the
        # channel's next poll finds it (sent) or not (failed, for a person).
        UNKNOWN = "unknown", _("Unknown: being checked")
        # A reply made for an operator to approve, edit or discard; never sent by itself.
        DRAFT = "draft", _("Draft")
        DISCARDED = "discarded", _("Discarded draft")

    class ReplyKind(models.TextChoices):
        NONE = "", _("—")
        GREETING = "greeting", _("Greeting")
        FAQ = "faq", _("FAQ")
        CATALOG = "catalog", _("Catalog")
        LLM = "llm", _("LLM")
        FALLBACK = "fallback", _("Fallback")
        HANDOFF = "handoff", _("Handoff")
        CLARIFY = "clarify", _("Clarifying question")
        ORDER = "order", _("Order in the dialog")
        REVIEW = "review", _("Thanks for a review")

    # No index of its own: message_conversation_time_idx starts with it, and
    # every webhook event would keep both up to date.
    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.CASCADE,
        related_name="messages",
        db_index=False,
    )
    # The conversation's channel, copied for filters and lists.
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    author = models.CharField(_("author"), max_length=16, choices=Author.choices)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("operator"), null=True, blank=True, on_delete=models.SET_NULL
    )
    text = models.TextField(_("text"))
    # Incoming: the channel's id, unique within the dialog (repeats are dropped).
    # Outgoing: the id the channel gave the sent message, kept for reference
    # only: ids repeat across portals and chats, and recording a delivered
    # send must never fail on a constraint.
    external_id = models.CharField(_("message id in the channel"), max_length=255, blank=True, default="")
    # Media the customer sent (conversations.incoming.IncomingMessage.attachments).
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    # What a voice message said, once transcribed; the text then answered.
    transcript = models.TextField(_("transcript"), blank=True, default="")
    # False for what is recorded but never answered (an edited message, one
    # the bot failed to answer and handed to an operator).
    needs_reply = models.BooleanField(_("needs a reply"), default=True)
    # Customer messages: how often answering raised, and the last reason.
    answer_failures = models.PositiveSmallIntegerField(_("failed answers"), default=0)
    answer_error = models.TextField(_("last answering error"), blank=True, default="")
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
    # Set while a worker sends it: no other worker starts the same send
    # (conversations.services.deliver) until REPLY_SEND_LEASE_S have passed.
    delivery_claimed_at = models.DateTimeField(_("being sent since"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    # Bot replies: how the reply was made.
    reply_kind = models.CharField(_("made by"), max_length=16, choices=ReplyKind.choices, blank=True, default="")
    products = models.ManyToManyField("catalog.Product", verbose_name=_("products cited"), blank=True, related_name="+")
    llm_model = models.CharField(_("LLM model"), max_length=128, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("time taken, ms"), null=True, blank=True)
    llm_error = models.TextField(_("LLM failure"), blank=True, default="")
    # Follow-ups the assistant suggests; channels with buttons show them.
    suggestions = models.JSONField(_("suggested replies"), default=list, blank=True)
    # Operator replies: the token of the reply box (or the API's Idempotency-Key)
    # it was sent from, so a double submit or a retried request sends once.
    client_token = models.CharField(_("reply token"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        constraints = [
            # A channel that delivers the same message twice gets one message.
            models.UniqueConstraint(
                fields=["conversation", "external_id"],
                condition=Q(direction="in") & ~Q(external_id=""),
                name="message_unique_incoming_id_per_dialog",
            ),
            # A customer message gets at most one bot reply, even when two
            # workers pick it up at once.
            models.UniqueConstraint(
                fields=["in_reply_to"],
                condition=Q(author="bot"),
                name="message_one_bot_reply_per_message",
            ),
            models.UniqueConstraint(
                fields=["conversation", "client_token"],
                condition=Q(author="operator") & ~Q(client_token=""),
                name="message_one_operator_reply_per_token",
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


class ReceivedEvent(models.Model):
    """A channel event already taken in (Telegram's update_id per bot), so a
    redelivery is dropped before any work. Messages have their own unique key;
    this covers the events that are not messages too."""

    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("received event")
        verbose_name_plural = _("received events")
        constraints = [
            models.UniqueConstraint(fields=["account", "event_id"], name="received_event_unique_per_account")
        ]

    def __str__(self) -> str:
        return self.event_id
