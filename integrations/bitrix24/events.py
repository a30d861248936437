"""Bitrix24 event bodies into one event shape, and chat messages into IncomingMessage.

Bitrix24 posts events as application/x-www-form-urlencoded with PHP-style
nested keys (`data[PARAMS][MESSAGE]=...`, `auth[member_id]=...`); every value
is a string. The same structure is accepted as a JSON object, which is how the
documentation shows it and what a test or a relay may send.

Nothing here touches the database: parsing and checking the shape only.
"""

import functools
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from conversations.incoming import IncomingMessage
from conversations.models import Channel, Message
from integrations.bitrix24.formatting import OPERATOR_BUTTON, OPERATOR_COMMAND
from integrations.webhooks import NUL_REFUSED, BadPayload, read_json

MESSAGE_ADD = "ONIMBOTMESSAGEADD"
JOIN_CHAT = "ONIMBOTJOINCHAT"
COMMAND_ADD = "ONIMCOMMANDADD"
BOT_DELETE = "ONIMBOTDELETE"
APP_INSTALL = "ONAPPINSTALL"

LINES = "LINES"  # CHAT_ENTITY_TYPE of an Open Lines chat
KEYBOARD = "KEYBOARD"  # COMMAND_CONTEXT of a keyboard button press

# A command event carries about a hundred fields; far more is not Bitrix24.
MAX_FIELDS = 2000
# PHP stops at 64 levels; Bitrix24's events go four deep.
MAX_DEPTH = 16
# Ids are short numbers or hashes; the columns they end up in hold 255 characters.
MAX_ID_CHARS = 64
MAX_KEY_CHARS = 255
# Files one message may carry; Bitrix24's own uploader sends at most ten at once.
MAX_FILES = 20

# What a recording is saved as: the messenger's voice messages, and audio files.
AUDIO_EXTENSIONS = {
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "wav": "audio/wav",
    "webm": "audio/webm",
}


_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class BadEvent(BadPayload):
    """A body that is not a Bitrix24 event we can read; the message says what is wrong."""


# --- the body --------------------------------------------------------------


def parse_body(body: bytes, content_type: str = "") -> dict:
    """The posted body as nested dicts: JSON when the request says so, else form fields."""
    if content_type.split(";")[0].strip().lower() == "application/json":
        return parse_json(body)
    return parse_form(body)


def parse_form(body: bytes) -> dict:
    """Form fields with PHP-style keys as nested dicts: `a[b][c]=1` -> {"a": {"b": {"c": "1"}}}.

    `a[]=x&a[]=y` makes a list, as PHP does; a key repeated without brackets keeps its last value.
    """
    if not body.strip():
        raise BadEvent("empty body")
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadEvent("body is not UTF-8 form data") from None
    if "\x00" in text:
        raise BadEvent(NUL_REFUSED)
    fields = text.split("&")
    if len(fields) > MAX_FIELDS:
        raise BadEvent(f"more than {MAX_FIELDS} form fields")
    root: dict = {}
    for item in fields:
        raw_key, eq, raw_value = item.partition("=")
        if not eq:
            raise BadEvent("body is not form data (application/x-www-form-urlencoded)")
        path = _key_path(raw_key)
        if path:
            _insert(root, path, _unquote(raw_value))
    return _lists(root)


def parse_json(body: bytes) -> dict:
    return read_json(body, error_class=BadEvent, max_depth=MAX_DEPTH, max_items=MAX_FIELDS)


class _Appended(dict):
    """A container filled by `key[]=`: it becomes a list unless named keys join it."""


