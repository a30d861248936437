# Models of each integration live in its package; Django finds them here.
from integrations.bitrix24.models import OAuthState, Portal

__all__ = ["OAuthState", "Portal"]
