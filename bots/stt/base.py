"""What every speech-to-text backend offers the bots: one call that turns a
voice message into text.

Backends are chosen by name (STT_PROVIDER) like the LLM providers; the caller
downloads the audio, checks STT_MAX_SECONDS / STT_MAX_BYTES and hands over
the bytes.
"""

from dataclasses import dataclass


class STTError(Exception):
    """The audio could not be transcribed (timeout, HTTP error after the retry,
    unreadable or empty answer). The message is short and safe to store and
    log: it never carries the API key or the server's free text."""


@dataclass
class Transcript:
    text: str
    model: str = ""
    duration_s: float | None = None  # when the server reports it


class Transcriber:
    name = ""

    def transcribe(
        self, audio: bytes, *, filename: str, mime_type: str = "", language: str | None = None
    ) -> Transcript:
        """`filename` matters: servers tell the audio format by its extension.
        `language` None means the configured one (STT_LANGUAGE, "ru");
        "" lets the model detect it."""
        raise NotImplementedError
