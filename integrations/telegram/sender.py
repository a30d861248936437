"""The Telegram bot as a conversations channel: replies, hand-offs to staff, customers' files.

A bot reply goes out as up to three kinds of message (integrations/telegram/formatting.py):

1. the products' pictures: one album (sendMediaGroup, 2-10 photos, a
   numbered list of their names and prices under the first) or one photo
   (sendPhoto, the product's caption);
2. the reply's text in HTML, in parts of at most 4096 characters;
3. the inline keyboard — product pages, suggested questions, «Позвать
   оператора» — under the last text part.

Pictures go first and the text last: an album can carry no keyboard, the
buttons belong under the newest message, where the customer's thumb is, and
the answer itself then stays in view below the pictures instead of being cut
to a caption's 1024 characters. The pictures go silently (one notification a
reply, for the text). When Telegram refuses a picture (a 400: it could not
fetch the URL, or it is not an image) the text still goes out, without them.

An operator's reply goes out as the bot too, signed with the operator's first
name in bold: the bot is the only sender this service has in the chat, and
the signature tells the customer a person answers.

A reply of several messages that fails half-way (a 429 beyond the wait
ceiling, an outage) is resumed on the next attempt: how many of its messages
went out is kept in the cache for a day, keyed by the message, so no part
reaches the customer twice. With Redis that holds across processes; with
locmem within one process only, where a retry in another process may repeat
the parts sent before.
"""

import logging
import posixpath
import re

from django.conf import settings
from django.core.cache import cache

from catalog.presentation import money
from conversations.channels import OPERATOR_BUTTON, ChannelSender, DeliveryError, MediaFile
from conversations.models import ChannelAccount, Message
from conversations.services import mark_blocked
from integrations.answering import staff_notice
from integrations.reply_text import order_as_in_text
from integrations.telegram import formatting
from integrations.telegram.client import TelegramClient, TelegramError

logger = logging.getLogger(__name__)

PROGRESS_TTL_S = 24 * 3600


class _Step:
    """One Bot API request of a reply; `media` steps may be refused and passed over."""

    __slots__ = ("media", "method", "params")

    def __init__(self, method: str, params: dict, *, media: bool = False):
        self.method, self.params, self.media = method, params, media


def _progress(key: str, message) -> tuple | None:
    """The parts of a message sent by an earlier try; a cache that cannot say means nothing may be sent yet."""
    try:
        return cache.get(key)
    except Exception as exc:  # whatever the cache backend raises (Redis down)
        # Sending from the first part could repeat parts a customer already has.
        raise DeliveryError(f"Telegram: message {message.pk}: the cache cannot say what was sent before") from exc


def _note_progress(key: str, progress: tuple) -> None:
    # Only a later try reads it, after a crash mid-message: this try goes on without it.
    try:
        cache.set(key, progress, PROGRESS_TTL_S)
    except Exception as exc:
        logger.warning("Telegram: the cache could not note a message's sent parts (%s)", type(exc).__name__)


