"""The speech-to-text backends: the OpenAI-compatible transcriber against a
local transcription server that parses its multipart requests, and the
in-memory one."""

import socket
import time

import pytest

from bots.stt import STTError, get_transcriber
from bots.stt import locmem as stt_locmem
from bots.stt.locmem import LocmemTranscriber
from bots.stt.openai_compatible import OpenAICompatibleTranscriber

API_KEY = "sk-test-secret-0123456789"
# Not a real Ogg file: the bytes only have to arrive intact, CR and LF included.
AUDIO = b"OggS\x00\x02" + bytes(range(256)) + b"\r\n--\r\n\r\rtail\n"


@pytest.fixture
def sleeps():
    """The pauses the transcriber took before retrying (none are really waited)."""
    return []


@pytest.fixture
def stt_settings(settings, stt_server):
    settings.STT_PROVIDER = "openai"
    settings.STT_BASE_URL = stt_server.url
    settings.STT_MODEL = "whisper-test"
    settings.STT_API_KEY = API_KEY
    settings.STT_LANGUAGE = "ru"
    settings.STT_TIMEOUT_S = 5.0
    return settings


@pytest.fixture
def transcriber(stt_settings, sleeps):
    return OpenAICompatibleTranscriber.from_settings(sleep=sleeps.append)


