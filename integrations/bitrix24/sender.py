"""The Bitrix24 chat bot as a conversations channel (settings.CHANNEL_SENDERS["bitrix24"]).

A reply goes out with imbot.message.add as the bot: BB-code text, product
cards and reply buttons (integrations/bitrix24/formatting.py). A hand-off
passes an Open Lines dialog to the line's operators; an ordinary chat has no
operators, so staff are told in a chat of their own (B24_OPERATOR_DIALOG_ID).

Replies an operator types in our admin go out the same way, as the bot, signed
with the operator's first name in bold: the bot is the only Bitrix24 user this
service can write as, and the signature tells the customer a person answers.
"""

import logging
import re
from urllib.parse import urlsplit

import requests
from django.conf import settings

from conversations.channels import ChannelSender, DeliveryError, MediaFile
from conversations.models import Message
from integrations.answering import staff_notice
from integrations.bitrix24 import formatting
from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error
from integrations.http import ApiError, is_permanent_status
from integrations.reply_text import order_as_in_text

logger = logging.getLogger(__name__)

# Refusals of a card or a button set: the same text goes again without them,
# so a portal that dislikes the extras still gets the answer.
_EXTRAS_REFUSED = {"ATTACH_ERROR", "ATTACH_OVERSIZE", "KEYBOARD_ERROR", "KEYBOARD_OVERSIZE"}


class Bitrix24Sender(ChannelSender):
    # Passed to Bitrix24Client (retries, backoff...); a subclass may change them.
    client_options: dict = {}

    def send(self, message) -> str:
        conversation = message.conversation
        data = conversation.channel_data or {}
        dialog_id = _dialog_id(conversation)
        if not dialog_id:
            raise DeliveryError(f"Bitrix24: conversation {conversation.pk} has no dialog id", permanent=True)
        client = self._client(data)
        params = {**_bot_params(client, data), "DIALOG_ID": dialog_id, **_content(message)}
        try:
            result = client.call("imbot.message.add", params)
        except Bitrix24Error as exc:
            if exc.code not in _EXTRAS_REFUSED:
                raise _delivery_error(exc) from None
            logger.warning("Bitrix24 refused the cards or buttons of message %s (%s); sent as text", message.pk, exc)
            result = _call(client, "imbot.message.add", _without_extras(params))
        return str(result) if result else ""

    def hand_off(self, conversation, reason: str) -> None:
        data = conversation.channel_data or {}
        if data.get("chat_entity_type") == "LINES":
            self._to_open_lines_operator(conversation, data)
        elif settings.B24_OPERATOR_DIALOG_ID:
            self._tell_staff(conversation, reason, data)
        else:
            logger.info(
                "conversation %s needs an operator; no B24_OPERATOR_DIALOG_ID to tell (not an Open Lines chat)",
                conversation.pk,
            )

    def _to_open_lines_operator(self, conversation, data) -> None:
        chat_id = _chat_id(conversation)
        if not chat_id:
            raise DeliveryError(f"Bitrix24: conversation {conversation.pk} has no Open Lines chat id", permanent=True)
        client = self._client(data)
        queue_id = settings.B24_OPERATOR_QUEUE_ID
        if queue_id:
            try:
                # LEAVE "N": the bot stays in the chat until an operator
                # accepts, so replies typed in our admin can still be posted.
                client.call(
                    "imopenlines.bot.session.transfer", {"CHAT_ID": chat_id, "QUEUE_ID": queue_id, "LEAVE": "N"}
                )
                return
            except Bitrix24Error as exc:
                if not exc.permanent:
                    raise _delivery_error(exc) from None
                # A wrong queue must not strand the customer with the bot.
                logger.warning("Bitrix24 refused transfer to queue %s (%s); any free operator instead", queue_id, exc)
        _call(client, "imopenlines.bot.session.operator", {"CHAT_ID": chat_id})

    def _tell_staff(self, conversation, reason, data) -> None:
        notice = staff_notice(conversation, reason)
        lines = [
            f"[b]{formatting.escape(notice['title'])}[/b]",
            f"Клиент: {formatting.escape(notice['customer'])}",
            f"Причина: {formatting.escape(notice['reason'])}",
            f"Диалог в Битрикс24: {formatting.escape(_dialog_id(conversation) or '—')}",
            *(f"{who}: {formatting.escape(text)}" for who, text in notice["messages"]),
            formatting.link(notice["admin_url"], "Открыть диалог в админке"),
        ]
        client = self._client(data)
        params = {
            **_bot_params(client, data),
            "DIALOG_ID": settings.B24_OPERATOR_DIALOG_ID,
            "MESSAGE": "\n".join(lines),
            "URL_PREVIEW": "N",
        }
        _call(client, "imbot.message.add", params)

    def fetch_media(self, message, attachment: dict, *, max_bytes: int) -> MediaFile:
        """A file the customer sent (a voice message to transcribe, for admin to play).

        The event's own urls (urlDownload...) are portal pages for a signed-in
        browser; a bot gets a download link from the REST API by the file's
        Drive id (see _download_link) and fetches it through the client's HTTP seam.
        """
        file_id = str(attachment.get("file_id") or "")
        if not file_id.isdigit():
            raise DeliveryError("Bitrix24: the attachment has no Drive file id", permanent=True)
        data = message.conversation.channel_data or {}
        client = self._client(data)
        url = _download_link(client, data, file_id)
        content, content_type = _download(client, url, max_bytes=max_bytes)
        extension = attachment.get("extension") or "bin"
        return MediaFile(
            content=content,
            filename=str(attachment.get("file_name") or f"{file_id}.{extension}"),
            mime_type=str(attachment.get("mime_type") or content_type),
        )

    def _client(self, data) -> Bitrix24Client:
        try:
            return Bitrix24Client.for_member(data.get("member_id", ""), **self.client_options)
        except Bitrix24Error as exc:
            raise _delivery_error(exc) from None


