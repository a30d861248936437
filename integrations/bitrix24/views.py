"""Bitrix24's calls to us: chat-bot events, and the OAuth install started from our side.

Plain Django views, not DRF: the event body is read raw (PHP-style form keys
or JSON) and every answer, errors included, is JSON of the shape {"error": "..."}.
The event endpoint stands behind the shared webhook edge (integrations/webhooks.py).
"""

from django.http import JsonResponse

from integrations.bitrix24 import events, services
from integrations.webhooks import webhook


@webhook
def imbot_events(request):
    """POST /b24/imbot/events: every event of the bot and the app's install, answered at once."""
    payload = events.parse_body(request.body, request.content_type or "")
    if events.event_name(payload) == events.APP_INSTALL:
        portal = services.install(payload)
        return JsonResponse({"status": "installed", "domain": portal.domain})
    services.verify(payload)
    return JsonResponse({"status": services.handle_event(events.parse_event(payload))})


def install(request):
    """GET /b24/install: the portal's authorize URL to send the installing admin to."""
    if request.method != "GET":
        return _not_allowed("GET")
    try:
        url = services.authorize_url()
    except services.NotConfigured as exc:
        return _error(str(exc), 503)
    return JsonResponse({"auth_url": url})


def oauth_callback(request):
    """GET /b24/oauth/callback?code=&state=&domain=&member_id=: where the portal sends the admin back."""
    if request.method != "GET":
        return _not_allowed("GET")
    params = request.GET
    try:
        portal = services.complete_oauth(
            code=params.get("code", ""),
            state=params.get("state", ""),
            domain=params.get("domain", ""),
            member_id=params.get("member_id", ""),
        )
    except services.NotConfigured as exc:
        return _error(str(exc), 503)
    except services.BadState as exc:
        return _error(str(exc), 400)
    except services.TokenExchangeFailed as exc:
        return _error(str(exc), 502)
    return JsonResponse({"status": "installed", "domain": portal.domain})


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _not_allowed(*methods: str) -> JsonResponse:
    response = _error("method not allowed", 405)
    response["Allow"] = ", ".join(methods)
    return response
