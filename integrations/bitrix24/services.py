"""Inbound Bitrix24: who is calling, installing the app on a portal, and what each chat-bot event does.

Bitrix24 waits for the handler and slows down a portal's event queue when it
answers slowly, so while a request waits nothing here calls Bitrix24 or the
LLM: messages are recorded and the answer, a welcome or a hand-off is queued
for the worker. The one exception is an install, whose access token must be
checked before anything from it is trusted.
"""

import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.utils import timezone

from conversations.models import Channel, ChannelAccount, Conversation
from conversations.services import account_id_for, get_or_create_conversation, return_to_bot, start_new_context
from integrations import inbound, webhooks
from integrations.bitrix24 import client as b24
from integrations.bitrix24 import events
from integrations.bitrix24.events import Event, as_text
from integrations.bitrix24.models import OAuthState, Portal

logger = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
# Unused install states are kept this long, then removed when a new one is made.
STATE_KEEP = timedelta(days=1)

_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d{1,5})?$")


class Unauthorized(webhooks.Unauthorized):
    """The caller did not prove it is Bitrix24 (or the portal it names); nothing was done."""


class PortalUnavailable(webhooks.WebhookError):
    """An install could not be checked: the OAuth server did not answer."""

    status = 502


class InstallsNotAccepted(webhooks.WebhookError):
    """An ONAPPINSTALL where no OAuth application is set up (webhook-only mode): refused, naming no setting."""

    status = 403


class NotConfigured(webhooks.NotConfigured):
    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"Bitrix24 OAuth is not configured: set {', '.join(missing)}")


class BadState(ValueError):
    """An OAuth callback whose state is unknown, used or expired, or without a code."""


class TokenExchangeFailed(Exception):
    pass


# Who is calling -------------------------------------------------------------


def verify(payload: dict) -> None:
    """Accept an event whose application token is the webhook's or its portal's.

    Raises Unauthorized otherwise. The token is compared in constant time and never logged.
    """
    auth = events.auth_of(payload)
    token = as_text(auth.get("application_token"))
    member_id = as_text(auth.get("member_id"))
    if token:
        # The setting first: a bot registered through a webhook needs no query per event.
        if webhooks.same_secret(token, settings.B24_APPLICATION_TOKEN):
            return
        stored = (
            Portal.objects.filter(member_id=member_id).values_list("application_token", flat=True).first()
            if member_id
            else None
        )
        if webhooks.same_secret(token, stored or ""):
            return
    logger.warning(
        "Bitrix24 event refused: application token %s (member %.64r, domain %.255r)",
        "wrong" if token else "missing",
        member_id,
        as_text(auth.get("domain")),
    )
    raise Unauthorized("application token missing or wrong")


# Installing -----------------------------------------------------------------


def install(payload: dict) -> Portal:
    """ONAPPINSTALL: store the portal and its tokens once the OAuth server vouches for the access token.

    Anyone can post an install naming any portal, so the event is trusted only
    when Bitrix24's OAuth server says its access token is our app's, installed
    on that domain and member.
    """
    # Without our client id the OAuth server's answer cannot tell our app from
    # anyone's: a stranger's own app could register their portal here. Anyone
    # may post this, so the answer names no setting (the log does).
    if not settings.B24_CLIENT_ID:
        logger.info("Bitrix24 install refused: set B24_CLIENT_ID to accept app installs")
        raise InstallsNotAccepted("app installs are not accepted here")
    auth = events.auth_of(payload)
    member_id = as_text(auth.get("member_id")).strip()
    domain = as_text(auth.get("domain")).strip().lower()
    access_token = as_text(auth.get("access_token"))
    application_token = as_text(auth.get("application_token"))
    if not (member_id and domain and access_token and application_token):
        _refuse_install("without member_id, domain, access_token or application_token", member_id, domain)
    if len(member_id) > 64 or not _HOST_RE.match(domain):
        _refuse_install("with a malformed member_id or domain", member_id, domain)
    try:
        info = b24.check_access_token(domain, access_token)
    except b24.Bitrix24Error as exc:
        if not exc.permanent:
            raise PortalUnavailable(f"the install could not be checked ({exc.code})") from None
        _refuse_install(f"whose access token was not accepted ({exc.code})", member_id, domain)
    installed = info.get("install") if isinstance(info.get("install"), dict) else {}
    if as_text(installed.get("member_id")) not in ("", member_id):
        _refuse_install("whose access token belongs to another member", member_id, domain)
    portal, created = Portal.objects.update_or_create(
        member_id=member_id,
        defaults={
            "domain": domain,
            "client_endpoint": _endpoint(as_text(installed.get("client_endpoint")), domain)
            or _endpoint(as_text(auth.get("client_endpoint")), domain),
            "application_token": application_token,
            "access_token": access_token,
            "refresh_token": as_text(auth.get("refresh_token")),
            "token_expires_at": _expires_at(auth),
            "scope": as_text(auth.get("scope"))[:500],
            "last_error": "",
        },
    )
    logger.info(
        "Bitrix24 app %s on portal %s (member %s)", "installed" if created else "reinstalled", domain, member_id
    )
    return portal