def transcribe(transcriber, audio=AUDIO, **kwargs):
    kwargs = {"filename": "voice.ogg", "mime_type": "audio/ogg", **kwargs}
    return transcriber.transcribe(audio, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What is sent


def test_audio_is_sent_as_the_file_part(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?")

    transcribe(transcriber)

    file = stt_server.requests[0]["file"]
    assert (file["name"], file["filename"], file["content_type"]) == ("file", "voice.ogg", "audio/ogg")
    assert file["data"] == AUDIO


def test_model_language_and_json_format_are_form_fields(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?")

    transcribe(transcriber)

    assert stt_server.requests[0]["fields"] == {"model": "whisper-test", "language": "ru", "response_format": "json"}


def test_file_without_mime_type_is_sent_as_octet_stream(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?")

    transcribe(transcriber, mime_type="")

    assert stt_server.requests[0]["file"]["content_type"] == "application/octet-stream"


def test_request_goes_to_audio_transcriptions_under_the_base_url(stt_settings, stt_server):
    stt_settings.STT_BASE_URL = stt_server.url + "/"
    stt_server.reply_text("Есть креветки?")

    transcribe(get_transcriber())

    assert stt_server.requests[0]["path"] == "/v1/audio/transcriptions"


def test_language_argument_replaces_the_setting(transcriber, stt_server):
    stt_server.reply_text("Do you have shrimps?")

    transcribe(transcriber, language="en")

    assert stt_server.requests[0]["fields"]["language"] == "en"


def test_empty_language_is_left_to_the_model(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?")

    transcribe(transcriber, language="")

    assert "language" not in stt_server.requests[0]["fields"]


def test_key_is_sent_as_bearer(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?")

    transcribe(transcriber)

    assert stt_server.requests[0]["headers"]["authorization"] == f"Bearer {API_KEY}"


def test_no_authorization_header_without_a_key(stt_settings, stt_server):
    # Self-hosted faster-whisper and whisper.cpp servers take no key.
    stt_settings.STT_API_KEY = ""
    stt_server.reply_text("Есть креветки?")

    transcribe(get_transcriber())

    assert "authorization" not in stt_server.requests[0]["headers"]


def test_user_agent_names_the_bot(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?")

    transcribe(transcriber)

    assert stt_server.requests[0]["headers"]["user-agent"] == "storebot/0.1"


def test_empty_audio_is_an_stt_error_without_a_request(transcriber, stt_server):
    with pytest.raises(STTError, match="no audio"):
        transcribe(transcriber, audio=b"")

    assert stt_server.requests == []


# What comes back


def test_json_answer_is_the_stripped_text_with_the_model(transcriber, stt_server):
    stt_server.reply_text(" Есть креветки?\n")

    transcript = transcribe(transcriber)

    assert (transcript.text, transcript.model, transcript.duration_s) == ("Есть креветки?", "whisper-test", None)


def test_plain_text_answer_is_read_as_utf8(transcriber, stt_server):
    # No charset: requests alone would decode it as ISO-8859-1.
    stt_server.reply_plain("Почём кальмары?\n", content_type="text/plain")

    assert transcribe(transcriber).text == "Почём кальмары?"


def test_plain_text_answer_starting_with_a_brace_is_kept(transcriber, stt_server):
    stt_server.reply_plain("{смех} Почём кальмары?")

    assert transcribe(transcriber).text == "{смех} Почём кальмары?"


def test_duration_is_read_from_verbose_json(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?", duration=3.5)

    assert transcribe(transcriber).duration_s == 3.5


def test_duration_is_read_from_openai_usage(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?", usage={"type": "duration", "seconds": 4})

    assert transcribe(transcriber).duration_s == 4.0


def test_model_named_by_the_server_is_kept(transcriber, stt_server):
    stt_server.reply_text("Есть креветки?", model="Systran/faster-whisper-small")

    assert transcribe(transcriber).model == "Systran/faster-whisper-small"


def test_empty_transcript_is_an_stt_error(transcriber, stt_server):
    # What Whisper makes of silence or wind.
    stt_server.reply_text("  \n")

    with pytest.raises(STTError, match="empty transcript"):
        transcribe(transcriber)


def test_unreadable_json_is_an_stt_error(transcriber, stt_server):
    stt_server.reply_raw('{"text": "Есть кре'.encode(), content_type="application/json")

    with pytest.raises(STTError, match="unreadable"):
        transcribe(transcriber)


def test_json_without_text_is_an_stt_error(transcriber, stt_server):
    stt_server.reply_json({"segments": []})

    with pytest.raises(STTError, match="unreadable"):
        transcribe(transcriber)


def test_html_page_is_an_stt_error(transcriber, stt_server):
    stt_server.reply_raw(b"<html><body>Please log in</body></html>", content_type="text/html")

    with pytest.raises(STTError, match="unreadable"):
        transcribe(transcriber)


# Errors and the retry


def test_server_error_then_success_is_retried_once(transcriber, stt_server, sleeps):
    stt_server.reply_error(500)
    stt_server.reply_text("Со второго раза.")

    assert transcribe(transcriber).text == "Со второго раза."
    assert len(stt_server.requests) == 2
    [pause] = sleeps
    assert 0.5 <= pause <= 1.0  # the backoff, with jitter


def test_server_error_twice_is_an_stt_error_after_one_retry(transcriber, stt_server):
    stt_server.reply_error(503)
    stt_server.reply_error(503)

    with pytest.raises(STTError, match="HTTP 503"):
        transcribe(transcriber)

    assert len(stt_server.requests) == 2


def test_rate_limit_waits_as_asked_before_the_retry(transcriber, stt_server, sleeps):
    stt_server.reply_error(429, code="rate_limit_exceeded", retry_after="2")
    stt_server.reply_text("Дождались.")

    assert transcribe(transcriber).text == "Дождались."
    assert sleeps == [2.0]


def test_a_rate_limit_asking_for_a_long_wait_is_not_waited_for(transcriber, stt_server, sleeps):
    # The customer is waiting: past a few seconds they get the polite reply instead.
    stt_server.reply_error(429, retry_after="120")

    with pytest.raises(STTError, match="HTTP 429"):
        transcribe(transcriber)

    assert (sleeps, len(stt_server.requests)) == ([], 1)


def test_dropped_connection_then_success_is_retried_once(transcriber, stt_server, sleeps):
    stt_server.reply_disconnect()
    stt_server.reply_text("Со второго раза.")

    assert transcribe(transcriber).text == "Со второго раза."
    assert len(stt_server.requests) == 2


def test_refused_connection_is_an_stt_error_after_one_retry(stt_settings, sleeps):
    stt_settings.STT_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    transcriber = OpenAICompatibleTranscriber.from_settings(sleep=sleeps.append)

    with pytest.raises(STTError, match="could not connect"):
        transcribe(transcriber)

    assert len(sleeps) == 1


def test_refused_key_is_an_stt_error_without_the_key(transcriber, stt_server):
    # Servers do quote the key they refused.
    stt_server.reply_error(401, f"Incorrect API key provided: {API_KEY}", code="invalid_api_key")

    with pytest.raises(STTError) as excinfo:
        transcribe(transcriber)

    assert str(excinfo.value) == "STT API answered HTTP 401 (invalid_api_key)"
    assert len(stt_server.requests) == 1  # a refused key is not retried


def test_error_code_that_is_free_text_is_not_quoted(transcriber, stt_server):
    stt_server.reply_error(400, code=f"bad key {API_KEY[:10]}...")

    with pytest.raises(STTError) as excinfo:
        transcribe(transcriber)

    assert str(excinfo.value) == "STT API answered HTTP 400"


def test_timeout_is_an_stt_error_and_not_retried(stt_settings, stt_server, sleeps):
    stt_settings.STT_TIMEOUT_S = 0.5
    transcriber = OpenAICompatibleTranscriber.from_settings(sleep=sleeps.append)
    stt_server.reply_delay(5)

    started = time.monotonic()
    with pytest.raises(STTError, match="timed out"):
        transcribe(transcriber)

    assert time.monotonic() - started < 3  # the 0.5 s timeout, not the 5 s answer
    assert len(stt_server.requests) == 1


# Choosing the backend


def test_empty_provider_means_stt_is_off(settings):
    assert get_transcriber("") is None


def test_provider_defaults_to_the_setting(settings):
    settings.STT_PROVIDER = ""

    assert get_transcriber() is None


def test_provider_setting_picks_the_backend(settings):
    settings.STT_PROVIDER = "locmem"

    assert isinstance(get_transcriber(), LocmemTranscriber)


def test_openai_backend_is_configured_from_settings(stt_settings, stt_server):
    transcriber = get_transcriber("openai")

    assert isinstance(transcriber, OpenAICompatibleTranscriber)
    assert (transcriber.model, transcriber.language) == ("whisper-test", "ru")


def test_unknown_provider_is_an_stt_error(settings):
    with pytest.raises(STTError, match="unknown STT provider 'yandex'"):
        get_transcriber("yandex")


# In memory


@pytest.fixture
def locmem(settings):
    settings.STT_LANGUAGE = "ru"
    stt_locmem.script.clear()
    stt_locmem.requests.clear()
    yield stt_locmem
    stt_locmem.script.clear()
    stt_locmem.requests.clear()


def test_locmem_answers_the_script_in_order(locmem):
    locmem.script.extend(["Есть креветки?", "А кальмары?"])
    transcriber = get_transcriber("locmem")

    texts = [transcribe(transcriber).text, transcribe(transcriber).text]

    assert texts == ["Есть креветки?", "А кальмары?"]


def test_locmem_records_each_request(locmem):
    locmem.script.append("Есть креветки?")

    transcribe(get_transcriber("locmem"), filename="voice.oga", mime_type="audio/ogg")

    assert locmem.requests == [
        {"filename": "voice.oga", "mime_type": "audio/ogg", "language": "ru", "size": len(AUDIO)}
    ]


def test_locmem_raises_a_scripted_error(locmem):
    locmem.script.append(STTError("STT API timed out"))

    with pytest.raises(STTError, match="timed out"):
        transcribe(get_transcriber("locmem"))


def test_locmem_without_a_script_is_an_stt_error(locmem):
    with pytest.raises(STTError, match="no scripted answer"):
        transcribe(get_transcriber("locmem"))
