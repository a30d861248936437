"""Marketplace accounts and their poll cursors.

An account is one seller account on one marketplace, tied one-to-one to a
conversations.ChannelAccount (channel "ozon", "wildberries" or
"yandex_market"), so its chats, questions and reviews are conversations like
any other channel's and appear in the operator inbox. Keys are encrypted at
rest (conversations.encryption, rotated with MultiFernet) and never shown
again once saved.
"""

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations.encryption import EncryptedTextField
from conversations.models import Channel, ChannelAccount


class Marketplace(models.TextChoices):
    OZON = Channel.OZON.value, "Ozon"
    WILDBERRIES = Channel.WILDBERRIES.value, "Wildberries"
    YANDEX_MARKET = Channel.YANDEX_MARKET.value, _("Yandex Market")


# The marketplaces' real hosts: a field per account, so a local stand-in can replace them.
DEFAULT_BASE_URLS = {
    Marketplace.OZON: "https://api-seller.ozon.ru",
    Marketplace.WILDBERRIES: "https://buyer-chat-api.wildberries.ru",
    Marketplace.YANDEX_MARKET: "https://api.partner.market.yandex.ru",
}
WB_FEEDBACKS_BASE_URL = "https://feedbacks-api.wildberries.ru"


class Stream(models.TextChoices):
    CHAT = "chat", _("Buyer chats")
    QUESTIONS = "questions", _("Questions")
    REVIEWS = "reviews", _("Reviews")


class Mode(models.TextChoices):
    AUTO = "auto", _("Answer automatically")
    DRAFT = "draft", _("Draft for an operator")
    OFF = "off", _("Off")


def new_push_secret() -> str:
    return secrets.token_urlsafe(24)


class MarketplaceAccount(models.Model):
    channel_account = models.OneToOneField(
        ChannelAccount, verbose_name=_("channel account"), on_delete=models.CASCADE, related_name="marketplace"
    )
    marketplace = models.CharField(_("marketplace"), max_length=32, choices=Marketplace.choices)
    # Ozon: the Client-Id sent with the Api-Key.
    client_id = models.CharField(_("Client-Id"), max_length=64, blank=True, default="")
    # Wildberries: the token's type as the seller's cabinet names it (personal, service, base, test).
    token_type = models.CharField(_("token type"), max_length=32, blank=True, default="")
    # Yandex Market: the business (chats belong to it) and its campaigns (shops).
    business_id = models.CharField(_("businessId"), max_length=32, blank=True, default="")
    campaign_ids = models.JSONField(_("campaign ids"), default=list, blank=True)
    api_key = EncryptedTextField(_("API key"), blank=True, default="")
    # Wildberries scopes its keys: questions and reviews may need a key of their own.
    feedbacks_api_key = EncryptedTextField(_("questions and reviews key"), blank=True, default="")
    base_url = models.URLField(_("API address"), max_length=300, blank=True, default="")
    feedbacks_base_url = models.URLField(_("questions and reviews API address"), max_length=300, blank=True, default="")
    chat_mode = models.CharField(_("buyer chats"), max_length=8, choices=Mode.choices, default=Mode.DRAFT)
    questions_mode = models.CharField(_("questions"), max_length=8, choices=Mode.choices, default=Mode.DRAFT)
    reviews_mode = models.CharField(_("reviews"), max_length=8, choices=Mode.choices, default=Mode.DRAFT)
    # What the marketplace's answers showed the account may do, e.g. {"chat_send": false}.
    capabilities = models.JSONField(_("capabilities"), default=dict, blank=True)
    # Set when the marketplace refused sending (Ozon chats need Premium): polls go on, sends stop.
    read_only_reason = models.TextField(_("why answers are not sent"), blank=True, default="")
    # Set on a 401/403 for reading: the account is not polled until staff fix the key.
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    stop_reason = models.TextField(_("why it stopped"), blank=True, default="")
    # The secret part of the account's push URL (Ozon and Market notifications).
    push_secret = EncryptedTextField(_("notification secret"), blank=True, default=new_push_secret)
    poll_interval_s = models.PositiveIntegerField(_("poll every, seconds"), default=60)
    key_checked_at = models.DateTimeField(_("key checked"), null=True, blank=True)
    key_check_result = models.TextField(_("key check result"), blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("marketplace account")
        verbose_name_plural = _("marketplace accounts")
        ordering = ["marketplace", "channel_account__name"]

    def __str__(self) -> str:
        return f"{self.get_marketplace_display()}: {self.channel_account.name or self.channel_account.key}"

    @property
    def api_base_url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URLS[self.marketplace]).rstrip("/")

    @property
    def feedbacks_api_base_url(self) -> str:
        return (self.feedbacks_base_url or WB_FEEDBACKS_BASE_URL).rstrip("/")

    def mode_for(self, stream: str) -> str:
        return {
            Stream.CHAT: self.chat_mode,
            Stream.QUESTIONS: self.questions_mode,
            Stream.REVIEWS: self.reviews_mode,
        }[stream]