def _refuse_install(why: str, member_id: str, domain: str) -> NoReturn:
    logger.warning("Bitrix24 install refused: %s (member %.64r, domain %.255r)", why, member_id, domain)
    raise Unauthorized(f"install not verified: {why}")


def _endpoint(url: str, domain: str) -> str:
    """The portal's REST address, only when it is on the portal's own host (tokens are sent there)."""
    parts = urlsplit(url)
    if parts.scheme in ("https", "http") and parts.netloc.lower() == domain and len(url) <= 500:
        return url
    return ""


def _expires_at(tokens: dict) -> datetime | None:
    expires = as_text(tokens.get("expires"))
    if expires.isdigit():
        return datetime.fromtimestamp(int(expires), tz=UTC)
    expires_in = as_text(tokens.get("expires_in"))
    if expires_in.isdigit():
        return timezone.now() + timedelta(seconds=int(expires_in))
    return None


# OAuth from our side: /b24/install and its callback --------------------------


def authorize_url() -> str:
    """Where to send the admin who installs the app: the portal's authorize page with a new state."""
    _require_settings("B24_DOMAIN", "B24_CLIENT_ID")
    now = timezone.now()
    OAuthState.objects.filter(created_at__lt=now - STATE_KEEP).delete()
    state = OAuthState.objects.create(value=secrets.token_urlsafe(32))
    query = urlencode({"client_id": settings.B24_CLIENT_ID, "state": state.value})
    return f"https://{_portal_host(settings.B24_DOMAIN)}/oauth/authorize/?{query}"


def complete_oauth(*, code: str, state: str, domain: str = "", member_id: str = "") -> Portal:
    """The OAuth callback: spend the state, trade the code for tokens, store the portal."""
    _require_settings("B24_DOMAIN", "B24_CLIENT_ID", "B24_CLIENT_SECRET")
    if not code or not state:
        raise BadState("code and state are required")
    _spend_state(state)
    try:
        tokens = b24.exchange_code(code)
    except b24.Bitrix24Error as exc:
        logger.warning("Bitrix24 token exchange failed: %s", exc.code)
        raise TokenExchangeFailed(f"token exchange with Bitrix24 failed ({exc.code})") from None
    # The token answer's `domain` is the OAuth server's; the portal is where its REST endpoint is.
    endpoint = as_text(tokens.get("client_endpoint"))
    portal_domain = (urlsplit(endpoint).netloc or domain).strip().lower()
    member_id = as_text(tokens.get("member_id")) or member_id
    if not member_id or len(member_id) > 64 or not _HOST_RE.match(portal_domain):
        raise TokenExchangeFailed("the token answer names no portal")
    portal, _created = Portal.objects.update_or_create(
        member_id=member_id,
        defaults={
            "domain": portal_domain,
            "client_endpoint": _endpoint(endpoint, portal_domain),
            "access_token": as_text(tokens.get("access_token")),
            "refresh_token": as_text(tokens.get("refresh_token")),
            "token_expires_at": _expires_at(tokens),
            "scope": as_text(tokens.get("scope"))[:500],
            "last_error": "",
        },
    )
    logger.info("Bitrix24 app authorized on portal %s (member %s)", portal_domain, member_id)
    return portal


