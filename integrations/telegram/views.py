"""Telegram's calls to us: one webhook per bot.

POST /tg/webhook is the bot configured from the environment (the "default"
account); POST /tg/<key>/webhook is a bot added as a channel account in admin.
Both stand behind the shared webhook edge (integrations/webhooks.py).

A button press is acknowledged in the webhook's own answer: Telegram runs a
Bot API method given in the body of a 200 ({"method": "answerCallbackQuery",
...}), so the customer's spinner stops at once without a request of ours.
"""

from django.http import JsonResponse

from integrations.telegram import services, updates
from integrations.webhooks import webhook


@webhook
def bot_webhook(request, key: str = services.DEFAULT):
    bot = services.credentials(key)
    services.verify(request, bot)
    outcome = services.receive(bot.account_id, updates.parse_update(request.body))
    if outcome.callback_id:
        return JsonResponse({"method": "answerCallbackQuery", "callback_query_id": outcome.callback_id})
    return JsonResponse({"status": outcome.status})