class TelegramSender(ChannelSender):
    # Passed to TelegramClient (backoff, sleep...); a subclass may change them.
    client_options: dict = {}

    def send(self, message) -> str:
        conversation = message.conversation
        chat_id = _chat_id(conversation)
        if not chat_id:
            raise DeliveryError(f"Telegram: conversation {conversation.pk} has no chat id", permanent=True)
        steps = _steps(message, chat_id)
        if not steps:
            raise DeliveryError(f"Telegram: message {message.pk} has nothing to send", permanent=True)
        client = self._client(conversation.account)
        # The creation time too: a key outlives a database that was reset (a bench, a restore).
        progress_key = f"tg:sent-parts:{message.pk}:{message.created_at.timestamp() if message.created_at else ''}"
        # One request: nothing to resume, no cache to touch.
        resumable = len(steps) > 1 and message.pk is not None
        done, last_id = (_progress(progress_key, message) if resumable else None) or (0, "")
        if done:
            logger.info("Telegram message %s: %d of %d parts sent before, resuming", message.pk, done, len(steps))
        for index in range(done, len(steps)):
            step = steps[index]
            try:
                result = client.call(step.method, step.params)
            except TelegramError as exc:
                if not (step.media and exc.status == 400):
                    raise self._delivery_error(exc, conversation) from None
                logger.warning(
                    "Telegram refused the pictures of message %s (%s); sending the text without them", message.pk, exc
                )
                result = None
            last_id = _message_id(result) or last_id
            if resumable:
                # The last part's too, and the note is left to expire: a try
                # after a worker killed before the save sends nothing again.
                _note_progress(progress_key, (index + 1, last_id))
        return last_id

    def hand_off(self, conversation, reason: str) -> None:
        account = conversation.account
        chat_id = _operator_chat_id(account)
        if not chat_id:
            logger.info(
                "conversation %s needs an operator; no operators' chat to tell (account %s)",
                conversation.pk,
                account.key,
            )
            return
        client = self._client(account)
        for part in formatting.split_message(_notice_html(conversation, reason)):
            try:
                client.send_message(chat_id, part, disable_link_preview=True)
            except TelegramError as exc:
                if exc.migrate_to_chat_id is None:
                    raise DeliveryError(f"Telegram: the operators' chat: {exc}", permanent=exc.permanent) from None
                chat_id = _moved_operator_chat(account, chat_id, exc.migrate_to_chat_id)
                try:
                    client.send_message(chat_id, part, disable_link_preview=True)
                except TelegramError as again:
                    raise DeliveryError(f"Telegram: the operators' chat: {again}", permanent=again.permanent) from None

    def fetch_media(self, message, attachment: dict, *, max_bytes: int) -> MediaFile:
        file_id = attachment.get("file_id") or ""
        if not file_id:
            raise DeliveryError("Telegram: the attachment has no file id", permanent=True)
        # Refused before any request when Telegram already said how large it is.
        _check_size(attachment.get("file_size"), max_bytes)
        client = self._client(message.conversation.account)
        try:
            info = client.get_file(file_id) or {}
            _check_size(info.get("file_size"), max_bytes)
            file_path = info.get("file_path") or ""
            if not file_path:
                # Telegram serves bots files of up to 20 MB; a larger one has no path.
                raise DeliveryError("Telegram: the file cannot be downloaded (no file path)", permanent=True)
            content = client.download_file(file_path, max_bytes)
        except TelegramError as exc:
            raise DeliveryError(f"Telegram: file download: {exc}", permanent=exc.permanent) from None
        filename = posixpath.basename(file_path) or attachment.get("file_name") or "file"
        return MediaFile(content=content, filename=filename, mime_type=attachment.get("mime_type") or "")

    def _client(self, account) -> TelegramClient:
        try:
            return TelegramClient.for_account(account, **self.client_options)
        except TelegramError as exc:
            raise DeliveryError(f"Telegram: {exc}", permanent=True) from None

    def _delivery_error(self, exc: TelegramError, conversation) -> DeliveryError:
        if exc.blocked:
            # Nothing reaches the customer until they unblock the bot (my_chat_member says when).
            mark_blocked(conversation=conversation, blocked=True)
            logger.info("conversation %s: the customer blocked the bot (%s)", conversation.pk, exc.code)
            return DeliveryError("Telegram: the customer blocked the bot or left Telegram", permanent=True)
        # permanent: the chat, the bot or the request is wrong (4xx); limits and outages pass.
        return DeliveryError(f"Telegram: {exc}", permanent=exc.permanent)


# What a message becomes ------------------------------------------------------------


def _steps(message, chat_id) -> list[_Step]:
    if message.author == Message.Author.OPERATOR:
        return _text_steps(chat_id, operator_html(message.text, message.operator))
    if message.author != Message.Author.BOT:
        return _text_steps(chat_id, formatting.escape(message.text))
    products = order_as_in_text(message.products.all(), message.text)
    # After a hand-off a person answers; the button would offer one again.
    operator_button = None if message.reply_kind == Message.ReplyKind.HANDOFF else OPERATOR_BUTTON
    if formatting.asks_for_phone(message.suggestions):
        # A message has one keyboard: the phone button, in place of the inline ones.
        keyboard = formatting.contact_keyboard()
    else:
        keyboard = formatting.inline_keyboard(
            products=products, suggestions=message.suggestions or (), operator_button=operator_button
        )
    media = _media_step(chat_id, products)
    text = _text_steps(
        chat_id,
        formatting.message_html(message.text, products),
        keyboard=keyboard,
        # The pictures and buttons already show the products; previews of their pages would repeat them.
        no_previews=bool(products),
    )
    return ([media] if media else []) + text


