"""The connector of an account's marketplace."""

from django.utils.module_loading import import_string

from integrations.marketplaces.base import Connector, MarketplaceHttp
from integrations.marketplaces.models import Marketplace

CONNECTORS = {
    Marketplace.OZON: "integrations.marketplaces.ozon.OzonConnector",
    Marketplace.WILDBERRIES: "integrations.marketplaces.wildberries.WildberriesConnector",
    Marketplace.YANDEX_MARKET: "integrations.marketplaces.yandex_market.YandexMarketConnector",
}


def connector_for(account, http: MarketplaceHttp | None = None) -> Connector:
    return import_string(CONNECTORS[account.marketplace])(account, http)