def _spend_state(value: str) -> None:
    now = timezone.now()
    # One conditional UPDATE: of two callbacks racing with one state, one wins.
    spent = OAuthState.objects.filter(value=value, used_at__isnull=True, created_at__gt=now - STATE_TTL).update(
        used_at=now
    )
    if spent:
        return
    known = OAuthState.objects.filter(value=value).first()
    if known is None:
        raise BadState("unknown state")
    raise BadState("state already used" if known.used_at else "state expired")


def is_configured() -> bool:
    """The registry's settings check: a webhook, or an OAuth application."""
    return bool(settings.B24_WEBHOOK_URL or (settings.B24_CLIENT_ID and settings.B24_CLIENT_SECRET))


def _require_settings(*names: str) -> None:
    missing = [name for name in names if not getattr(settings, name)]
    if missing:
        raise NotConfigured(missing)


def _portal_host(domain: str) -> str:
    # B24_DOMAIN may be written as a URL.
    return (urlsplit(domain).netloc or domain).strip("/")


# Chat-bot events ------------------------------------------------------------


def handle_event(event: Event) -> str:
    """Do what a verified event asks; "ok", or "ignored" for events the bot does not use."""
    handler = _HANDLERS.get(event.name)
    if handler is None:
        return "ignored"
    handler(event)
    return "ok"


def on_message(event: Event) -> None:
    # An operator writing in Open Lines is recorded and takes the dialog over (accept_incoming).
    inbound.take_in(events.to_incoming(event, account_id=account_of(event)))


def on_command(event: Event) -> None:
    incoming = events.to_incoming(event, account_id=account_of(event))
    if events.is_operator_command(event):
        inbound.request_operator(incoming)
    else:
        # The other buttons send a question as COMMAND_PARAMS: answered like a typed one.
        inbound.take_in(incoming)


def on_join(event: Event) -> None:
    """The bot was added to a chat, or an Open Lines session was given to it: say what it can do."""
    customer = event.is_connector or not event.in_open_lines
    conversation = get_or_create_conversation(
        channel=Channel.BITRIX24,
        external_id=event.conversation_id,
        account_id=account_of(event),
        customer_name=event.user_name if customer else "",
        customer_external_id=event.from_user_id if customer else "",
        channel_data=event.channel_data,
    )
    if inbound.welcomed_recently(conversation):
        return
    if event.in_open_lines:
        # A new Open Lines session: earlier sessions are not this one's history,
        # and the line gave this session to the bot even if a person had the last one.
        start_new_context(conversation=conversation)
        if conversation.state == Conversation.State.OPERATOR:
            return_to_bot(conversation=conversation)
    inbound.welcome(conversation)


def account_of(event: Event) -> int:
    """The portal's channel account (by member_id), made on its first event."""
    return account_id_for(Channel.BITRIX24, event.member_id or ChannelAccount.DEFAULT_KEY)


def on_bot_delete(event: Event) -> None:
    """The bot is gone from the portal: its dialogs are the people's now. Nothing to tell Bitrix24."""
    moved = Conversation.objects.filter(
        account_id=account_of(event),
        state=Conversation.State.BOT,
    ).update(state=Conversation.State.OPERATOR, handed_off_at=timezone.now())
    if event.bot_id:
        # The sender must not keep writing as a bot that no longer exists.
        Portal.objects.filter(member_id=event.member_id, bot_id=event.bot_id).update(bot_id="")
    logger.info(
        "Bitrix24 bot %s deleted on member %s: %s dialogs go to operators", event.bot_id, event.member_id, moved
    )


_HANDLERS = {
    events.MESSAGE_ADD: on_message,
    events.COMMAND_ADD: on_command,
    events.JOIN_CHAT: on_join,
    events.BOT_DELETE: on_bot_delete,
}
