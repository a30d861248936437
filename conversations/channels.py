"""The one interface every chat channel implements, and the registry that finds it.

Conversations reach a channel only through here: `sender_for(channel)` returns
the configured sender (settings.CHANNEL_SENDERS maps a channel to a dotted
class path), the way Django picks a mail backend. Each outside system keeps
its real sender in integrations/<system>/; `LocmemSender` records what would
have been sent, for tests and for channels with nothing to send to.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string


class DeliveryError(Exception):
    """A send that did not go through.

    `permanent` tells the caller to stop retrying (the customer blocked the
    bot, the chat is gone) rather than retry later (rate limit, outage).
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class ChannelSender:
    """What a channel does for conversations. Subclasses override both methods."""

    def send(self, message) -> str:
        """Deliver an outgoing Message; return the channel's id for it ("" if none)."""
        raise NotImplementedError

    def hand_off(self, conversation, reason: str) -> None:
        """Tell the channel a person takes over (transfer to an operator queue, notify staff)."""
        raise NotImplementedError


@dataclass
class SentMessage:
    channel: str
    dialog: str
    text: str
    author: str
    products: list = field(default_factory=list)
    kind: str = ""


@dataclass
class HandOff:
    channel: str
    dialog: str
    reason: str


# Like django.core.mail.outbox: what LocmemSender "sent" in this process.
outbox: list[SentMessage] = []
handoffs: list[HandOff] = []


class LocmemSender(ChannelSender):
    def send(self, message) -> str:
        conversation = message.conversation
        outbox.append(
            SentMessage(
                channel=conversation.channel,
                dialog=conversation.external_id,
                text=message.text,
                author=message.author,
                products=[p.title for p in message.products.all()],
                kind=message.reply_kind,
            )
        )
        return f"locmem-{len(outbox)}"

    def hand_off(self, conversation, reason: str) -> None:
        handoffs.append(HandOff(channel=conversation.channel, dialog=conversation.external_id, reason=reason))


class NullSender(ChannelSender):
    """For the command-line channel: the reply is printed by the caller, nothing is sent."""

    def send(self, message) -> str:
        return ""

    def hand_off(self, conversation, reason: str) -> None:
        return None


def sender_for(channel: str) -> ChannelSender:
    path = settings.CHANNEL_SENDERS.get(channel) or settings.CHANNEL_SENDERS.get("*")
    if not path:
        raise DeliveryError(f"no sender configured for channel {channel!r}", permanent=True)
    return import_string(path)()
