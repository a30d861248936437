"""OpenAI's POST /audio/transcriptions and the servers that copy it (OpenAI
itself, faster-whisper servers such as speaches, whisper.cpp's server, vLLM),
through the project's one HTTP seam (integrations/http.py: session, timeout,
User-Agent, the retry policy).

Not the official `openai` client: whisper.cpp's server and some faster-whisper
servers answer text/plain, or JSON without the fields the client's models
expect, and the client rejects those answers; it also refuses to start without
an API key, which self-hosted servers do not need. One multipart POST is
simple enough to send by hand.
"""

import json
import logging
import re
import time
from collections.abc import Callable
from email.message import Message

import requests
from django.conf import settings

from bots.stt.base import STTError, Transcriber, Transcript
from integrations.http import ApiError, OutboundHttp, is_permanent_status

logger = logging.getLogger(__name__)

# A server asking for a longer pause than this is not waited for: a customer is waiting too.
MAX_RETRY_AFTER_S = 5.0
# Error codes worth quoting (invalid_api_key, model_not_found...); anything else may be free text.
ERROR_CODE = re.compile(r"[\w.-]{1,64}")


class OpenAICompatibleTranscriber(Transcriber):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str = "whisper-1",
        api_key: str = "",
        language: str = "ru",
        timeout: float = 60.0,
        retry_backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not base_url:
            raise STTError("OpenAI-compatible transcriber is not configured (STT_BASE_URL)")
        self._url = base_url.rstrip("/") + "/audio/transcriptions"
        self.model = model
        self._api_key = api_key
        self.language = language
        # One retry at most (two attempts): the customer waits for the answer.
        self.http = OutboundHttp(
            system="stt",
            timeout=timeout,
            max_attempts=2,
            backoff=retry_backoff,
            max_wait=MAX_RETRY_AFTER_S,
            sleep=sleep,  # injectable so tests of the retry do not wait
        )

    @classmethod
    def from_settings(cls, **overrides) -> "OpenAICompatibleTranscriber":
        """Configured from the STT_* settings; `overrides` replace any argument (tests pass `sleep`)."""
        kwargs = {
            "base_url": settings.STT_BASE_URL,
            "model": settings.STT_MODEL,
            "api_key": settings.STT_API_KEY,
            "language": settings.STT_LANGUAGE,
            "timeout": settings.STT_TIMEOUT_S,
            "retry_backoff": settings.STT_RETRY_BACKOFF_S,
        }
        return cls(**{**kwargs, **overrides})

    def transcribe(self, audio, *, filename, mime_type="", language=None) -> Transcript:
        if not audio:
            raise STTError("no audio to transcribe")
        language = self.language if language is None else language
        data = {"model": self.model, "response_format": "json"}
        if language:
            # Without it Whisper guesses from the first seconds and short Russian
            # messages come back as Ukrainian or Bulgarian.
            data["language"] = language
        headers = {"Accept": "application/json, text/plain;q=0.9"}
        if self._api_key:
            # Only when set: self-hosted servers need none, and "Bearer " with no key is malformed.
            headers["Authorization"] = f"Bearer {self._api_key}"
        # A file part always carries a type; octet-stream lets the server go by the extension.
        files = {"file": (filename, audio, mime_type or "application/octet-stream")}
        try:
            response = self.http.retrying(lambda: self._attempt(data, files, headers), what="transcription")
        except ApiError as exc:
            raise STTError(self._scrub(exc.description or exc.code)) from None
        return _transcript(response, self.model)

    def _attempt(self, data: dict, files: dict, headers: dict) -> requests.Response:
        """One POST; 429, 5xx and a failed connection are worth the one retry.

        A timeout is not retried: the server may still be working on the audio,
        and a second STT_TIMEOUT_S would keep the customer waiting twice as long."""
        try:
            response = self.http.send("POST", self._url, data=data, files=files, headers=headers)
        except ApiError as exc:
            if exc.code == "TIMEOUT":
                raise ApiError("TIMEOUT", "STT API timed out", permanent=True) from None
            raise ApiError(exc.code, f"could not connect to the STT API ({exc.description})") from None
        if response.ok:
            return response
        raise ApiError(
            f"HTTP_{response.status_code}",
            _status_message(response),
            status=response.status_code,
            permanent=is_permanent_status(response.status_code),
            retry_after=_retry_after(response),
        )

    def _scrub(self, message: str) -> str:
        # Never let a key the server echoes reach the database or logs.
        return message.replace(self._api_key, "***") if self._api_key else message


def _retry_after(response: requests.Response) -> float | None:
    """The server's Retry-After in seconds; None when absent or an HTTP date (not worth parsing for one retry)."""
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None


def _status_message(response: requests.Response) -> str:
    # Only the status and an error code that looks like one: the server's free-text
    # message can quote the (partly masked) key.
    message = f"STT API answered HTTP {response.status_code}"
    try:
        error = response.json().get("error")
        detail = error.get("code") or error.get("type")
    except (ValueError, AttributeError):
        return message
    if isinstance(detail, str) and ERROR_CODE.fullmatch(detail):
        message += f" ({detail})"
    return message


def _transcript(response: requests.Response, model: str) -> Transcript:
    """OpenAI's {"text": ...} JSON, or the bare text some servers send instead."""
    content_type = response.headers.get("Content-Type", "").lower()
    if "html" in content_type:
        # A proxy's or a login page answering 200 is not a transcript.
        raise STTError("STT API sent an unreadable answer")
    body = _body_text(response)
    data = None
    if "json" in content_type or body.lstrip().startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            if "json" in content_type:
                raise STTError("STT API sent an unreadable answer") from None
            # Not JSON after all: a plain-text transcript that starts with a brace.
    if data is None:
        text, duration = body, None
    else:
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise STTError("STT API sent an unreadable answer")
        text, duration = data["text"], _duration(data)
        if isinstance(data.get("model"), str) and data["model"]:
            model = data["model"]
    # whisper.cpp starts segments with a space and ends the text with a newline.
    text = text.strip()
    if not text:
        # Silence or noise; the caller asks the customer to write instead.
        raise STTError("STT API sent an empty transcript")
    return Transcript(text=text, model=model, duration_s=duration)


def _body_text(response: requests.Response) -> str:
    # requests decodes text/* without a charset as ISO-8859-1, which garbles Russian;
    # these servers all write UTF-8 unless they say otherwise.
    header = Message()
    header["Content-Type"] = response.headers.get("Content-Type", "")
    charset = header.get_content_charset() or "utf-8"
    try:
        return response.content.decode(charset, errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")


def _duration(data: dict) -> float | None:
    """Seconds of audio: verbose_json's "duration", or OpenAI's usage of type "duration"."""
    usage = data.get("usage")
    candidates = [data.get("duration")]
    if isinstance(usage, dict) and usage.get("type") == "duration":
        candidates.append(usage.get("seconds"))
    for value in candidates:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return None