class PollCursor(models.Model):
    """Where the poll of one account's stream stands; advanced only after what it read is committed."""

    account = models.ForeignKey(
        MarketplaceAccount, verbose_name=_("marketplace account"), on_delete=models.CASCADE, related_name="cursors"
    )
    stream = models.CharField(_("stream"), max_length=16, choices=Stream.choices)
    cursor = models.JSONField(_("cursor"), default=dict, blank=True)
    # A poll holds the stream until then: two polls of one stream never overlap.
    leased_until = models.DateTimeField(_("being polled until"), null=True, blank=True)
    # Back off until then (429/420/5xx, the marketplace's retry hint).
    not_before = models.DateTimeField(_("next poll not before"), null=True, blank=True)
    # Set by a push notification: poll at the next tick whatever the interval.
    poll_requested_at = models.DateTimeField(_("poll asked for"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    # Polls in a row that failed: the back-off doubles with each.
    failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    items_seen = models.PositiveBigIntegerField(_("items recorded"), default=0)

    class Meta:
        verbose_name = _("poll cursor")
        verbose_name_plural = _("poll cursors")
        constraints = [models.UniqueConstraint(fields=["account", "stream"], name="poll_cursor_unique_stream")]

    def __str__(self) -> str:
        return f"{self.account} · {self.get_stream_display()}"


class AnswerDeadline(models.Model):
    """How soon a marketplace's buyers must be answered on one account: a row per rule, seeded from the
    marketplace's own rules (integrations.marketplaces.deadlines) and editable by staff.

    The clock starts at the oldest buyer message not yet answered and stops
    only on a seller's message that went out. A rule with `max_rating` covers
    reviews of that many stars or fewer.
    """

    account = models.ForeignKey(
        MarketplaceAccount, verbose_name=_("marketplace account"), on_delete=models.CASCADE, related_name="deadlines"
    )
    stream = models.CharField(_("stream"), max_length=16, choices=Stream.choices)
    max_rating = models.PositiveSmallIntegerField(
        _("reviews of at most, stars"), null=True, blank=True, help_text=_("Empty: every item of the stream.")
    )
    minutes = models.PositiveIntegerField(_("answer within, minutes"))
    in_working_hours = models.BooleanField(
        _("counted in working hours"),
        default=False,
        help_text=_("Off: calendar time, as the marketplace counts its own windows (Ozon's 48 hours)."),
    )
    warn_before_minutes = models.PositiveIntegerField(_("warn before, minutes"), default=60)
    note = models.CharField(_("why"), max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("answer deadline")
        verbose_name_plural = _("answer deadlines")
        ordering = ["account", "stream", "max_rating"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "stream", "max_rating"],
                nulls_distinct=False,
                name="answer_deadline_unique_rule",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} · {self.get_stream_display()}"
