"""Voice messages and media before the assistant answers (integrations.voice), on
the worker's real path (integrations.tasks.answer): the recording fetched from
the channel (LocmemSender reads conversations.channels.media), transcribed by
the OpenAI-compatible transcriber over real HTTP to a local server, answered
from the demo catalog; and the polite replies when that cannot be done."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from bots.models import AssistantSettings
from conversations import channels
from conversations.channels import DeliveryError, LocmemSender, MediaFile
from conversations.models import Message
from conversations.services import record_incoming
from integrations import voice
from integrations.tasks import answer, sweep_unanswered, unanswered_messages
from tests.factories import make_conversation

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")

# Not a real Ogg file: the bytes only have to arrive intact.
AUDIO = b"OggS\x00\x02" + bytes(range(256)) + b"\r\n--tail\n"
QUESTION = "Какая икра есть в наличии?"


@pytest.fixture(autouse=True)
def media():
    channels.media.clear()
    yield channels.media
    channels.media.clear()


@pytest.fixture
def stt(settings, stt_server):
    settings.STT_PROVIDER = "openai"
    settings.STT_BASE_URL = stt_server.url
    settings.STT_MODEL = "whisper-test"
    settings.STT_API_KEY = ""
    settings.STT_TIMEOUT_S = 5.0
    settings.STT_RETRY_BACKOFF_S = 0  # the one retry happens, without its pause
    settings.STT_MAX_SECONDS = 300
    settings.STT_MAX_BYTES = 1024 * 1024
    return stt_server


@pytest.fixture
def dialog(db):
    return make_conversation("telegram")


def voice_message(conversation, *, text="", file_id="voice-1", kind="voice", **extra):
    attachment = {"kind": kind, "file_id": file_id, "mime_type": "audio/ogg", "duration": 4, **extra}
    message, _created = record_incoming(conversation=conversation, text=text, attachments=[attachment])
    return message


def put_audio(file_id="voice-1", content=AUDIO, filename="", mime_type="audio/ogg"):
    channels.media[file_id] = MediaFile(content=content, filename=filename, mime_type=mime_type)


def texts():
    return AssistantSettings.load()


class FlakyLocmem(LocmemSender):
    """Refuses the first send, as a rate-limited channel would."""

    refusals = 0

    def send(self, message) -> str:
        if FlakyLocmem.refusals > 0:
            FlakyLocmem.refusals -= 1
            raise DeliveryError("QUERY_LIMIT_EXCEEDED")
        return super().send(message)


# Transcribed and answered -----------------------------------------------------


def test_voice_is_transcribed_and_answered_from_the_catalog(dialog, stt, locmem_channels):
    stt.reply_text(QUESTION)
    put_audio()
    message = voice_message(dialog)

    assert answer(message.pk) == "sent"

    message.refresh_from_db()
    assert message.transcript == QUESTION
    assert message.text == ""  # what the customer sent is kept as it was
    [request] = stt.requests
    assert request["file"]["data"] == AUDIO
    assert request["file"]["filename"] == "voice.ogg"  # Telegram's voice has no name: one with an extension
    assert request["file"]["content_type"] == "audio/ogg"
    [sent] = locmem_channels.outbox
    assert "Икра" in sent.text
    reply = message.replies.get()
    assert reply.reply_kind == Message.ReplyKind.CATALOG
    assert reply.products.exists()


def test_the_channels_file_name_is_what_the_server_gets(dialog, stt):
    stt.reply_text(QUESTION)
    put_audio(filename="Запись.m4a", mime_type="audio/mp4")
    message = voice_message(dialog)

    answer(message.pk)

    assert stt.requests[0]["file"]["filename"] == "Запись.m4a"


def test_audio_sent_as_a_document_is_transcribed(dialog, stt, locmem_channels):
    stt.reply_text(QUESTION)
    put_audio(file_id="doc-1")
    message = voice_message(dialog, kind="document", file_id="doc-1", mime_type="audio/mpeg", file_name="вопрос.mp3")

    answer(message.pk)

    assert Message.objects.get(pk=message.pk).transcript == QUESTION
    assert stt.requests[0]["file"]["filename"] == "вопрос.mp3"
    assert "Икра" in locmem_channels.outbox[0].text


def test_a_transcript_asking_for_a_person_hands_the_dialog_off(dialog, stt, locmem_channels):
    stt.reply_text("Позовите оператора, пожалуйста")
    put_audio()
    message = voice_message(dialog)

    answer(message.pk)

    assert message.replies.get().reply_kind == Message.ReplyKind.HANDOFF
    assert len(locmem_channels.handoffs) == 1


# Not transcribed: the polite replies -------------------------------------------


def assert_polite_reply(message, text, *, error_part=""):
    reply = message.replies.get()
    assert reply.text == text
    assert reply.reply_kind == Message.ReplyKind.FALLBACK
    assert reply.delivery_state == Message.Delivery.SENT
    assert error_part in reply.llm_error
    assert Message.objects.get(pk=message.pk).transcript == ""
    return reply


def test_stt_server_errors_get_the_polite_reply_and_are_not_retried(dialog, stt, locmem_channels):
    stt.reply_error(500)
    stt.reply_error(503)  # the transcriber's one retry
    put_audio()
    message = voice_message(dialog)

    assert answer(message.pk) == "sent"

    assert len(stt.requests) == 2
    assert_polite_reply(message, texts().voice_failed_text, error_part="HTTP 503")
    assert [m.text for m in locmem_channels.outbox] == [texts().voice_failed_text]
    # Answered: the sweep leaves it alone and no retry is scheduled.
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert not unanswered_messages().filter(pk=message.pk).exists()
    assert sweep_unanswered() == 0
    assert not Schedule.objects.filter(func="integrations.tasks.answer").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_stt_server_out_of_reach_gets_the_polite_reply(dialog, stt, settings, locmem_channels):
    settings.STT_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    put_audio()
    message = voice_message(dialog)

    assert answer(message.pk) == "sent"

    assert_polite_reply(message, texts().voice_failed_text, error_part="could not connect")
    assert len(locmem_channels.outbox) == 1


def test_stt_off_gets_the_polite_reply(dialog, settings, locmem_channels):
    settings.STT_PROVIDER = ""
    put_audio()
    message = voice_message(dialog)

    assert answer(message.pk) == "sent"

    assert_polite_reply(message, texts().voice_failed_text, error_part="off")


def test_a_recording_too_long_is_not_fetched_nor_transcribed(dialog, stt, settings, media):
    settings.STT_MAX_SECONDS = 60
    message = voice_message(dialog, duration=61)  # the file is not even there: it is not fetched

    assert answer(message.pk) == "sent"

    assert_polite_reply(message, texts().voice_too_long_text, error_part="STT_MAX_SECONDS")
    assert stt.requests == []


def test_a_file_too_large_gets_the_too_long_reply(dialog, stt, settings):
    settings.STT_MAX_BYTES = 1000
    message = voice_message(dialog, duration=None, file_size=5000)

    answer(message.pk)

    assert_polite_reply(message, texts().voice_too_long_text, error_part="STT_MAX_BYTES")
    assert stt.requests == []


def test_a_file_the_channel_cannot_give_gets_the_polite_reply(dialog, stt):
    message = voice_message(dialog)  # nothing in channels.media

    assert answer(message.pk) == "sent"

    assert_polite_reply(message, texts().voice_failed_text, error_part="no such file")
    assert stt.requests == []


def test_an_empty_transcript_gets_the_polite_reply(dialog, stt):
    stt.reply_text("  ")
    put_audio()
    message = voice_message(dialog)

    answer(message.pk)

    assert_polite_reply(message, texts().voice_failed_text, error_part="empty transcript")


def test_a_recording_with_a_caption_is_answered_from_the_caption_when_not_transcribed(dialog, settings):
    settings.STT_PROVIDER = ""
    put_audio()
    message = voice_message(dialog, text=QUESTION)

    answer(message.pk)

    reply = message.replies.get()
    assert reply.reply_kind == Message.ReplyKind.CATALOG
    assert "Икра" in reply.text


def test_the_polite_texts_are_the_ones_in_the_settings(dialog, settings, locmem_channels):
    settings.STT_PROVIDER = ""
    config = AssistantSettings.load()
    config.voice_failed_text = "Не расслышали, напишите текстом."
    config.save()
    message = voice_message(dialog)

    answer(message.pk)

    assert locmem_channels.outbox[0].text == "Не расслышали, напишите текстом."


# Transcribed once ---------------------------------------------------------------


def test_a_retried_task_does_not_transcribe_again(dialog, stt, settings, locmem_channels):
    settings.CHANNEL_SENDERS = {"*": f"{__name__}.FlakyLocmem"}
    FlakyLocmem.refusals = 1
    stt.reply_text(QUESTION)
    put_audio()
    message = voice_message(dialog)

    assert answer(message.pk) == "retry"
    assert answer(message.pk) == "sent"

    assert len(stt.requests) == 1
    assert len(locmem_channels.outbox) == 1
    assert message.replies.count() == 1


def test_a_stored_transcript_is_reused_when_the_worker_died_before_replying(dialog, stt, locmem_channels):
    message = voice_message(dialog)
    Message.objects.filter(pk=message.pk).update(transcript=QUESTION)  # transcribed, then the worker was lost

    assert answer(message.pk) == "sent"

    assert stt.requests == []
    assert "Икра" in locmem_channels.outbox[0].text


# Other media ----------------------------------------------------------------------


def test_a_sticker_gets_the_media_text(dialog, stt, locmem_channels):
    message, _ = record_incoming(
        conversation=dialog,
        text="",
        attachments=[{"kind": "sticker", "file_id": "st-1", "mime_type": "image/webp", "emoji": "👍"}],
    )

    assert answer(message.pk) == "sent"

    reply = message.replies.get()
    assert (reply.text, reply.reply_kind) == (texts().media_text, Message.ReplyKind.FALLBACK)
    assert stt.requests == []


@pytest.mark.parametrize("kind", ["photo", "document", "video", "other"])
def test_media_without_text_gets_the_media_text(dialog, kind):
    message, _ = record_incoming(conversation=dialog, text="", attachments=[{"kind": kind, "file_id": "f-1"}])

    answer(message.pk)

    assert message.replies.get().text == texts().media_text


def test_a_photo_with_a_caption_is_answered_from_the_caption(dialog, stt, locmem_channels):
    message, _ = record_incoming(
        conversation=dialog,
        text=QUESTION,
        attachments=[{"kind": "photo", "file_id": "ph-1", "mime_type": "image/jpeg"}],
    )

    assert answer(message.pk) == "sent"

    reply = message.replies.get()
    assert reply.reply_kind == Message.ReplyKind.CATALOG
    assert "Икра" in locmem_channels.outbox[0].text
    assert stt.requests == []


def test_plain_text_is_left_to_the_assistant(dialog):
    message, _ = record_incoming(conversation=dialog, text=QUESTION)

    assert voice.prepare(message) is None


def test_an_operators_dialog_is_not_transcribed(dialog, stt):
    from conversations.services import take_over

    put_audio()
    message = voice_message(dialog)
    take_over(conversation=dialog, operator=None)
    message.conversation.refresh_from_db()

    assert voice.prepare(message) is None
    assert stt.requests == []


@pytest.mark.parametrize(
    ("name", "mime_type", "expected"),
    [
        ("", "audio/ogg", "voice.ogg"),
        ("", "audio/mpeg", "voice.mp3"),
        ("", "", "voice.ogg"),
        ("../../etc/passwd", "audio/ogg", "passwd.ogg"),
        ("Запись 1.m4a", "audio/mp4", "Запись 1.m4a"),
        ("file_12.oga", "audio/ogg", "file_12.ogg"),  # Telegram's voice: Ogg Opus by a name servers know
    ],
)
def test_audio_file_names_are_safe_and_have_an_extension(name, mime_type, expected):
    assert voice.audio_filename(name, mime_type, {"kind": "voice"}) == expected
