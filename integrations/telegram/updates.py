"""Telegram webhook bodies into one Update shape, and customers' messages into IncomingMessage.

Telegram posts each update as a JSON object (https://core.telegram.org/bots/api#update):
an `update_id` and exactly one of `message`, `edited_message`,
`callback_query`, `my_chat_member` and some twenty other types. The fields
read here are those of the Bot API's Message, Chat, User, CallbackQuery,
ChatMemberUpdated, PhotoSize, Voice, Audio, VideoNote, Sticker, Document,
Video and Animation objects.

Nothing here touches the database: parsing and checking the shape only.
"""

import re
from dataclasses import dataclass, field

from conversations.incoming import IncomingMessage
from conversations.models import Channel
from integrations.telegram import formatting
from integrations.webhooks import BadPayload, read_json

MESSAGE = "message"
EDITED_MESSAGE = "edited_message"
CALLBACK_QUERY = "callback_query"
MY_CHAT_MEMBER = "my_chat_member"
OTHER = "other"
KINDS = (MESSAGE, EDITED_MESSAGE, CALLBACK_QUERY, MY_CHAT_MEMBER)

PRIVATE = "private"

# The bot's commands (setMyCommands registers them; a typed one works too).
START = "start"
CATALOG = "catalog"
OPERATOR = "operator"
HELP = "help"

# Updates go five levels deep (a callback's message's reply markup's rows of buttons);
# a reply_to_message or an external reply adds a few more.
MAX_DEPTH = 32
# PostgreSQL's bigint. Telegram's ids have at most 52 significant bits.
MAX_ID = 2**63 - 1
# A callback query's id is a decimal string; it goes into a message id of 255 characters.
MAX_CALLBACK_ID_CHARS = 64

# A command is 1-32 Latin letters, digits and underscores (BotCommand); in a
# group it may name its bot: "/start@seafood_shop_bot".
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]{1,64})?(?=\s|$)")


class BadUpdate(BadPayload):
    """A body that is not a Telegram update we can read; the message says what is wrong."""


# --- the body --------------------------------------------------------------


def parse_update(body: bytes) -> dict:
    """The posted body as a dict; BadUpdate for anything PostgreSQL's jsonb could not store."""
    if not body.strip():
        raise BadUpdate("empty body")
    return read_json(body, error_class=BadUpdate, max_depth=MAX_DEPTH)


# --- the update ------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """What our handlers need from an update; `raw` is the parsed body."""

    update_id: int
    kind: str  # "message", "edited_message", "callback_query", "my_chat_member" or "other"
    chat_id: int | None = None
    chat_type: str = ""  # "private", "group", "supergroup" or "channel"
    message_id: int | None = None
    user_id: int | None = None  # who wrote, pressed the button or changed the bot's membership
    user_name: str = ""  # first and last name, else the username
    username: str = ""  # without "@"
    text: str = ""  # the text, or a media message's caption
    date: int | None = None  # Unix time
    edit_date: int | None = None
    command: str = ""  # lower case, without "/" and "@botname": "start", "catalog", ...
    command_args: str = ""  # what follows the command: a /start link's payload
    callback_id: str = ""
    callback_data: str = ""
    callback_message_id: int | None = None  # our message that carried the button
    member_status: str = ""  # the bot's new status in the chat: "member", "kicked", "left", ...
    attachments: list[dict] = field(default_factory=list)
    is_bot_author: bool = False
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_private(self) -> bool:
        return self.chat_type == PRIVATE


def read_update(payload: dict) -> Update:
    """The update in a parsed body; BadUpdate when a type we read lacks what it must have.

    A type we do not read (channel posts, reactions, business connections,
    polls, ...) is kind "other", not an error: Telegram sends what the
    webhook's allowed_updates lets through, and a 400 would only make it retry.
    """
    update_id = payload.get("update_id")
    if not _is_int(update_id):
        raise BadUpdate("update_id is missing or not an integer")
    if not 0 <= update_id <= MAX_ID:
        raise BadUpdate("update_id is out of range")
    kind = next((k for k in KINDS if k in payload), OTHER)
    base = {"update_id": update_id, "kind": kind, "raw": payload}
    if kind in (MESSAGE, EDITED_MESSAGE):
        return _message_update(base, _object(payload, kind))
    if kind == CALLBACK_QUERY:
        return _callback_update(base, _object(payload, kind))
    if kind == MY_CHAT_MEMBER:
        return _member_update(base, _object(payload, kind))
    return Update(**base)


def _message_update(base: dict, message: dict) -> Update:
    chat = _chat(message, base["kind"])
    sender = _user(message.get("from"))
    text = _text(message.get("text")) or _text(message.get("caption")) or _shared_phone(message)
    command, args = _command(message) if base["kind"] == MESSAGE else ("", "")
    return Update(
        **base,
        **chat,
        **sender,
        message_id=_required_id(message, "message_id", base["kind"]),
        text=text,
        date=_id(message.get("date")),
        edit_date=_id(message.get("edit_date")),
        command=command,
        command_args=args,
        attachments=attachments_of(message),
    )