def _content(message) -> dict:
    """MESSAGE and, for a bot reply, its cards and buttons."""
    if message.author == Message.Author.OPERATOR:
        return {"MESSAGE": formatting.operator_text(message.text, message.operator)}
    if message.author != Message.Author.BOT:
        return {"MESSAGE": formatting.escape(message.text)}
    products = order_as_in_text(message.products.all(), message.text)
    content = {"MESSAGE": formatting.message_text(message.text, products)}
    cards = formatting.product_cards(products)
    if cards:
        content["ATTACH"] = cards
        # The cards already show each page; Bitrix24's own link previews would repeat them.
        content["URL_PREVIEW"] = "N"
    if message.reply_kind != Message.ReplyKind.HANDOFF:
        # After a hand-off a person answers; the buttons would offer the bot again.
        content["KEYBOARD"] = formatting.reply_keyboard(message.suggestions or ())
    return content


# Getting a chat file's bytes ---------------------------------------------------
#
# Where the link comes from (both answer a link that carries its own one-time
# token, so nothing of ours is added to it):
# - imbot.v2.File.download {botId, fileId} -> {"downloadUrl"}: the bot's own
#   method (scope imbot; apidocs.bitrix24.com, chat-bots-v2/imbot.v2/files/
#   file-download). v2 methods serve bots registered through v1 as well, but
#   with a webhook they need the v2 botToken, which a v1 bot does not have: an
#   app installed with OAuth tries it first;
# - disk.file.get {id} -> DOWNLOAD_URL (scope disk): the file on Bitrix24
#   Drive, readable when the webhook's or the app's user may see the chat's
#   files. The webhook's way, and the app's when the bot method is refused.

# An HTML page (a login form, an error page) or a JSON error is never the file.
_NOT_A_FILE_TYPES = ("text/html", "application/xhtml+xml", "application/json")
_HTML_STARTS = (b"<!doctype", b"<html")
_CHUNK = 64 * 1024


def _download_link(client: Bitrix24Client, data, file_id: str) -> str:
    bot_id = str(_bot_params(client, data).get("BOT_ID") or "")
    if client.portal is not None and bot_id.isdigit():
        try:
            result = client.call("imbot.v2.File.download", {"botId": int(bot_id), "fileId": int(file_id)})
        except Bitrix24Error as exc:
            if not exc.permanent:
                raise _delivery_error(exc) from None
            logger.info("Bitrix24 refused imbot.v2.File.download (%s); trying disk.file.get", exc.code)
        else:
            link = result.get("downloadUrl") if isinstance(result, dict) else None
            if isinstance(link, str) and link:
                return _checked_link(client, link)
    result = _call(client, "disk.file.get", {"id": int(file_id)})
    link = result.get("DOWNLOAD_URL") if isinstance(result, dict) else None
    if not isinstance(link, str) or not link:
        raise DeliveryError("Bitrix24: disk.file.get gave no DOWNLOAD_URL", permanent=True)
    return _checked_link(client, link)


