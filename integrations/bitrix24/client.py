"""Bitrix24 REST: one client for both ways a bot is connected.

- an inbound webhook URL (`B24_WEBHOOK_URL`, https://<portal>/rest/<user>/<secret>/):
  the secret is in the URL, calls go to <url><method>.json;
- an OAuth application installed on a portal (Portal row): calls go to the
  portal's REST endpoint with `auth=<access token>`.

Every call has a timeout; secrets never appear in logs or error messages.
"""

import logging
from dataclasses import dataclass, field

import requests
from django.conf import settings

from integrations.bitrix24.models import Portal

logger = logging.getLogger(__name__)

USER_AGENT = "storebot/0.1 (Bitrix24 chat bot)"


class Bitrix24Error(Exception):
    """A REST call that failed; `code` is Bitrix24's error code ("QUERY_LIMIT_EXCEEDED")."""

    def __init__(self, code: str, description: str = "", *, status: int | None = None, permanent: bool = False):
        self.code = code
        self.description = description
        self.status = status
        self.permanent = permanent
        super().__init__(f"{code}: {description}" if description else code)


@dataclass
class Bitrix24Client:
    """Use `for_webhook()` or `for_portal()`; `call()` returns the method's `result`."""

    endpoint: str  # ends with "/"; for a webhook it holds the secret
    portal: Portal | None = None
    timeout: float = 10.0
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self):
        self.session.headers.setdefault("User-Agent", USER_AGENT)

    def __repr__(self) -> str:
        # The endpoint of a webhook contains its secret.
        return f"Bitrix24Client(portal={self.portal.domain if self.portal else 'webhook'})"

    @classmethod
    def for_webhook(cls, url: str | None = None) -> "Bitrix24Client":
        url = url or settings.B24_WEBHOOK_URL
        if not url:
            raise Bitrix24Error("NOT_CONFIGURED", "B24_WEBHOOK_URL is not set", permanent=True)
        return cls(endpoint=url.rstrip("/") + "/", timeout=settings.B24_TIMEOUT_S)

    @classmethod
    def for_portal(cls, portal: Portal) -> "Bitrix24Client":
        endpoint = portal.client_endpoint or f"https://{portal.domain}/rest/"
        return cls(endpoint=endpoint.rstrip("/") + "/", portal=portal, timeout=settings.B24_TIMEOUT_S)

    @classmethod
    def for_member(cls, member_id: str = "") -> "Bitrix24Client":
        """The client for a portal's events: its OAuth tokens when installed as an app, else the webhook."""
        portal = Portal.objects.filter(member_id=member_id).first() if member_id else None
        if portal is not None and portal.access_token:
            return cls.for_portal(portal)
        return cls.for_webhook()

    def call(self, method: str, params: dict | None = None):
        """POST one method with JSON parameters; its `result`, or Bitrix24Error."""
        body = self._request(method, params or {})
        return body.get("result")

    def _request(self, method: str, params: dict) -> dict:
        if self.portal is not None:
            params = {**params, "auth": self.portal.access_token}
        try:
            response = self.session.post(f"{self.endpoint}{method}.json", json=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Bitrix24Error("CONNECTION_ERROR", type(exc).__name__) from None
        try:
            body = response.json()
        except ValueError:
            raise Bitrix24Error(
                "BAD_RESPONSE", f"HTTP {response.status_code}, not JSON", status=response.status_code
            ) from None
        if not isinstance(body, dict):
            raise Bitrix24Error("BAD_RESPONSE", "not a JSON object", status=response.status_code)
        if "error" in body or response.status_code >= 400:
            code = str(body.get("error") or f"HTTP_{response.status_code}")
            raise Bitrix24Error(
                code,
                str(body.get("error_description") or "")[:300],
                status=response.status_code,
                permanent=response.status_code in (400, 403, 404),
            )
        return body
