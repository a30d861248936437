from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.models import Channel, ChannelAccount, Conversation, Message
from inbox.models import CannedReply
from inbox.selectors import Show
from integrations.marketplaces.models import MarketplaceAccount
from integrations.marketplaces.tasks import ensure_poll_schedules

MAX_PAGE = 100
MAX_OFFSET = 1_000_000
MAX_REPLY_CHARS = 4000
MAX_MESSAGE_ID = 2**63 - 1


class DialogListInputSerializer(serializers.Serializer):
    """The query parameters of GET /api/inbox/dialogs/: the inbox's filters."""

    show = serializers.ChoiceField(
        choices=[Show.ALL, Show.WAITING, Show.MINE, Show.UNASSIGNED], required=False, default=Show.ALL
    )
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    q = serializers.CharField(required=False, max_length=200, help_text="Customer or message text.")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=MAX_PAGE)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class DialogSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.key", read_only=True)
    operator = serializers.CharField(source="assigned_operator.get_username", read_only=True, allow_null=True)
    waiting = serializers.BooleanField(source="is_waiting", read_only=True, help_text="Waits for an operator.")
    last_text = serializers.CharField(read_only=True, allow_null=True)
    unread = serializers.IntegerField(read_only=True, help_text="Customer messages since the last answer.")

    class Meta:
        model = Conversation
        fields = [
            "id", "channel", "account", "customer_name", "state", "waiting", "operator",
            "last_text", "last_message_at", "unread",
        ]  # fmt: skip
        read_only_fields = fields


class DialogListOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = DialogSerializer(many=True)


class MessageListInputSerializer(serializers.Serializer):
    after = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_MESSAGE_ID, help_text="Only messages after this id."
    )


class MessageSerializer(serializers.ModelSerializer):
    operator = serializers.CharField(source="operator.get_username", read_only=True, allow_null=True)

    class Meta:
        model = Message
        fields = [
            "id", "direction", "author", "operator", "text", "transcript", "reply_kind", "llm_model",
            "prompt_tokens", "completion_tokens", "delivery_state", "delivery_error", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class MessageListOutputSerializer(serializers.Serializer):
    results = MessageSerializer(many=True)


class ReplyInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=MAX_REPLY_CHARS, help_text="The operator's answer to the customer.")
    client_token = serializers.CharField(
        max_length=64,
        required=False,
        default="",
        help_text=(
            "Any string unique to this reply (or the Idempotency-Key header): the same token again "
            "returns the reply already sent and sends nothing."
        ),
    )


class DialogActionInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["take", "return", "close"])


class CannedReplySerializer(serializers.ModelSerializer):
    # A plain string in the schema: a slug's pattern (\w) reads as ASCII there, and shortcuts are Russian words.
    shortcut = serializers.CharField(read_only=True, help_text="Typed as /shortcut in the reply box.")

    class Meta:
        model = CannedReply
        fields = ["id", "title", "shortcut", "text"]
        read_only_fields = fields


MARKETPLACE_EDITABLE = [
    "client_id",
    "token_type",
    "business_id",
    "campaign_ids",
    "base_url",
    "feedbacks_base_url",
    "chat_mode",
    "questions_mode",
    "reviews_mode",
    "poll_interval_s",
]


class MarketplaceSettingsSerializer(serializers.ModelSerializer):
    """A marketplace account's settings and state, without its keys: only whether they are set."""

    has_api_key = serializers.SerializerMethodField()
    has_feedbacks_api_key = serializers.SerializerMethodField()
    campaign_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)

    class Meta:
        model = MarketplaceAccount
        fields = [
            "marketplace",
            *MARKETPLACE_EDITABLE,
            "capabilities",
            "stopped_at",
            "stop_reason",
            "read_only_reason",
            "key_checked_at",
            "key_check_result",
            "has_api_key",
            "has_feedbacks_api_key",
        ]
        read_only_fields = [f for f in fields if f not in MARKETPLACE_EDITABLE]

    def get_has_api_key(self, account) -> bool:
        return bool(account.api_key)

    def get_has_feedbacks_api_key(self, account) -> bool:
        return bool(account.feedbacks_api_key)


class ChannelAccountSerializer(serializers.ModelSerializer):
    """An account without its secrets: only whether they are set; a marketplace account's settings with it."""

    has_token = serializers.SerializerMethodField()
    has_webhook_secret = serializers.SerializerMethodField()
    marketplace = serializers.SerializerMethodField()

    class Meta:
        model = ChannelAccount
        fields = [
            "id",
            "channel",
            "key",
            "name",
            "operator_chat_id",
            "is_active",
            "has_token",
            "has_webhook_secret",
            "marketplace",
        ]
        read_only_fields = fields

    @extend_schema_field(MarketplaceSettingsSerializer(allow_null=True))
    def get_marketplace(self, account):
        found = MarketplaceAccount.objects.filter(channel_account=account).first()
        return MarketplaceSettingsSerializer(found).data if found else None

    def get_has_token(self, account) -> bool:
        return bool(account.token)

    def get_has_webhook_secret(self, account) -> bool:
        return bool(account.webhook_secret)


class ChannelAccountUpdateSerializer(serializers.ModelSerializer):
    """What staff may change of an account through the API: its name, operators' chat and whether it is on.
    Secrets are set in admin (stored encrypted), never through here."""

    marketplace = MarketplaceSettingsSerializer(
        required=False, help_text="A marketplace account's ids, API addresses, modes per stream and poll interval."
    )

    class Meta:
        model = ChannelAccount
        fields = ["name", "operator_chat_id", "is_active", "marketplace"]
        extra_kwargs = {"name": {"required": False}, "operator_chat_id": {"required": False}}

    def validate_marketplace(self, value):
        if not MarketplaceAccount.objects.filter(channel_account=self.instance).exists():
            raise serializers.ValidationError("this account is not a marketplace account")
        return value

    def update(self, instance, validated_data):
        changes = validated_data.pop("marketplace", None)
        instance = super().update(instance, validated_data)
        if changes:
            MarketplaceAccount.objects.filter(channel_account=instance).update(**changes)
            # A stream switched on or off, a new interval: the polls follow.
            ensure_poll_schedules()
        return instance


class DraftActionInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["approve", "discard"])
    text = serializers.CharField(
        max_length=MAX_REPLY_CHARS, required=False, default="", help_text="The edited text; empty keeps the draft's."
    )