def _checked_link(client: Bitrix24Client, link: str) -> str:
    """The link, when it is http(s) on the portal that gave it (nothing else is fetched)."""
    parts, portal = urlsplit(link), urlsplit(client.endpoint)
    if parts.scheme not in ("https", "http") or (parts.hostname or "") != (portal.hostname or ""):
        raise DeliveryError("Bitrix24: the download link is not on the portal", permanent=True)
    return link


def _download(client: Bitrix24Client, url: str, *, max_bytes: int) -> tuple[bytes, str]:
    """The file's bytes and content type, read up to `max_bytes`; DeliveryError for anything
    that is not the file. The link holds a token: it is never logged or put in an error."""
    try:
        # The client's own seam: its session, User-Agent and timeout (one try: a worker waits).
        response = client.http.send("GET", url, stream=True)
    except ApiError as exc:
        raise DeliveryError(f"Bitrix24: the file download failed ({exc})", permanent=exc.permanent) from None
    try:
        status = response.status_code
        if status >= 400:
            raise DeliveryError(
                f"Bitrix24: the file download answered HTTP {status}", permanent=is_permanent_status(status)
            )
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type in _NOT_A_FILE_TYPES:
            raise DeliveryError(f"Bitrix24: the download sent a page ({content_type}), not the file", permanent=True)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise DeliveryError(f"Bitrix24: the file is larger than {max_bytes} bytes", permanent=True)
        content = bytearray()
        for chunk in response.iter_content(_CHUNK):
            content += chunk
            if len(content) > max_bytes:
                raise DeliveryError(f"Bitrix24: the file is larger than {max_bytes} bytes", permanent=True)
    except requests.RequestException as exc:
        # Read errors quote the URL, and so its token: the class name only.
        raise DeliveryError(f"Bitrix24: the file download broke off ({type(exc).__name__})") from None
    finally:
        response.close()
    if not content:
        raise DeliveryError("Bitrix24: the downloaded file is empty", permanent=True)
    if bytes(content[:512]).lstrip().lower().startswith(_HTML_STARTS):
        raise DeliveryError("Bitrix24: the download sent an HTML page, not the file", permanent=True)
    return bytes(content), content_type


def _without_extras(params: dict) -> dict:
    return {k: v for k, v in params.items() if k not in ("ATTACH", "KEYBOARD", "URL_PREVIEW")}


def _bot_params(client: Bitrix24Client, data) -> dict:
    params = {}
    portal_bot = client.portal.bot_id if client.portal is not None else ""
    # Without BOT_ID Bitrix24 takes the first bot of the application.
    bot_id = data.get("bot_id") or portal_bot or settings.B24_IMBOT_ID
    if bot_id:
        params["BOT_ID"] = bot_id
    # A bot registered through a webhook is known by its CLIENT_ID; an app's bots by the app's token.
    if settings.B24_IMBOT_CLIENT_ID and client.portal is None:
        params["CLIENT_ID"] = settings.B24_IMBOT_CLIENT_ID
    return params


def _call(client: Bitrix24Client, method: str, params: dict):
    try:
        return client.call(method, params)
    except Bitrix24Error as exc:
        raise _delivery_error(exc) from None


def _delivery_error(exc: Bitrix24Error) -> DeliveryError:
    # permanent: the dialog, the bot or the settings are wrong (4xx); limits,
    # outages and lost connections are worth another try.
    return DeliveryError(f"Bitrix24: {exc}", permanent=exc.permanent)


def _dialog_id(conversation) -> str:
    dialog_id = (conversation.channel_data or {}).get("dialog_id")
    if dialog_id:
        return str(dialog_id)
    # external_id is "<member_id>:<DIALOG_ID>"; member ids have no colon.
    _member, _sep, dialog_id = conversation.external_id.partition(":")
    return dialog_id


def _chat_id(conversation) -> str:
    chat_id = (conversation.channel_data or {}).get("chat_id")
    if chat_id:
        return str(chat_id)
    match = re.fullmatch(r"chat(\d+)", _dialog_id(conversation))
    return match.group(1) if match else ""
