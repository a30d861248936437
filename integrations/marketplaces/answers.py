"""What the bot may say on a marketplace, and when a person answers instead (the channel's reply policy).

Every reply is cleaned by the marketplace's rules (bots.marketplace_rules).
It is held as a draft for an operator when the account's mode for the stream
is "draft", when the buyer writes of a defect, a wrong item or a return, or
leaves a 1–2★ review (those are never answered automatically), and while
the account may not send chat messages.
"""

from bots.marketplace_rules import clean_for_marketplace, needs_a_person
from integrations.marketplaces.accounts import account_of, stream_of
from integrations.marketplaces.base import CHAT
from integrations.marketplaces.models import Mode

DRAFT_MODE = "the account's mode for this stream is a draft for an operator"


def reply_policy(message, text: str) -> tuple[str, str]:
    conversation = message.conversation
    account = account_of(conversation)
    stream = stream_of(conversation)
    cleaned = clean_for_marketplace(text, account.marketplace).text
    if account.mode_for(stream) != Mode.AUTO:
        return cleaned, DRAFT_MODE
    context = (conversation.channel_data or {}).get("context") or {}
    rating = context.get("rating")
    reason = needs_a_person(
        message.transcript or message.text, stream=stream, rating=rating if isinstance(rating, int) else None
    )
    if reason:
        return cleaned, f"a marketplace buyer's {reason}: never answered automatically"
    if stream == CHAT and account.read_only_reason:
        return cleaned, f"the account cannot send chat messages ({account.read_only_reason})"
    return cleaned, ""
