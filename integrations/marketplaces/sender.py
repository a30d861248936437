"""Delivering recorded answers to a marketplace: one sender for the three, through each one's connector.

Every text passes the marketplace's rules first (bots.marketplace_rules: no
links, contacts, refund promises or other marketplaces; the length limit),
and the message is saved as it went. What the marketplace refuses is kept on
the account (integrations.marketplaces.accounts.learn_from): a 401/403 stops
it, Ozon's refusal for want of Premium makes it read-only. A send whose
outcome is unknown (a timeout) is never repeated: the next poll finds it in
the chat, or the inbox shows it as not confirmed.
"""

import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bots.marketplace_rules import clean_for_marketplace
from conversations.channels import ChannelSender, DeliveryError, DeliveryOutcomeUnknown
from conversations.models import Conversation, Message
from integrations.marketplaces.accounts import account_of, learn_from, stream_of
from integrations.marketplaces.base import CHAT, MarketplaceApiError, SendOutcomeUnknown, Thread
from integrations.marketplaces.connectors import connector_for
from integrations.marketplaces.models import Marketplace

# Ozon takes a seller's message in a buyer chat for 48 hours after the buyer's last one.
OZON_REPLY_WINDOW = datetime.timedelta(hours=48)
WINDOW_CLOSED = "the Ozon chat's 48-hour answer window has closed: the buyer must write again first"


def thread_of(conversation: Conversation) -> Thread:
    data = conversation.channel_data or {}
    stream = stream_of(conversation)
    thread_id = data.get("thread_id") or conversation.external_id.split(":", 1)[-1]
    return Thread(stream=stream, thread_id=str(thread_id), context=dict(data.get("context") or {}))


def last_buyer_message_at(conversation: Conversation) -> datetime.datetime | None:
    """When the buyer last wrote, by the marketplace's clock where it said (else when we recorded it)."""
    said = (conversation.channel_data or {}).get("context", {}).get("customer_message_at")
    moment = parse_datetime(said) if isinstance(said, str) else None
    recorded = (
        conversation.messages.filter(author=Message.Author.CUSTOMER)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    candidates = [m for m in (moment, recorded) if m is not None]
    return max(candidates) if candidates else None


def reply_window_closed(conversation: Conversation, now: datetime.datetime | None = None) -> bool:
    if conversation.channel != Marketplace.OZON or stream_of(conversation) != CHAT:
        return False
    last = last_buyer_message_at(conversation)
    return last is not None and (now or timezone.now()) > last + OZON_REPLY_WINDOW


class MarketplaceSender(ChannelSender):
    def send(self, message) -> str:
        conversation = message.conversation
        account = account_of(conversation)
        if account.stopped_at is not None:
            raise DeliveryError(f"the marketplace account is stopped: {account.stop_reason}", permanent=True)
        stream = stream_of(conversation)
        if stream == CHAT and account.read_only_reason:
            raise DeliveryError(f"the account cannot send chat messages: {account.read_only_reason}", permanent=True)
        if reply_window_closed(conversation):
            data = {**(conversation.channel_data or {}), "reply_window_closed": True}
            Conversation.objects.filter(pk=conversation.pk).update(channel_data=data)
            conversation.channel_data = data
            raise DeliveryError(WINDOW_CLOSED, permanent=True)
        guarded = clean_for_marketplace(message.text, account.marketplace)
        if not guarded.text.strip():
            raise DeliveryError("nothing is left of the text under the marketplace's rules", permanent=True)
        if guarded.text != message.text:
            # The transcript shows what the buyer got.
            Message.objects.filter(pk=message.pk).update(text=guarded.text)
            message.text = guarded.text
        try:
            return connector_for(account).send(thread_of(conversation), guarded.text)
        except SendOutcomeUnknown as exc:
            raise DeliveryOutcomeUnknown(str(exc) or "no answer from the marketplace") from None
        except MarketplaceApiError as exc:
            learn_from(account, exc, sending=True)
            raise DeliveryError(str(exc), permanent=exc.permanent) from None

    def hand_off(self, conversation, reason: str) -> None:
        # Marketplaces have no operator queue of their own: the inbox lists the dialog as waiting.
        return None
