# Admin classes of each integration live in its package; Django finds them here.
from integrations import accounts_admin
from integrations.bitrix24 import admin as bitrix24_admin
from integrations.marketplaces import admin as marketplaces_admin

__all__ = ["accounts_admin", "bitrix24_admin", "marketplaces_admin"]
