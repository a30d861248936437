"""Finding an account's marketplace side, and what an account's refusals mean for it."""

from django.utils import timezone

from conversations.models import Conversation
from integrations.marketplaces.base import CHAT, MarketplaceApiError
from integrations.marketplaces.models import Marketplace, MarketplaceAccount


def account_of(conversation: Conversation) -> MarketplaceAccount:
    # Read fresh each time: a stop or a read-only flag set by another process counts at once.
    return MarketplaceAccount.objects.select_related("channel_account").get(channel_account_id=conversation.account_id)


def stream_of(conversation: Conversation) -> str:
    return (conversation.channel_data or {}).get("stream") or CHAT


def learn_from(account: MarketplaceAccount, exc: MarketplaceApiError, *, sending: bool) -> None:
    """What a refusal showed, kept on the account: capabilities, a stop (401/403), a read-only flag."""
    changes = {}
    if exc.capabilities:
        changes["capabilities"] = {**account.capabilities, **exc.capabilities}
    if exc.stops_account:
        changes["stopped_at"] = timezone.now()
        changes["stop_reason"] = exc.description or exc.code
    elif sending and exc.capabilities.get("chat_send") is False:
        changes["read_only_reason"] = exc.description or exc.code
    if changes:
        MarketplaceAccount.objects.filter(pk=account.pk).update(**changes)
        for name, value in changes.items():
            setattr(account, name, value)


def _has_account(marketplace: str) -> bool:
    return MarketplaceAccount.objects.filter(marketplace=marketplace).exists()


# The channel registry's "is it set up" checks (integrations/registry.py).
def ozon_configured() -> bool:
    return _has_account(Marketplace.OZON)


def wildberries_configured() -> bool:
    return _has_account(Marketplace.WILDBERRIES)


def yandex_market_configured() -> bool:
    return _has_account(Marketplace.YANDEX_MARKET)