def _unquote(raw: str) -> str:
    if "%" not in raw and "+" not in raw:
        return raw  # most values: numbers, Y/N, ids
    try:
        value = unquote_plus(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadEvent("body is not UTF-8 form data") from None
    if "\x00" in value:
        raise BadEvent(NUL_REFUSED)
    return value


# Every event repeats the same few dozen keys: each is unquoted and split once
# per process. The cache is bounded, so keys a stranger makes up only evict.
@functools.lru_cache(maxsize=2048)
def _key_path(raw_key: str) -> tuple[str, ...]:
    key = _unquote(raw_key)
    match = _KEY.match(key)
    if match is None:
        return (key,) if key else ()
    head, rest = match.groups()
    path = (head, *_SEGMENT.findall(rest))
    if len(path) > MAX_DEPTH:
        raise BadEvent("form keys are nested too deep")
    return path


def _insert(root: dict, path: tuple[str, ...], value: str) -> None:
    node = root
    for i, key in enumerate(path):
        if key == "":
            # PHP's `a[]`: the next integer index.
            key = str(max((int(k) + 1 for k in node if k.isdigit()), default=0))
        if i == len(path) - 1:
            node[key] = value
            return
        child = node.get(key)
        if not isinstance(child, dict):
            # As in PHP, a later nested key replaces an earlier plain value.
            child = _Appended() if path[i + 1] == "" else {}
            node[key] = child
        node = child


def _lists(node):
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if isinstance(node, _Appended) and list(converted) == [str(i) for i in range(len(converted))]:
            return list(converted.values())
        return converted
    return node


# --- the event -------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """What our handlers need from a Bitrix24 chat-bot event; `payload` is the parsed body."""

    name: str  # upper case, e.g. "ONIMBOTMESSAGEADD"
    member_id: str = ""  # the portal's id; stable when the portal's address changes
    domain: str = ""
    dialog_id: str = ""  # Bitrix24's DIALOG_ID: a user id for a private chat, "chat<N>" for a group chat
    message_id: str = ""
    text: str = ""
    chat_id: str = ""
    chat_entity_type: str = ""  # "LINES" in Open Lines
    from_user_id: str = ""
    user_name: str = ""
    is_connector: bool = False  # the author is an Open Lines customer (a connector user)
    is_system: bool = False
    bot_id: str = ""
    bot_code: str = ""
    command: str = ""
    command_id: str = ""
    command_params: str = ""
    command_context: str = ""  # "TEXTAREA" (typed) or "KEYBOARD" (a button)
    ts: str = ""
    # The message's files (data[PARAMS][FILES]) in IncomingMessage's attachment shape.
    attachments: list[dict] = field(default_factory=list, compare=False)
    payload: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def in_open_lines(self) -> bool:
        return self.chat_entity_type == LINES

    @property
    def conversation_id(self) -> str:
        """Our conversation's external id: DIALOG_ID alone repeats across portals."""
        return f"{self.member_id}:{self.dialog_id}"

    @property
    def channel_data(self) -> dict:
        """What the sender needs to answer in this dialog; empty values are left out so
        an event without them (a join has no TO_CHAT_ID) keeps what an earlier one stored."""
        values = {
            "member_id": self.member_id,
            "domain": self.domain,
            "dialog_id": self.dialog_id,
            "chat_id": self.chat_id,
            "chat_entity_type": self.chat_entity_type,
            "bot_id": self.bot_id,
        }
        return {k: v for k, v in values.items() if v}


def event_name(payload: dict) -> str:
    name = as_text(payload.get("event")).strip().upper()
    if not name:
        raise BadEvent("no event name (the `event` field is missing)")
    return name


def auth_of(payload: dict) -> dict:
    auth = payload.get("auth")
    return auth if isinstance(auth, dict) else {}


def parse_event(payload: dict) -> Event:
    """The event in a parsed body; BadEvent when a chat event lacks what it must have."""
    name = event_name(payload)
    data = payload.get("data", {})
    if not isinstance(data, dict):
        raise BadEvent("`data` must be an object")
    auth = auth_of(payload)
    base = {
        "name": name,
        "member_id": as_text(auth.get("member_id")).strip(),
        "domain": as_text(auth.get("domain")).strip().lower(),
        "ts": as_text(payload.get("ts"))[:MAX_ID_CHARS],
        "payload": payload,
    }
    if name == MESSAGE_ADD:
        return _message_event(base, data)
    if name == COMMAND_ADD:
        return _command_event(base, data)
    if name == JOIN_CHAT:
        return _join_event(base, data)
    if name == BOT_DELETE:
        _require_member(base)
        return Event(
            **base,
            bot_id=as_text(data.get("BOT_ID"))[:MAX_ID_CHARS],
            bot_code=as_text(data.get("BOT_CODE"))[:MAX_ID_CHARS],
        )
    return Event(**base)


def _message_event(base: dict, data: dict) -> Event:
    params, user = _section(data, "PARAMS"), _section(data, "USER")
    _require_member(base)
    dialog_id = _required(params, "DIALOG_ID")
    message_id = _required(params, "MESSAGE_ID")
    text = as_text(params.get("MESSAGE")).strip()
    attachments = _attachments(params.get("FILES"))
    if not text and not attachments:
        raise BadEvent("the message is empty (data[PARAMS][MESSAGE], no data[PARAMS][FILES])")
    bot_id, bot_code = _bot(data.get("BOT"))
    from_user_id = as_text(params.get("FROM_USER_ID"))[:MAX_ID_CHARS]
    return Event(
        **base,
        dialog_id=dialog_id,
        message_id=message_id,
        text=text,
        chat_id=_chat_id(params, dialog_id),
        chat_entity_type=as_text(params.get("CHAT_ENTITY_TYPE")),
        from_user_id=from_user_id,
        user_name=_user_name(user),
        is_connector=as_text(user.get("IS_CONNECTOR")) == "Y",
        # Bitrix24's own notices come from user 0 or are flagged SYSTEM.
        is_system=as_text(params.get("SYSTEM")) == "Y" or from_user_id in ("", "0"),
        bot_id=bot_id or as_text(params.get("TO_USER_ID"))[:MAX_ID_CHARS],
        bot_code=bot_code,
        attachments=attachments,
    )


# A message's files -----------------------------------------------------------
#
# data[PARAMS][FILES] is keyed by the file's id on Bitrix24 Drive, each entry as
# the messenger describes a chat file (CIMDisk::GetFileParams in Bitrix24's `im`
# module): id, chatId, date, type ("image" | "video" | "audio" | "file"), name,
# extension, size, image, status, progress, authorId, authorName, urlPreview,
# urlShow, urlDownload, viewerAttrs ({viewerType: "audio", src, objectId, title,
# ...} or null). The urls are the portal's pages for a signed-in browser, no use
# to us: the sender asks the REST API for a download link by the file's id
# (Bitrix24Sender.fetch_media). A voice message recorded in the messenger is an
# audio file like any other.


def _attachments(files) -> list[dict]:
    if isinstance(files, dict):
        entries = list(files.values())
    elif isinstance(files, list):
        entries = files
    else:
        return []
    attachments = []
    for entry in entries[:MAX_FILES]:
        if isinstance(entry, dict):
            attachment = _attachment(entry)
            if attachment is not None:
                attachments.append(attachment)
    return attachments


def _attachment(entry: dict) -> dict | None:
    file_id = as_text(entry.get("id")).strip()
    if len(file_id) > MAX_ID_CHARS or not file_id.isdigit() or not int(file_id):
        return None  # not a Drive file we could ask for (0 is a failed upload)
    name = as_text(entry.get("name")).strip()[:255]
    extension = as_text(entry.get("extension")).strip() or (name.rpartition(".")[2] if "." in name else "")
    extension = extension.lower().lstrip(".")[:16]
    b24_type = as_text(entry.get("type")).strip().lower()
    viewer = entry.get("viewerAttrs")
    viewer_type = as_text(viewer.get("viewerType")).strip().lower() if isinstance(viewer, dict) else ""
    audio = b24_type == "audio" or viewer_type == "audio" or extension in AUDIO_EXTENSIONS
    if audio:
        kind, mime_type = "voice", AUDIO_EXTENSIONS.get(extension) or _guess_mime(name) or "audio/ogg"
    else:
        kind = {"image": "photo", "video": "video"}.get(b24_type, "document")
        mime_type = _guess_mime(name)
    size = as_text(entry.get("size")).strip()
    attachment = {
        "kind": kind,
        "file_id": file_id,
        "mime_type": mime_type,
        "file_name": name,
        "b24_type": b24_type or viewer_type,
        "extension": extension,
    }
    if size.isdigit():
        attachment["file_size"] = int(size)
    chat_id = as_text(entry.get("chatId")).strip()
    if chat_id.isdigit():
        attachment["chat_id"] = chat_id
    return attachment


def _guess_mime(name: str) -> str:
    mime_type, _encoding = mimetypes.guess_type(name, strict=False) if name else (None, None)
    return mime_type or ""


def _command_event(base: dict, data: dict) -> Event:
    params, user = _section(data, "PARAMS"), _section(data, "USER")
    _require_member(base)
    dialog_id = _required(params, "DIALOG_ID")
    commands = data.get("COMMAND")
    command = next((c for c in commands.values() if isinstance(c, dict)), None) if isinstance(commands, dict) else None
    if command is None:
        raise BadEvent("no command in the event (data[COMMAND])")
    message_id = as_text(command.get("MESSAGE_ID")) or as_text(params.get("MESSAGE_ID"))
    if not message_id:
        raise BadEvent("data[COMMAND][...][MESSAGE_ID] is missing")
    _short(message_id, "data[COMMAND][...][MESSAGE_ID]")
    auth = auth_of(base["payload"])
    return Event(
        **base,
        dialog_id=dialog_id,
        message_id=message_id,
        text=as_text(params.get("MESSAGE")).strip(),
        chat_id=_chat_id(params, dialog_id),
        chat_entity_type=as_text(params.get("CHAT_ENTITY_TYPE")),
        # For a button press the message is the bot's own; whoever pressed is the event's user.
        from_user_id=(as_text(auth.get("user_id")) or as_text(params.get("FROM_USER_ID")))[:MAX_ID_CHARS],
        user_name=_user_name(user),
        is_connector=as_text(user.get("IS_CONNECTOR")) == "Y",
        bot_id=as_text(command.get("BOT_ID"))[:MAX_ID_CHARS],
        bot_code=as_text(command.get("BOT_CODE"))[:MAX_ID_CHARS],
        command=as_text(command.get("COMMAND")).strip().lstrip("/").lower(),
        command_id=_short(as_text(command.get("COMMAND_ID")), "data[COMMAND][...][COMMAND_ID]"),
        command_params=as_text(command.get("COMMAND_PARAMS")).strip(),
        command_context=as_text(command.get("COMMAND_CONTEXT")).upper(),
    )


def _join_event(base: dict, data: dict) -> Event:
    params, user = _section(data, "PARAMS"), _section(data, "USER")
    _require_member(base)
    dialog_id = _required(params, "DIALOG_ID")
    bot_id, bot_code = _bot(data.get("BOT"))
    return Event(
        **base,
        dialog_id=dialog_id,
        chat_id=_chat_id(params, dialog_id),
        chat_entity_type=as_text(params.get("CHAT_ENTITY_TYPE")),
        from_user_id=as_text(params.get("USER_ID"))[:MAX_ID_CHARS],
        user_name=_user_name(user),
        is_connector=as_text(user.get("IS_CONNECTOR")) == "Y",
        bot_id=bot_id or as_text(params.get("BOT_ID"))[:MAX_ID_CHARS],
        bot_code=bot_code,
    )


def _section(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if isinstance(value, list) and not value:
        return {}  # PHP's empty array arrives as [] in JSON
    if not isinstance(value, dict):
        raise BadEvent(f"data[{key}] must be an object")
    return value


def _required(params: dict, key: str) -> str:
    value = as_text(params.get(key)).strip()
    if not value:
        raise BadEvent(f"data[PARAMS][{key}] is missing")
    return _short(value, f"data[PARAMS][{key}]")


def _require_member(base: dict) -> None:
    if not base["member_id"]:
        raise BadEvent("auth[member_id] is missing")
    _short(base["member_id"], "auth[member_id]")


def _short(value: str, what: str) -> str:
    if len(value) > MAX_ID_CHARS:
        raise BadEvent(f"{what} is too long")
    return value


def _bot(bots) -> tuple[str, str]:
    """data[BOT] is keyed by the bot's id: {"39": {"BOT_ID": "39", "BOT_CODE": "storebot", ...}}."""
    if not isinstance(bots, dict):
        return "", ""
    for key, bot in bots.items():
        if isinstance(bot, dict):
            bot_id = as_text(bot.get("BOT_ID")) or str(key)
            return bot_id[:MAX_ID_CHARS], as_text(bot.get("BOT_CODE"))[:MAX_ID_CHARS]
    return "", ""


def _chat_id(params: dict, dialog_id: str) -> str:
    chat_id = as_text(params.get("TO_CHAT_ID")) or as_text(params.get("CHAT_ID"))
    if not chat_id and dialog_id.startswith("chat"):
        chat_id = dialog_id.removeprefix("chat")
    return chat_id


def _user_name(user: dict) -> str:
    # NAME is usually "First Last" already; LAST_NAME is added when it is not.
    name = as_text(user.get("NAME")).strip() or as_text(user.get("FIRST_NAME")).strip()
    last = as_text(user.get("LAST_NAME")).strip()
    if last and last not in name:
        name = f"{name} {last}".strip()
    return name[:255]


def as_text(value) -> str:
    """A field as a string: form values are strings already, JSON may carry numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return ""


# --- into the shared shape -------------------------------------------------


def to_incoming(event: Event, *, account_id: int | None = None) -> IncomingMessage:
    """A message or command event as the shared IncomingMessage of the portal's account."""
    if event.name == COMMAND_ADD:
        return _command_incoming(event, account_id)
    if event.name != MESSAGE_ADD:
        raise BadEvent(f"{event.name} is not a message")
    if event.is_system:
        author = Message.Author.SYSTEM
    elif event.in_open_lines and not event.is_connector:
        # In Open Lines only the customer writes through a connector; anyone
        # else in the chat is a person of the store answering.
        author = Message.Author.OPERATOR
    else:
        author = Message.Author.CUSTOMER
    return IncomingMessage(
        channel=Channel.BITRIX24,
        account_id=account_id,
        dialog_id=event.conversation_id,
        message_id=f"{event.member_id}:{event.message_id}",
        text=event.text,
        customer_name=event.user_name,
        customer_id=event.from_user_id,
        author=author,
        channel_data=event.channel_data,
        raw_payload=event.payload,
        attachments=[dict(a) for a in event.attachments],
    )


def is_operator_command(event: Event) -> bool:
    """The «Позвать оператора» button (formatting.reply_keyboard) or the typed /operator."""
    return event.name == COMMAND_ADD and event.command == OPERATOR_COMMAND


def command_text(event: Event) -> str:
    """What the customer said with a command: its parameters (a button's label), else what was typed."""
    if event.command_params:
        return event.command_params
    if event.command_context != KEYBOARD and event.text:
        return event.text
    if is_operator_command(event):
        return OPERATOR_BUTTON
    return f"/{event.command}" if event.command else ""


def _command_incoming(event: Event, account_id: int | None) -> IncomingMessage:
    text = command_text(event)
    if not text:
        raise BadEvent("the command has no name and no text")
    if event.command_context == KEYBOARD:
        # A button's MESSAGE_ID is the bot's message holding the keyboard: each
        # press is its own message, and a repeated delivery has the same `ts`.
        message_id = f"{event.member_id}:{event.message_id}:{event.command_id}:{event.ts}"
        if len(message_id) > MAX_KEY_CHARS:
            # Four ids of up to 64 characters each exceed the column: a digest keeps the key unique.
            digest = hashlib.sha256(message_id.encode()).hexdigest()
            message_id = f"{event.member_id}:{digest}"
    else:
        # A typed command is the customer's own message, the same one a message event would carry.
        message_id = f"{event.member_id}:{event.message_id}"
    return IncomingMessage(
        channel=Channel.BITRIX24,
        account_id=account_id,
        dialog_id=event.conversation_id,
        message_id=message_id,
        text=text,
        customer_name=event.user_name,
        customer_id=event.from_user_id,
        author=Message.Author.CUSTOMER,
        channel_data=event.channel_data,
        raw_payload=event.payload,
    )
