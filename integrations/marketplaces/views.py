"""Push notifications from the marketplaces, at a secret URL per account: POST /mp/<account id>/<secret>/.

Ozon and Yandex Market can notify of a new message; such a notification
only asks for a poll of the stream now (the poll reads and records; the
notification itself is never taken as a message, Market repeats them). The
answer is the one each marketplace expects, at once: Ozon's TYPE_PING and
Market's PING check the URL works.
"""

from django.http import JsonResponse

from integrations.marketplaces.connectors import connector_for
from integrations.marketplaces.models import Marketplace, MarketplaceAccount
from integrations.marketplaces.ozon import push_answer
from integrations.marketplaces.tasks import ask_for_poll
from integrations.marketplaces.yandex_market import notification_answer
from integrations.webhooks import NotFound, Unauthorized, read_json, same_secret, webhook


@webhook
def push(request, account_id: int, secret: str):
    account = MarketplaceAccount.objects.filter(pk=account_id).first()
    if account is None or account.marketplace == Marketplace.WILDBERRIES:
        raise NotFound("no such account")
    if not same_secret(secret, account.push_secret):
        raise Unauthorized("wrong secret in the notification URL")
    payload = read_json(request.body)
    if account.stopped_at is None:
        for stream in connector_for(account).poll_hint(payload):
            ask_for_poll(account, stream)
    if account.marketplace == Marketplace.OZON:
        return JsonResponse(push_answer(payload))
    return JsonResponse(notification_answer(payload))