def _shared_phone(message: dict) -> str:
    """The number of a contact the customer shared (the «Поделиться номером» button): read as what they wrote."""
    contact = message.get("contact")
    if not isinstance(contact, dict):
        return ""
    phone = _text(contact.get("phone_number")).strip()
    return phone[:32]


def _callback_update(base: dict, query: dict) -> Update:
    callback_id = query.get("id")
    if not isinstance(callback_id, str) or not callback_id.strip():
        raise BadUpdate("callback_query.id is missing")
    if len(callback_id) > MAX_CALLBACK_ID_CHARS:
        raise BadUpdate("callback_query.id is too long")
    # The message is absent for a button under an inline-mode message, and an
    # InaccessibleMessage (date 0, only chat and message_id) when it is too old.
    message = query.get("message")
    chat, message_id = {}, None
    if isinstance(message, dict):
        chat = _chat(message, "callback_query.message")
        message_id = _id(message.get("message_id"))
    return Update(
        **base,
        **chat,
        **_user(query.get("from")),
        callback_id=callback_id,
        callback_data=_text(query.get("data")),
        callback_message_id=message_id,
    )


def _member_update(base: dict, update: dict) -> Update:
    new = update.get("new_chat_member")
    status = _text(new.get("status")) if isinstance(new, dict) else ""
    return Update(
        **base,
        **_chat(update, base["kind"]),
        **_user(update.get("from")),
        date=_id(update.get("date")),
        member_status=status,
    )


def _object(payload: dict, key: str) -> dict:
    value = payload[key]
    if not isinstance(value, dict):
        raise BadUpdate(f"{key} must be an object")
    return value


def _chat(parent: dict, where: str) -> dict:
    chat = parent.get("chat")
    if not isinstance(chat, dict):
        raise BadUpdate(f"{where}.chat is missing")
    chat_id = _required_id(chat, "id", f"{where}.chat")
    if chat_id == 0:
        # No Telegram chat has id 0, and nothing could be sent to one.
        raise BadUpdate(f"{where}.chat.id is 0")
    return {"chat_id": chat_id, "chat_type": _text(chat.get("type"))}


def _user(user) -> dict:
    """The User fields of an update; a message in a channel or from an anonymous admin has none."""
    if not isinstance(user, dict):
        return {}
    username = _text(user.get("username"))
    name = " ".join(n for n in (_text(user.get("first_name")).strip(), _text(user.get("last_name")).strip()) if n)
    return {
        "user_id": _id(user.get("id")),
        "user_name": (name or username)[:255],
        "username": username,
        "is_bot_author": user.get("is_bot") is True,
    }


def _command(message: dict) -> tuple[str, str]:
    """The command a message starts with and what follows it: ("start", "promo_summer24")."""
    text = _text(message.get("text"))
    span = ""
    entities = message.get("entities")
    if isinstance(entities, list):
        for entity in entities:
            if isinstance(entity, dict) and entity.get("type") == "bot_command" and entity.get("offset") == 0:
                length = entity.get("length")
                # Offsets count UTF-16 units; a command is ASCII, where units are characters.
                span = text[:length] if _is_int(length) else ""
                break
    match = _COMMAND.match(span or text)
    if match is None:
        return "", ""
    return match.group(1).lower(), text[match.end() :].strip()


def _required_id(parent: dict, key: str, where: str) -> int:
    value = _id(parent.get(key))
    if value is None:
        raise BadUpdate(f"{where}.{key} is missing or not an integer")
    return value


def _id(value) -> int | None:
    if not _is_int(value):
        return None
    if abs(value) > MAX_ID:
        raise BadUpdate("an id is out of range")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


# --- attachments -----------------------------------------------------------

# Message fields holding a file, in the order they are looked at. An
# animation's message carries it as `document` too, for old clients: it is
# read once, as the animation.
_FILE_FIELDS = {
    "voice": "voice",
    "audio": "audio",
    "video_note": "video_note",
    "photo": "photo",
    "sticker": "sticker",
    "animation": "video",  # a GIF, sent as a silent MP4
    "video": "video",
    "document": "document",
}
# Telegram gives no mime_type for these: what it always sends them as.
_DEFAULT_MIME = {"photo": "image/jpeg", "video_note": "video/mp4"}
# Content a customer sends that carries no file we can fetch.
_OTHER_FIELDS = ("contact", "location", "venue", "poll", "dice", "game", "story", "invoice", "checklist")


def attachments_of(message: dict) -> list[dict]:
    """The media of a message in IncomingMessage's shared shape, plus `telegram_field`
    (the Message field it came from) and, where Telegram gives them, width/height,
    emoji, title and performer."""
    found = []
    for name, kind in _FILE_FIELDS.items():
        value = message.get(name)
        if name == "photo":
            value = _largest(value)
        if name == "document" and "animation" in message:
            continue
        if isinstance(value, dict) and isinstance(value.get("file_id"), str):
            found.append(_attachment(name, kind, value))
    for name in _OTHER_FIELDS:
        if isinstance(message.get(name), dict):
            found.append(_shared("other", name))
    return found


