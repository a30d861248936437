"""Inbound Telegram: which bot an update is for, whether it is really from
Telegram, and what each update does.

Telegram resends an update whose webhook answer is slow or not 2xx, so while
the request waits nothing here calls Telegram, the LLM or speech-to-text: the
update is recorded and the work queued (integrations.inbound). The same
function serves the webhook and `manage.py tg_polling`.
"""

import logging
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from catalog.selectors import categories_in_stock
from conversations.models import Channel, ChannelAccount
from conversations.services import (
    account_for,
    get_or_create_conversation,
    mark_blocked,
    take_event,
)
from integrations import inbound, webhooks
from integrations.telegram import updates
from integrations.telegram.client import TelegramClient, TelegramError
from integrations.telegram.updates import Update

logger = logging.getLogger(__name__)

DEFAULT = ChannelAccount.DEFAULT_KEY
SECRET_HEADER = "HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN"  # noqa: S105 (a header name, not a secret)
# What storebot asks Telegram to send (setWebhook, getUpdates): everything it handles.
ALLOWED_UPDATES = [updates.MESSAGE, updates.EDITED_MESSAGE, updates.CALLBACK_QUERY, updates.MY_CHAT_MEMBER]
# Commands as the customer's own words, answered by the assistant like typed text.
COMMAND_TEXT = {updates.CATALOG: "Каталог"}
# Category buttons under the greeting of /start and /help.
GREETING_CATEGORIES = 6


@dataclass(frozen=True)
class Credentials:
    account_id: int
    token: str
    webhook_secret: str
    operator_chat_id: str


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "duplicate", "ignored"
    # A button press to acknowledge at once (answerCallbackQuery).
    callback_id: str = ""


# Every update needs its bot's secret; each process keeps what it read this
# long, so a secret changed in admin is in force everywhere within seconds.
CREDENTIALS_TTL_S = 10.0
_credentials: dict[tuple, tuple[float, Credentials]] = {}


def credentials(key: str = DEFAULT) -> Credentials:
    """A bot's secrets: an active account of that key; the default one falls back to the environment.

    webhooks.NotFound for an unknown or inactive key (not cached: a new account works at once).
    """
    # The environment's values are part of the key: what is cached never outlives a change of them.
    cache_key = (key, settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_WEBHOOK_SECRET, settings.TELEGRAM_OPERATOR_CHAT_ID)
    cached = _credentials.get(cache_key)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    found = _read_credentials(key)
    if len(_credentials) > 1000:
        _credentials.clear()  # keys a stranger makes up are refused, never cached; this only bounds the rest
    _credentials[cache_key] = (now + CREDENTIALS_TTL_S, found)
    return found


def forget_credentials() -> None:
    _credentials.clear()


def _read_credentials(key: str) -> Credentials:
    if key == DEFAULT:
        row = account_row(DEFAULT)
        return Credentials(
            account_id=row.pk,
            token=row.token or settings.TELEGRAM_BOT_TOKEN,
            webhook_secret=row.webhook_secret or settings.TELEGRAM_WEBHOOK_SECRET,
            operator_chat_id=row.operator_chat_id or settings.TELEGRAM_OPERATOR_CHAT_ID,
        )
    row = ChannelAccount.objects.filter(channel=Channel.TELEGRAM, key=key, is_active=True).first()
    if row is None:
        raise webhooks.NotFound("no such Telegram bot")
    return Credentials(
        account_id=row.pk, token=row.token, webhook_secret=row.webhook_secret, operator_chat_id=row.operator_chat_id
    )


def verify(request, bot: Credentials) -> None:
    """The update carries the bot's secret_token (setWebhook); webhooks.Unauthorized otherwise."""
    given = request.META.get(SECRET_HEADER, "")
    if not bot.webhook_secret:
        logger.warning("Telegram update refused: the bot (account %s) has no webhook secret set", bot.account_id)
        raise webhooks.Unauthorized("the bot has no webhook secret configured")
    if not webhooks.same_secret(given, bot.webhook_secret):
        logger.warning(
            "Telegram update refused: secret token %s (account %s)", "wrong" if given else "missing", bot.account_id
        )
        raise webhooks.Unauthorized("secret token missing or wrong")


def is_configured() -> bool:
    """The registry's settings check: the default bot has a token, or a bot account exists."""
    return (
        bool(settings.TELEGRAM_BOT_TOKEN)
        or ChannelAccount.objects.filter(channel=Channel.TELEGRAM, is_active=True).exclude(token="").exists()
    )


def receive(account_id: int, payload: dict) -> Outcome:
    """Take in one update (a webhook body or a getUpdates item), at most once per update_id.

    A message's update_id is recorded with the message itself (one statement,
    conversations.services.accept_incoming), so a failure stores neither and
    Telegram's retry does the work; a redelivery is "duplicate".
    """
    update = updates.read_update(payload)
    callback_id = update.callback_id if update.kind == updates.CALLBACK_QUERY else ""
    return Outcome(_handle(account_id, update), callback_id)


