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

from django.conf import settings

from conversations.channels import ChannelSender, DeliveryError
from conversations.models import Message
from integrations.answering import staff_notice
from integrations.bitrix24 import formatting
from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error

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
    products = formatting.order_as_in_text(message.products.all(), message.text)
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