def _largest(sizes) -> dict | None:
    """A photo comes as several PhotoSize; the largest is the one worth reading."""
    if not isinstance(sizes, list):
        return None
    sizes = [s for s in sizes if isinstance(s, dict)]

    def area(size: dict) -> tuple[int, int]:
        width, height, file_size = (size.get(k) for k in ("width", "height", "file_size"))
        pixels = width * height if _is_int(width) and _is_int(height) else 0
        return pixels, file_size if _is_int(file_size) else 0

    return max(sizes, key=area, default=None)


def _attachment(name: str, kind: str, media: dict) -> dict:
    mime_type = _text(media.get("mime_type")) or _DEFAULT_MIME.get(name, "")
    if name == "sticker":
        mime_type = _sticker_mime(media)
    attachment = _shared(
        kind,
        name,
        file_id=media["file_id"],
        file_unique_id=_text(media.get("file_unique_id")),
        mime_type=mime_type,
        duration=_int_or_none(media.get("duration")),
        file_size=_int_or_none(media.get("file_size")),
        file_name=_text(media.get("file_name")),
    )
    for key in ("width", "height"):
        if _is_int(media.get(key)):
            attachment[key] = media[key]
    for key in ("emoji", "title", "performer"):
        if _text(media.get(key)):
            attachment[key] = media[key]
    return attachment


def _shared(kind: str, name: str, **values) -> dict:
    return {
        "kind": kind,
        "file_id": "",
        "file_unique_id": "",
        "mime_type": "",
        "duration": None,
        "file_size": None,
        "file_name": "",
        **values,
        "telegram_field": name,
    }


def _sticker_mime(sticker: dict) -> str:
    # Static stickers are WebP, animated ones Lottie (TGS), video ones WebM.
    if sticker.get("is_animated") is True:
        return "application/x-tgsticker"
    if sticker.get("is_video") is True:
        return "video/webm"
    return "image/webp"


def _int_or_none(value) -> int | None:
    return value if _is_int(value) else None


# --- who we serve ----------------------------------------------------------


def addressed_to_bot(update: Update, bot_username: str = "") -> bool:
    """Whether the update is one storebot serves: a person in a private chat with the bot.

    In a group Telegram delivers a message to the bot when it mentions
    @bot_username or replies to the bot (or to every message, with privacy
    mode off), but the store's bot answers customers one to one: group,
    supergroup and channel updates are not served, mentioned or not, and
    `bot_username` does not change that. Messages of other bots are not
    served either: two bots answering each other never stop.
    """
    return update.kind in KINDS and update.is_private and update.user_id is not None and not update.is_bot_author


def is_operator_request(update: Update) -> bool:
    """The «Позвать оператора» button (formatting.inline_keyboard) or the typed /operator."""
    if update.kind == CALLBACK_QUERY:
        return formatting.read_callback(update.callback_data)[0] == formatting.OPERATOR
    return update.kind == MESSAGE and update.command == OPERATOR


# --- into the shared shape -------------------------------------------------


def to_incoming(update: Update, *, account_id: int | None) -> IncomingMessage:
    """A customer's message, edit or button press as the shared IncomingMessage.

    BadUpdate("not a message") for anything else (a membership change, a
    service message, an unknown type): the webhook acknowledges those
    without a reply.
    """
    if update.kind not in (MESSAGE, EDITED_MESSAGE, CALLBACK_QUERY) or update.chat_id is None:
        raise BadUpdate("not a message")
    if update.kind == CALLBACK_QUERY:
        message_id, text, attachments = f"cb:{update.callback_id}", _button_text(update), []
    else:
        text, attachments = update.text.strip(), update.attachments
        if not text and not attachments:
            # A pinned message, a changed auto-delete timer: nothing the customer said.
            raise BadUpdate("not a message")
        message_id = str(update.message_id)
        if update.kind == EDITED_MESSAGE:
            # Each edit is its own record; a repeated delivery of it has the same edit_date.
            message_id = f"edit:{update.message_id}:{update.edit_date}"
    return IncomingMessage(
        channel=Channel.TELEGRAM,
        dialog_id=str(update.chat_id),
        message_id=message_id,
        text=text,
        account_id=account_id,
        customer_name=update.user_name,
        customer_id=str(update.user_id) if update.user_id is not None else "",
        channel_data={"chat_id": update.chat_id, "username": update.username},
        raw_payload=update.raw,
        attachments=attachments,
        # The bot answered the message as first sent; an edit is recorded, not answered again.
        needs_reply=update.kind != EDITED_MESSAGE,
    )


def _button_text(update: Update) -> str:
    """What a press of one of our buttons says: the question it carries, or the operator request."""
    kind, value = formatting.read_callback(update.callback_data)
    if kind == formatting.OPERATOR:
        return formatting.OPERATOR_BUTTON
    if kind == formatting.ASK and value.strip():
        return value.strip()
    # A button of an older keyboard, or data a client made up.
    raise BadUpdate("not a button of ours")
