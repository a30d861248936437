"""POST /b24/crm/events: Bitrix24's deal events (ONCRMDEALUPDATE), for the stages of our orders' deals.

The body is an event like the chat bot's (form-encoded, PHP-style keys, or
JSON): {"event": "ONCRMDEALUPDATE", "data": {"FIELDS": {"ID": "759"}}, "ts",
"auth": {"domain", "member_id", "application_token", ...}}. It carries the
deal's id only, so the worker reads the deal (crm.deal.get) and applies its
stage (orders.push.apply_deal); nothing calls Bitrix24 while it waits.

Who may post: the chat bot's application token (the webhook's
B24_APPLICATION_TOKEN, or the installed app's, which an app's event.bind
handlers get), or B24_CRM_EVENTS_TOKEN, the token Bitrix24 shows for an
outgoing webhook set up for ONCRMDEALUPDATE. Anything else is 401 and nothing
is read or changed.
"""

import logging

from django.conf import settings
from django.http import JsonResponse

from integrations import webhooks
from integrations.bitrix24 import events, services
from integrations.bitrix24.events import BadEvent, as_text
from integrations.webhooks import webhook
from orders.selectors import order_for_deal
from orders.services import enqueue_deal_sync

logger = logging.getLogger(__name__)

DEAL_UPDATE = "ONCRMDEALUPDATE"
# A deal made by hand with our origin, or moved to another pipeline, tells us the same way.
DEAL_EVENTS = {DEAL_UPDATE, "ONCRMDEALADD", "ONCRMDEALMOVETOCATEGORY"}
MAX_ID_DIGITS = 18


def verify(payload: dict) -> None:
    """Accept the outgoing webhook's own token, or whatever the chat bot's events are accepted with."""
    token = as_text(events.auth_of(payload).get("application_token"))
    if webhooks.same_secret(token, settings.B24_CRM_EVENTS_TOKEN):
        return
    services.verify(payload)


def deal_id_of(payload: dict) -> str:
    data = payload.get("data")
    fields = data.get("FIELDS") if isinstance(data, dict) else None
    deal_id = as_text(fields.get("ID")).strip() if isinstance(fields, dict) else ""
    if not deal_id:
        raise BadEvent("data[FIELDS][ID] is missing")
    if not deal_id.isdigit() or len(deal_id) > MAX_ID_DIGITS or not int(deal_id):
        raise BadEvent("data[FIELDS][ID] is not a deal id")
    return str(int(deal_id))


@webhook
def deal_events(request):
    payload = events.parse_body(request.body, request.content_type or "")
    name = events.event_name(payload)
    verify(payload)
    if name not in DEAL_EVENTS:
        return JsonResponse({"status": "ignored"})
    deal_id = deal_id_of(payload)
    domain = as_text(events.auth_of(payload).get("domain")).strip().lower()
    order = order_for_deal(domain=domain, deal_id=deal_id)
    if order is None:
        # Most deals are not ours; ours before their push is saved are read by the push itself.
        return JsonResponse({"status": "ignored"})
    enqueue_deal_sync(order, event_ts=as_text(payload.get("ts"))[:20])
    return JsonResponse({"status": "queued"})
