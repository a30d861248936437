"""The worker's step before the assistant answers a customer message: media.

A voice message (voice, audio, a video note, or a document that is audio) is
fetched from its channel and transcribed once; the transcript is stored on the
message (Message.transcript) and the assistant answers it as the customer's
text (bots.assistant reads `transcript or text`). A retried task finds the
transcript stored and does not transcribe again.

When the voice cannot be understood (speech to text off, the recording too
long, the channel or the STT server failing) the customer gets the fixed polite
reply from the assistant's settings, never silence, and the task ends: nothing
is raised for the sweep to retry for ever. Why is kept in the reply's
`llm_error`, which staff see under the reply in admin.

A message with no text and only pictures, stickers or files gets the settings'
media text, unless a return request in its dialog waits for photos; a picture
with a caption is answered from the caption.
"""

import logging
import mimetypes
import re

from django.conf import settings

from bots.models import AssistantSettings
from bots.replies import Kind, Reply
from bots.stt import STTError, get_transcriber
from conversations.channels import DeliveryError, sender_for
from conversations.models import Conversation, Message
from integrations.http import ApiError
from orders.selectors import awaits_return_photos

logger = logging.getLogger(__name__)

AUDIO_KINDS = frozenset({"voice", "audio", "video_note"})
# Transcripts longer than this are cut: a five-minute message is ~5,000 characters.
MAX_TRANSCRIPT_CHARS = 20_000
# Servers tell the audio format by the file's extension; these are what channels send.
_EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/webm": ".webm",
    "audio/flac": ".flac",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
}
# Extensions some servers (OpenAI's among them) do not know, for the same formats:
# Telegram's voice messages are "file_12.oga", Ogg Opus.
_EXTENSION_ALIASES = {"oga": "ogg", "opus": "ogg", "mpga": "mp3"}
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")


def is_audio(attachment: dict) -> bool:
    """A voice message, an audio file or a video note, or a document whose type is audio."""
    kind = attachment.get("kind")
    if kind in AUDIO_KINDS:
        return True
    mime_type = str(attachment.get("mime_type") or "").lower()
    return kind == "document" and mime_type.startswith("audio/")


def audio_attachment(message: Message) -> tuple[int, dict] | None:
    """(index, attachment) of the message's first audio attachment, or None."""
    for index, attachment in enumerate(message.attachments or []):
        if isinstance(attachment, dict) and is_audio(attachment):
            return index, attachment
    return None


def prepare(message: Message) -> Reply | None:
    """A fixed reply to give instead of asking the assistant, or None to let it answer.

    None also when a voice message was transcribed: message.transcript holds it then.
    """
    if message.transcript:
        return None  # transcribed before (a retried task): the assistant answers it
    if message.conversation.state != Conversation.State.BOT:
        return None  # no bot reply goes to an operator's dialog: nothing to transcribe for
    found = audio_attachment(message)
    has_text = bool((message.text or "").strip())
    if found is None:
        if has_text or not message.attachments:
            return None  # text, or a picture's caption: the assistant answers it
        if awaits_return_photos(message):
            return None  # the photos a return request asked for: the assistant takes them (bots.after_sale)
        return Reply(AssistantSettings.load().media_text, Kind.FALLBACK)
    _index, attachment = found
    failure = _transcribe(message, attachment)
    if failure is None:
        return None
    text_kind, reason = failure
    if has_text:
        # A caption came with the recording: better answered than refused.
        logger.info("voice message %s not transcribed (%s); answering its caption", message.pk, reason)
        return None
    config = AssistantSettings.load()
    text = config.voice_too_long_text if text_kind == "too_long" else config.voice_failed_text
    return Reply(text, Kind.FALLBACK, llm_error=f"speech to text: {reason}"[:500])


def _transcribe(message: Message, attachment: dict) -> tuple[str, str] | None:
    """Store the recording's transcript on the message; None when done, else ("too_long" | "failed", why)."""
    try:
        transcriber = get_transcriber()
    except STTError as exc:
        logger.warning("speech to text is misconfigured: %s", exc)
        return "failed", str(exc)
    if transcriber is None:
        return "failed", "off (STT_PROVIDER is empty)"
    duration = _number(attachment.get("duration"))
    if duration is not None and duration > settings.STT_MAX_SECONDS:
        return "too_long", f"{duration:g} s is over STT_MAX_SECONDS ({settings.STT_MAX_SECONDS})"
    size = _number(attachment.get("file_size"))
    if size is not None and size > settings.STT_MAX_BYTES:
        return "too_long", f"{size:g} bytes is over STT_MAX_BYTES ({settings.STT_MAX_BYTES})"
    channel = message.conversation.channel
    try:
        media = sender_for(channel).fetch_media(message, attachment, max_bytes=settings.STT_MAX_BYTES)
        transcript = transcriber.transcribe(
            media.content,
            filename=audio_filename(media.filename or attachment.get("file_name"), media.mime_type, attachment),
            mime_type=media.mime_type or str(attachment.get("mime_type") or ""),
        )
    except (DeliveryError, STTError, ApiError) as exc:
        # The messages of these are short and hold no secrets (see their classes).
        logger.warning("voice message %s not transcribed: %s: %s", message.pk, type(exc).__name__, exc)
        return "failed", f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        # Whatever else a channel's download raises: the customer still gets an answer.
        logger.exception("voice message %s not transcribed: unexpected %s", message.pk, type(exc).__name__)
        return "failed", f"unexpected {type(exc).__name__}"
    message.transcript = transcript.text[:MAX_TRANSCRIPT_CHARS]
    message.save(update_fields=["transcript"])
    logger.info("voice message %s transcribed (%s characters)", message.pk, len(message.transcript))
    return None


def audio_filename(name, mime_type: str, attachment: dict) -> str:
    """A safe file name with an extension the STT server can go by ("voice.ogg" when nothing is known)."""
    name = _UNSAFE_NAME.sub("_", str(name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip(" ._")[:100]
    stem, dot, extension = name.rpartition(".")
    if dot and stem and extension:
        return f"{stem}.{_EXTENSION_ALIASES.get(extension.lower(), extension)}"
    mime_type = (mime_type or str(attachment.get("mime_type") or "")).split(";")[0].strip().lower()
    extension = _EXTENSIONS.get(mime_type) or mimetypes.guess_extension(mime_type or "") or ".ogg"
    return f"{name or attachment.get('kind') or 'voice'}{extension}"


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
