from rest_framework import serializers

from conversations.models import Channel, ChannelAccount, Conversation, Message
from inbox.models import CannedReply
from inbox.selectors import Show

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


class ChannelAccountSerializer(serializers.ModelSerializer):
    """An account without its secrets: only whether they are set."""

    has_token = serializers.SerializerMethodField()
    has_webhook_secret = serializers.SerializerMethodField()

    class Meta:
        model = ChannelAccount
        fields = ["id", "channel", "key", "name", "operator_chat_id", "is_active", "has_token", "has_webhook_secret"]
        read_only_fields = fields

    def get_has_token(self, account) -> bool:
        return bool(account.token)

    def get_has_webhook_secret(self, account) -> bool:
        return bool(account.webhook_secret)


class ChannelAccountUpdateSerializer(serializers.ModelSerializer):
    """What staff may change of an account through the API: its name, operators' chat and whether it is on.
    Secrets are set in admin (stored encrypted), never through here."""

    class Meta:
        model = ChannelAccount
        fields = ["name", "operator_chat_id", "is_active"]
        extra_kwargs = {"name": {"required": False}, "operator_chat_id": {"required": False}}
