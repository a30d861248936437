"""The one interface every chat channel implements, and the registry that finds it.

Conversations reach a channel only through here. The registry
(settings.CHANNEL_REGISTRY, a list of `ChannelEntry`, integrations/registry.py)
names each channel's label, sender, URL module and settings check; URLs, the
admin's channel filter and the senders come from it. `sender_for(channel)`
returns the channel's sender, which settings.CHANNEL_SENDERS may override
(a channel, or "*" for all, mapped to a dotted class path), the way Django
picks a mail backend. `LocmemSender` records what would have been sent, for
tests. A channel without a sender fails its sends permanently: a reply that
cannot go anywhere is shown as failed, never as sent.
"""

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

# The button every channel with buttons offers under a bot reply.
OPERATOR_BUTTON = "Позвать оператора"
# A suggestion asking for the customer's phone: Telegram shows it as its
# contact-sharing button; channels without one leave it out (the text asks).
SHARE_PHONE_BUTTON = "Поделиться номером"


@dataclass(frozen=True)
class ChannelEntry:
    """One channel in the registry."""

    code: str  # conversations.models.Channel value
    label: str
    sender: str  # dotted path of its ChannelSender
    urls: tuple[str, str] | None = None  # (URL prefix, URL module) of its webhooks
    # Dotted path of a function () -> bool: is the channel set up in settings?
    configured: str | None = None
    # Dotted path of a function (customer message, reply text) -> ReplyDecision:
    # the bot's reply as the channel allows it, and why a person must approve it
    # first. A reply held so is recorded as a draft and the dialog goes to an operator.
    reply_policy: str | None = None
    # Messages come by polling the channel's API (the marketplaces); its
    # webhook, if any, only says when to poll.
    polled: bool = False

    def is_configured(self) -> bool:
        return bool(self.configured) and bool(import_string(self.configured)())


@functools.cache
def _registry(path: str) -> tuple[ChannelEntry, ...]:
    return tuple(import_string(path))


def registry() -> tuple[ChannelEntry, ...]:
    return _registry(settings.CHANNEL_REGISTRY)


def entry_for(channel: str) -> ChannelEntry | None:
    return next((entry for entry in registry() if entry.code == channel), None)


@dataclass(frozen=True)
class ReplyDecision:
    """A channel's word on a bot reply before it is recorded (ChannelEntry.reply_policy)."""

    text: str
    # Why a person must approve it first; "" to send it.
    hold_reason: str = ""
    # What made the reply, when the channel's words replace the assistant's (a review's thanks).
    kind: str = ""


def reply_policy(message, text: str) -> ReplyDecision:
    entry = entry_for(message.conversation.channel)
    if entry is None or not entry.reply_policy:
        return ReplyDecision(text)
    return import_string(entry.reply_policy)(message, text)


# Requests this thread has made to outside systems (counted by the HTTP seam,
# integrations.http): deliver() tells from it whether a send that raised had
# reached the channel at all, and so whether trying again could repeat it.
_outbound = threading.local()


def outbound_requests() -> int:
    return getattr(_outbound, "count", 0)


def count_outbound_request() -> None:
    _outbound.count = outbound_requests() + 1


class DeliveryError(Exception):
    """A send that did not go through.

    `permanent` tells the caller to stop retrying (the customer blocked the
    bot, the chat is gone) rather than retry later (rate limit, outage).
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class DeliveryOutcomeUnknown(Exception):
    """The send left and no answer came back: the customer may have it or not.

    The message is marked unknown and not sent again by any retry; a channel
    that can read its own sent messages back (a marketplace's poll) settles it.
    """


@dataclass
class MediaFile:
    """A customer's file fetched from the channel (a voice message to transcribe)."""

    content: bytes
    filename: str
    mime_type: str = ""


class ChannelSender:
    """What a channel does for conversations. Subclasses override send and hand_off."""

    def send(self, message) -> str:
        """Deliver an outgoing Message; return the channel's id for it ("" if none)."""
        raise NotImplementedError

    def hand_off(self, conversation, reason: str) -> None:
        """Tell the channel a person takes over (transfer to an operator queue, notify staff)."""
        raise NotImplementedError

    def fetch_media(self, message, attachment: dict, *, max_bytes: int) -> MediaFile:
        """Download one of an incoming message's attachments; DeliveryError when it cannot be had."""
        raise DeliveryError(f"channel {message.conversation.channel!r} cannot fetch files", permanent=True)


@dataclass
class SentMessage:
    channel: str
    dialog: str
    text: str
    author: str
    products: list = field(default_factory=list)
    kind: str = ""
    suggestions: list = field(default_factory=list)


@dataclass
class HandOff:
    channel: str
    dialog: str
    reason: str


# Like django.core.mail.outbox: what LocmemSender "sent" in this process.
outbox: list[SentMessage] = []
handoffs: list[HandOff] = []
# Files LocmemSender "downloads": attachment file_id -> MediaFile.
media: dict[str, MediaFile] = {}


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
                suggestions=list(message.suggestions or []),
            )
        )
        return f"locmem-{len(outbox)}"

    def hand_off(self, conversation, reason: str) -> None:
        handoffs.append(HandOff(channel=conversation.channel, dialog=conversation.external_id, reason=reason))

    def fetch_media(self, message, attachment: dict, *, max_bytes: int) -> MediaFile:
        found = media.get(attachment.get("file_id", ""))
        if found is None:
            raise DeliveryError("locmem: no such file", permanent=True)
        if len(found.content) > max_bytes:
            raise DeliveryError("the file is too large", permanent=True)
        return found


class NullSender(ChannelSender):
    """For the command-line channel: the reply is printed by the caller, nothing is sent."""

    def send(self, message) -> str:
        return ""

    def hand_off(self, conversation, reason: str) -> None:
        return None


def sender_for(channel: str) -> ChannelSender:
    overrides = settings.CHANNEL_SENDERS
    path = overrides.get(channel) or overrides.get("*")
    if not path:
        entry = entry_for(channel)
        path = entry.sender if entry else ""
    if not path:
        raise DeliveryError(f"no sender for channel {channel!r}: the reply cannot be delivered", permanent=True)
    return _sender_class(path)()


_sender_class: Callable[[str], type] = functools.lru_cache(maxsize=32)(import_string)
