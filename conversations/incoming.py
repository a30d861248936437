"""The one shape every channel parses its webhook into; after it, all is shared."""

from dataclasses import dataclass, field

from conversations.models import Message


@dataclass
class IncomingMessage:
    channel: str
    dialog_id: str  # the conversation in the channel
    message_id: str  # unique within the channel: a repeated delivery has the same one
    text: str
    customer_name: str = ""
    customer_id: str = ""
    author: str = Message.Author.CUSTOMER  # OPERATOR for a person answering inside the channel
    channel_data: dict = field(default_factory=dict)  # what the channel's sender needs later
    raw_payload: dict = field(default_factory=dict)
