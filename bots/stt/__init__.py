"""Speech-to-text backends for voice messages, chosen by name (STT_PROVIDER)."""

from django.conf import settings
from django.utils.module_loading import import_string

from bots.stt.base import STTError, Transcriber, Transcript

PROVIDERS = {
    "openai": "bots.stt.openai_compatible.OpenAICompatibleTranscriber",
    "locmem": "bots.stt.locmem.LocmemTranscriber",
}

__all__ = ["PROVIDERS", "STTError", "Transcriber", "Transcript", "get_transcriber"]


def get_transcriber(name: str | None = None) -> Transcriber | None:
    """The transcriber of that name (default STT_PROVIDER), configured from
    settings; None for "" (speech to text is off: the customer is asked to write)."""
    if name is None:
        name = settings.STT_PROVIDER
    if not name:
        return None
    try:
        path = PROVIDERS[name]
    except KeyError:
        raise STTError(f"unknown STT provider {name!r}") from None
    cls = import_string(path)
    return cls.from_settings() if hasattr(cls, "from_settings") else cls()
