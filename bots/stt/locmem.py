"""An in-memory transcriber, like Django's locmem mail backend: it answers with
scripted texts and records every request, for tests of the voice pipeline."""

from django.conf import settings

from bots.stt.base import STTError, Transcriber, Transcript

# Scripted transcripts, consumed in order; an STTError instance is raised instead.
script: list[str | STTError] = []
# Every request: filename, mime_type, language and size (the audio itself is not kept).
requests: list[dict] = []


class LocmemTranscriber(Transcriber):
    name = "locmem"

    def transcribe(self, audio, *, filename, mime_type="", language=None) -> Transcript:
        requests.append(
            {
                "filename": filename,
                "mime_type": mime_type,
                "language": settings.STT_LANGUAGE if language is None else language,
                "size": len(audio),
            }
        )
        if not script:
            raise STTError("locmem transcriber has no scripted answer left")
        answer = script.pop(0)
        if isinstance(answer, STTError):
            raise answer
        return Transcript(text=answer, model="locmem")
