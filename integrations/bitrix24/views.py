"""Bitrix24's calls to us: chat-bot events, and the OAuth install started from our side.

Plain Django views, not DRF: the event body is read raw (PHP-style form keys
or JSON) and every answer, errors included, is JSON of the shape {"error": "..."}.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from integrations.bitrix24 import events, services


@csrf_exempt
def imbot_events(request):
    """POST /b24/imbot/events: every event of the bot and the app's install, answered at once."""
    if request.method != "POST":
        return _not_allowed("POST")
    try:
        payload = events.parse_body(request.body, request.content_type or "")
        name = events.event_name(payload)
    except RequestDataTooBig:
        return _error("body too large", 413)
    except events.BadEvent as exc:
        return _error(str(exc), 400)

    if name == events.APP_INSTALL:
        try:
            portal = services.install(payload)
        except services.Unauthorized as exc:
            return _error(str(exc), 401)
        except services.PortalUnavailable as exc:
            return _error(str(exc), 502)
        except services.NotConfigured as exc:
            return _error(str(exc), 503)
        return JsonResponse({"status": "installed", "domain": portal.domain})

    try:
        services.verify(payload)
    except services.Unauthorized as exc:
        return _error(str(exc), 401)
    try:
        event = events.parse_event(payload)
        status = services.handle_event(event)
    except events.BadEvent as exc:
        return _error(str(exc), 400)
    return JsonResponse({"status": status})


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