def _handle(account_id: int, update: Update) -> str:
    if not updates.addressed_to_bot(update):
        # Group and channel posts, other bots, update types we do not use.
        return "ignored"
    event_id = str(update.update_id)
    if update.kind == updates.MY_CHAT_MEMBER:
        with transaction.atomic():
            if not take_event(account_id=account_id, event_id=event_id):
                return "duplicate"
            _membership(account_id, update)
        return "ok"
    try:
        incoming = updates.to_incoming(update, account_id=account_id)
    except updates.BadUpdate:
        # A service message, a button of an old keyboard: nothing to answer.
        return "ignored"
    incoming.event_id = event_id
    if updates.is_operator_request(update):
        _message, created = inbound.request_operator(incoming)
    elif update.kind == updates.MESSAGE and update.command in (updates.START, updates.HELP):
        if update.command == updates.START and update.command_args:
            # A deep link (t.me/<bot>?start=<payload>): where the customer came from.
            incoming.channel_data["start_payload"] = update.command_args[:64]
        incoming.needs_reply = False
        _message, created = inbound.greet(incoming, suggestions=categories_in_stock(limit=GREETING_CATEGORIES))
    else:
        if update.kind == updates.MESSAGE and update.command in COMMAND_TEXT:
            incoming.text = COMMAND_TEXT[update.command]
        _message, created = inbound.take_in(incoming)
    return "ok" if created else "duplicate"


def _membership(account_id: int, update: Update) -> None:
    """The customer blocked the bot ("kicked") or started it again ("member")."""
    if update.member_status not in ("kicked", "member"):
        return
    conversation = get_or_create_conversation(
        channel=Channel.TELEGRAM,
        external_id=str(update.chat_id),
        account_id=account_id,
        customer_name=update.user_name,
        customer_external_id=str(update.user_id),
        channel_data={"chat_id": update.chat_id, "username": update.username},
    )
    blocked = update.member_status == "kicked"
    if (conversation.blocked_at is not None) != blocked:
        mark_blocked(conversation=conversation, blocked=blocked)
        logger.info(
            "Telegram conversation %s: the customer %s the bot", conversation.pk, "blocked" if blocked else "unblocked"
        )


# Webhook setup and long polling (manage.py tg_set_webhook, tg_delete_webhook, tg_polling) ------


def account_row(key: str = DEFAULT) -> ChannelAccount:
    """The bot's account row (the default one made on first use); webhooks.NotFound for an unknown key."""
    if key == DEFAULT:
        return account_for(Channel.TELEGRAM, DEFAULT)
    row = ChannelAccount.objects.filter(channel=Channel.TELEGRAM, key=key).first()
    if row is None:
        raise webhooks.NotFound(f"no Telegram bot account {key!r}")
    return row


def webhook_url(key: str = DEFAULT) -> str:
    path = reverse("telegram:webhook") if key == DEFAULT else reverse("telegram:account-webhook", args=[key])
    return settings.PUBLIC_URL.rstrip("/") + path


def set_webhook(key: str = DEFAULT, *, url: str = "", drop_pending_updates: bool = False, client=None) -> dict:
    """Point the bot at our webhook with its secret_token and the updates we handle.

    A bot account without a secret gets a random one, stored encrypted; the
    environment's bot must have TELEGRAM_WEBHOOK_SECRET set (a secret made
    here would be lost with the process's environment).
    """
    account = account_row(key)
    bot = credentials(key)
    secret = bot.webhook_secret
    if not secret:
        if key == DEFAULT:
            raise webhooks.NotConfigured("set TELEGRAM_WEBHOOK_SECRET first: Telegram sends it with every update")
        secret = secrets.token_urlsafe(32)
        account.webhook_secret = secret
        account.save(update_fields=["webhook_secret"])
    client = client or TelegramClient.for_account(account)
    me = client.get_me()
    account.options = {**account.options, "bot_id": me.get("id"), "username": me.get("username", "")}
    account.name = account.name or me.get("first_name", "")[:200]
    account.save(update_fields=["options", "name"])
    url = url or webhook_url(key)
    client.set_webhook(
        url, secret_token=secret, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=drop_pending_updates
    )
    return {"url": url, "username": me.get("username", ""), "allowed_updates": ALLOWED_UPDATES}


def delete_webhook(key: str = DEFAULT, *, drop_pending_updates: bool = False, client=None) -> None:
    account = account_row(key)
    (client or TelegramClient.for_account(account)).delete_webhook(drop_pending_updates=drop_pending_updates)


def poll_once(key: str = DEFAULT, *, client, timeout: int = 50) -> int:
    """One getUpdates round into the same pipeline as the webhook; the number of updates taken in.

    The offset is kept on the account, so a restarted poller resumes where
    it stopped (and update_id dedupe drops anything seen twice anyway).
    """
    account = account_row(key)
    offset = account.options.get("polling_offset")
    batch = client.get_updates(offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES)
    for payload in batch:
        update_id = payload.get("update_id") if isinstance(payload, dict) else None
        try:
            outcome = receive(account.pk, payload)
        except updates.BadUpdate as exc:
            logger.warning("Telegram update %s skipped: %s", update_id, exc)
            outcome = None
        if outcome is not None and outcome.callback_id:
            try:
                client.answer_callback_query(outcome.callback_id)
            except TelegramError as exc:
                # The press is taken in all the same; the spinner stops by itself.
                logger.info("answerCallbackQuery failed: %s", exc.code)
        if isinstance(update_id, int):
            offset = update_id + 1
            account.options = {**account.options, "polling_offset": offset}
            ChannelAccount.objects.filter(pk=account.pk).update(options=account.options)
    return len(batch)
