"""The one shape every channel parses its webhook into; after it, all is shared."""

from dataclasses import dataclass, field

from conversations.models import Message


@dataclass
class IncomingMessage:
    channel: str
    dialog_id: str  # the conversation in the channel, unique within its account
    message_id: str  # unique within the dialog: a repeated delivery has the same one
    text: str
    # The channel account (conversations.ChannelAccount) the webhook resolved;
    # conversations and their message ids are scoped by it.
    account_id: int | None = None
    customer_name: str = ""
    customer_id: str = ""
    author: str = Message.Author.CUSTOMER  # OPERATOR for a person answering inside the channel
    channel_data: dict = field(default_factory=dict)  # what the channel's sender needs later
    raw_payload: dict = field(default_factory=dict)
    # Media the customer sent, one dict each, in the channel's terms but with
    # shared keys: {"kind": "voice" | "audio" | "video_note" | "photo" |
    # "sticker" | "document" | "video" | "other", "file_id": str,
    # "mime_type": str, "duration": int seconds, "file_size": int bytes,
    # "file_name": str, ...channel-specific keys the sender needs to fetch it}.
    attachments: list[dict] = field(default_factory=list)
    # False for an update that is recorded but never answered (an edit of a
    # message the bot has already answered).
    needs_reply: bool = True
    # The channel's id of the whole event when it has one besides the
    # message's (Telegram's update_id): recorded with the message, and a
    # redelivery of the event is a repeat even before its message is compared.
    event_id: str = ""