def _text_steps(chat_id, html_text: str, *, keyboard: dict | None = None, no_previews: bool = False) -> list[_Step]:
    parts = formatting.split_message(html_text)
    steps = []
    for number, part in enumerate(parts, 1):
        params = {"chat_id": chat_id, "text": part, "parse_mode": "HTML"}
        if no_previews:
            params["link_preview_options"] = {"is_disabled": True}
        if keyboard and number == len(parts):
            params["reply_markup"] = keyboard
        steps.append(_Step("sendMessage", params))
    return steps


def _media_step(chat_id, products) -> _Step | None:
    pictured = [p for p in products if formatting.is_web_url(p.image_url)][: formatting.ALBUM_MAX]
    if len(pictured) >= formatting.ALBUM_MIN:
        media = formatting.album(pictured, _album_caption(pictured))
        return _Step("sendMediaGroup", {"chat_id": chat_id, "media": media, "disable_notification": True}, media=True)
    if pictured:
        product = pictured[0]
        params = {
            "chat_id": chat_id,
            "photo": product.image_url,
            "caption": formatting.product_caption(product),
            "parse_mode": "HTML",
            "disable_notification": True,
        }
        return _Step("sendPhoto", params, media=True)
    return None


def _album_caption(pictured) -> str:
    """Which photo is which: the album's products numbered in its order, with their prices."""
    return "\n".join(
        f"{number}. {formatting.bold(p.title)} — {formatting.escape(money(p.price, p.currency))}"
        for number, p in enumerate(pictured, 1)
    )


def operator_html(text: str, operator) -> str:
    """An operator's reply goes out as the bot, so it is signed: the customer sees a person answers."""
    name = getattr(operator, "first_name", "") or "Оператор"
    return f"{formatting.bold(name)}: {formatting.escape(text)}"


def _message_id(result) -> str:
    # sendMediaGroup answers with the album's messages, the other sends with one.
    if isinstance(result, list):
        result = result[-1] if result else None
    if isinstance(result, dict) and result.get("message_id") is not None:
        return str(result["message_id"])
    return ""


# Staff -------------------------------------------------------------------------------


def _notice_html(conversation, reason: str) -> str:
    notice = staff_notice(conversation, reason)
    customer = formatting.escape(notice["customer"])
    username = (conversation.channel_data or {}).get("username")
    if isinstance(username, str) and re.fullmatch(r"[A-Za-z0-9_]{3,32}", username):
        customer += f" (@{username})"
    lines = [
        formatting.bold(notice["title"]),
        f"Клиент: {customer}",
        f"Причина: {formatting.escape(notice['reason'])}",
        "",
        *(f"{formatting.bold(who)}: {formatting.escape(text)}" for who, text in notice["messages"]),
        "",
        formatting.link(notice["admin_url"], "Открыть диалог в админке"),
    ]
    return "\n".join(lines)


def _operator_chat_id(account) -> str:
    if account.operator_chat_id:
        return account.operator_chat_id
    if account.key == ChannelAccount.DEFAULT_KEY:
        return settings.TELEGRAM_OPERATOR_CHAT_ID
    return ""


def _moved_operator_chat(account, old_chat_id, new_chat_id: int) -> str:
    """A group that became a supergroup has a new id for good: write there, and remember it where we can."""
    if account.operator_chat_id == str(old_chat_id):
        ChannelAccount.objects.filter(pk=account.pk).update(operator_chat_id=str(new_chat_id))
        account.operator_chat_id = str(new_chat_id)
        logger.warning("Telegram operators' chat %s is now %s; the account is updated", old_chat_id, new_chat_id)
    else:
        logger.warning(
            "Telegram operators' chat %s is now %s: set TELEGRAM_OPERATOR_CHAT_ID=%s",
            old_chat_id,
            new_chat_id,
            new_chat_id,
        )
    return str(new_chat_id)


# Helpers -----------------------------------------------------------------------------


def _chat_id(conversation):
    chat_id = (conversation.channel_data or {}).get("chat_id")
    if chat_id not in (None, ""):
        return chat_id
    return conversation.external_id


def _check_size(size, max_bytes: int) -> None:
    if isinstance(size, int) and not isinstance(size, bool) and size > max_bytes:
        raise DeliveryError(f"Telegram: the file is too large ({size} bytes, at most {max_bytes})", permanent=True)
