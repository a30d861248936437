"""Every chat channel storebot speaks, one line each (settings.CHANNEL_REGISTRY).

A new channel is one package under integrations/ plus one line here: its
webhooks are mounted under the prefix, its sender delivers replies, and the
admin lists it once it is configured or has conversations.
"""

from django.utils.translation import gettext_lazy as _

from conversations.channels import ChannelEntry

CHANNELS = [
    ChannelEntry(
        code="bitrix24",
        label="Bitrix24",
        sender="integrations.bitrix24.sender.Bitrix24Sender",
        urls=("b24/", "integrations.bitrix24.urls"),
        configured="integrations.bitrix24.services.is_configured",
    ),
    ChannelEntry(
        code="telegram",
        label="Telegram",
        sender="integrations.telegram.sender.TelegramSender",
        urls=("tg/", "integrations.telegram.urls"),
        configured="integrations.telegram.services.is_configured",
    ),
    *(
        ChannelEntry(
            code=code,
            label=label,
            sender="integrations.marketplaces.sender.MarketplaceSender",
            # One URL module for the three: each account's push notifications.
            urls=("mp/", "integrations.marketplaces.urls"),
            configured=f"integrations.marketplaces.accounts.{code}_configured",
            reply_policy="integrations.marketplaces.answers.reply_policy",
            polled=True,
        )
        for code, label in (("ozon", "Ozon"), ("wildberries", "Wildberries"), ("yandex_market", _("Yandex Market")))
    ),
    ChannelEntry(
        code="cli",
        label=_("Command line"),
        sender="conversations.channels.NullSender",
    ),
]
