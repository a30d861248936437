# Models of each integration live in its package; Django finds them here.
from integrations.bitrix24.models import OAuthState, Portal
from integrations.marketplaces.models import MarketplaceAccount, PollCursor

__all__ = ["MarketplaceAccount", "OAuthState", "PollCursor", "Portal"]
