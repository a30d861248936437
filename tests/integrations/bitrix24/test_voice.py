"""Bitrix24 voice messages through the whole path: the recorded event with a
file and no text accepted by the webhook, the file's link asked from Bitrix24's
REST API and downloaded (stubbed with `responses`), the audio transcribed by the
local OpenAI-compatible server over real HTTP, the transcript answered from the
demo catalog with imbot.message.add.

fixtures/message_add_voice.txt is message_add.txt with an empty MESSAGE and
one file. Its data[PARAMS][FILES] entry has the shape Bitrix24's messenger gives
a chat file, CIMDisk::GetFileParams in the `im` module (keyed by the Drive file
id: id, chatId, date, type, name, extension, size, image, status, progress,
authorId, authorName, urlPreview, urlShow, urlDownload, viewerAttrs), with the
message's data[PARAMS][PARAMS][FILE_ID] as CIMMessenger::Add passes it on;
PHP's http_build_query writes false as 0 and drops nulls.
"""

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import responses
from django_q.conf import Conf

from bots.models import AssistantSettings
from conversations.channels import DeliveryError
from conversations.models import Message
from integrations.bitrix24.events import BadEvent, parse_event, parse_form, to_incoming
from integrations.bitrix24.models import Portal
from integrations.bitrix24.sender import Bitrix24Sender
from tests.factories import make_conversation

pytestmark = pytest.mark.usefixtures("demo_store")

FIXTURES = Path(__file__).parent / "fixtures"
APP_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"
MEMBER = "5f0c6a9e2b3d4c1a8e7f6d5c4b3a2918"
WEBHOOK = "https://portal.example/rest/1/secret123/"
PORTAL_REST = "https://seafood-shop.bitrix24.ru/rest/"
# disk.file.get's link carries its own token; it must never be logged or stored.
DOWNLOAD_TOKEN = "disk%7CaWQ9MTc1NSZfPTRmZWRkMzE2c2VjcmV0"
DOWNLOAD_URL = f"https://portal.example/rest/download.json?auth=dl0acc3ss0t0ken&token={DOWNLOAD_TOKEN}"
AUDIO = b"\x1aE\xdf\xa3webm-audio" + bytes(range(200))
QUESTION = "Какая икра есть в наличии?"


class FastSender(Bitrix24Sender):
    """The real sender, its client retrying without sleeping."""

    client_options = {"backoff": 0}


@pytest.fixture(autouse=True)
def bitrix(settings, monkeypatch, stt_server):
    settings.B24_APPLICATION_TOKEN = APP_TOKEN
    settings.B24_WEBHOOK_URL = WEBHOOK
    settings.B24_RATE_LIMIT_PER_S = 0  # no waiting in tests
    settings.CHANNEL_SENDERS = {"bitrix24": f"{__name__}.FastSender"}
    settings.STT_PROVIDER = "openai"
    settings.STT_BASE_URL = stt_server.url
    settings.STT_API_KEY = ""
    settings.STT_TIMEOUT_S = 5.0
    settings.STT_MAX_BYTES = 1024 * 1024
    settings.STT_RETRY_BACKOFF_S = 0
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def portal(stt_server):
    """Bitrix24 stubbed; the local STT server is reached for real."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(stt_server.url)
        yield mock


def event(name: str = "message_add_voice.txt", **fields) -> bytes:
    pairs = parse_qsl((FIXTURES / name).read_text().strip(), keep_blank_values=True)
    return urlencode([(k, fields.get(k, v)) for k, v in pairs if fields.get(k, v) is not None]).encode()


def post(client, data: bytes):
    return client.post("/b24/imbot/events", data=data, content_type="application/x-www-form-urlencoded")


def calls(mock, method: str) -> list[dict]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url.split("?")[0].endswith(f"/{method}.json")]


def stub_link(mock, base=WEBHOOK, url=DOWNLOAD_URL):
    mock.post(f"{base}disk.file.get.json", json={"result": {"ID": 1755, "NAME": "x.webm", "DOWNLOAD_URL": url}})


def stub_reply(mock, base=WEBHOOK):
    mock.post(f"{base}imbot.message.add.json", json={"result": 700})


def config():
    return AssistantSettings.load()


# The event --------------------------------------------------------------------


def test_a_file_without_text_is_a_message_with_a_voice_attachment():
    incoming = to_incoming(parse_event(parse_form(event())))

    assert incoming.text == ""
    assert incoming.message_id == f"{MEMBER}:33905"
    [attachment] = incoming.attachments
    assert attachment == {
        "kind": "voice",
        "file_id": "1755",
        "mime_type": "audio/webm",
        "file_name": "Голосовое сообщение.webm",
        "b24_type": "audio",
        "extension": "webm",
        "file_size": 18244,
        "chat_id": "2737",
    }


def file_fields(*, b24_type: str, name: str, extension: str, viewer_type: str | None) -> dict:
    """The fixture's file changed: its type, name and extension, and the viewer's type (None: no viewer)."""
    prefix = "data[PARAMS][FILES][1755]"
    return {
        f"{prefix}[type]": b24_type,
        f"{prefix}[name]": name,
        f"{prefix}[extension]": extension,
        f"{prefix}[viewerAttrs][viewerType]": viewer_type,
    }


@pytest.mark.parametrize(
    ("b24_type", "name", "extension", "viewer_type", "kind", "mime_type"),
    [
        ("file", "voice.oga", "oga", None, "voice", "audio/ogg"),  # by its extension alone
        ("file", "запись", "", "audio", "voice", "audio/ogg"),  # by the viewer alone
        ("audio", "song.mp3", "mp3", "audio", "voice", "audio/mpeg"),
        ("file", "Прайс.pdf", "pdf", "document", "document", "application/pdf"),
        ("image", "фото.jpg", "jpg", "image", "photo", "image/jpeg"),
    ],
)
def test_files_are_audio_by_type_viewer_or_extension(b24_type, name, extension, viewer_type, kind, mime_type):
    changes = file_fields(b24_type=b24_type, name=name, extension=extension, viewer_type=viewer_type)

    [attachment] = to_incoming(parse_event(parse_form(event(**changes)))).attachments

    assert (attachment["kind"], attachment["mime_type"]) == (kind, mime_type)


def test_files_as_json_are_read_too():
    payload = parse_form(event())
    payload["data"]["PARAMS"]["FILES"] = {"1755": {**payload["data"]["PARAMS"]["FILES"]["1755"], "size": 18244}}

    [attachment] = to_incoming(parse_event(payload)).attachments

    assert attachment["file_size"] == 18244


def test_an_empty_message_without_files_is_still_refused():
    payload = parse_form(event())
    del payload["data"]["PARAMS"]["FILES"]

    with pytest.raises(BadEvent, match="empty"):
        parse_event(payload)


def test_a_file_without_a_drive_id_is_no_attachment():
    with pytest.raises(BadEvent, match="empty"):
        parse_event(parse_form(event(**{"data[PARAMS][FILES][1755][id]": "0"})))


# Transcribed and answered ----------------------------------------------------------


def test_voice_message_is_fetched_transcribed_and_answered(client, portal, stt_server):
    stt_server.reply_text(QUESTION)
    stub_link(portal)
    portal.get(DOWNLOAD_URL, body=AUDIO, content_type="audio/webm")
    stub_reply(portal)

    response = post(client, event())

    assert response.status_code == 200
    assert calls(portal, "disk.file.get") == [{"id": 1755}]
    [request] = stt_server.requests
    assert request["file"]["data"] == AUDIO
    assert request["file"]["filename"] == "Голосовое сообщение.webm"
    [reply] = calls(portal, "imbot.message.add")
    assert reply["DIALOG_ID"] == "1269"
    assert "Икра" in reply["MESSAGE"]
    message = Message.objects.get(author=Message.Author.CUSTOMER)
    assert (message.text, message.transcript) == ("", QUESTION)
    assert message.attachments[0]["file_id"] == "1755"
    bot = Message.objects.get(author=Message.Author.BOT)
    assert (bot.delivery_state, bot.reply_kind) == (Message.Delivery.SENT, Message.ReplyKind.CATALOG)


def test_an_installed_app_asks_the_bot_method_for_the_link(client, portal, stt_server, settings):
    settings.B24_CLIENT_ID, settings.B24_CLIENT_SECRET = "local.app", "app-secret"
    Portal.objects.create(
        member_id=MEMBER,
        domain="seafood-shop.bitrix24.ru",
        client_endpoint=PORTAL_REST,
        application_token=APP_TOKEN,
        access_token="app-access",
        refresh_token="app-refresh",
    )
    link = "https://seafood-shop.bitrix24.ru/rest/download.json?token=imbot%7CaW1ib3Q"
    portal.post(f"{PORTAL_REST}imbot.v2.File.download.json", json={"result": {"downloadUrl": link}})
    portal.get(link, body=AUDIO, content_type="application/octet-stream")
    stub_reply(portal, PORTAL_REST)
    stt_server.reply_text(QUESTION)

    post(client, event())

    [asked] = calls(portal, "imbot.v2.File.download")
    assert (asked["botId"], asked["fileId"], asked["auth"]) == (1291, 1755, "app-access")
    assert calls(portal, "disk.file.get") == []
    assert stt_server.requests[0]["file"]["data"] == AUDIO
    assert "Икра" in calls(portal, "imbot.message.add")[0]["MESSAGE"]


def test_a_refused_bot_method_falls_back_to_drive(client, portal, stt_server, settings):
    Portal.objects.create(
        member_id=MEMBER, domain="seafood-shop.bitrix24.ru", client_endpoint=PORTAL_REST, access_token="app-access"
    )
    portal.post(
        f"{PORTAL_REST}imbot.v2.File.download.json",
        status=404,
        json={"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
    )
    link = "https://seafood-shop.bitrix24.ru/rest/download.json?token=disk%7CaW1ib3Q"
    stub_link(portal, PORTAL_REST, link)
    portal.get(link, body=AUDIO, content_type="audio/webm")
    stub_reply(portal, PORTAL_REST)
    stt_server.reply_text(QUESTION)

    post(client, event())

    assert len(calls(portal, "disk.file.get")) == 1
    assert Message.objects.get(author=Message.Author.CUSTOMER).transcript == QUESTION


# Not the audio: the polite reply ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<!DOCTYPE html><html><body>Authorization</body></html>", "text/html; charset=UTF-8"),
        (b"\n  <html><head><title>Bitrix24</title></head></html>", "application/octet-stream"),
        (b'{"error": "invalid_token"}', "application/json"),
    ],
    ids=["html-page", "html-as-octet-stream", "json-error"],
)
def test_a_page_instead_of_the_audio_gets_the_polite_reply(client, portal, stt_server, body, content_type):
    stub_link(portal)
    portal.get(DOWNLOAD_URL, body=body, content_type=content_type)
    stub_reply(portal)

    response = post(client, event())

    assert response.status_code == 200
    assert stt_server.requests == []  # nothing sent to be transcribed
    assert calls(portal, "imbot.message.add")[0]["MESSAGE"] == config().voice_failed_text
    message = Message.objects.get(author=Message.Author.CUSTOMER)
    assert message.transcript == ""
    bot = message.replies.get()
    assert bot.reply_kind == Message.ReplyKind.FALLBACK
    assert "not the file" in bot.llm_error


def test_a_download_that_fails_keeps_its_token_out_of_the_error(client, portal, stt_server, caplog):
    stub_link(portal)  # the download itself is not stubbed: the connection fails
    stub_reply(portal)

    post(client, event())

    bot = Message.objects.get(author=Message.Author.BOT)
    assert bot.text == config().voice_failed_text
    assert "ConnectionError" in bot.llm_error
    for secret in ("dl0acc3ss0t0ken", DOWNLOAD_TOKEN, "secret123"):
        assert secret not in bot.llm_error
        assert secret not in caplog.text


def test_a_link_off_the_portal_is_not_fetched(client, portal, stt_server):
    stub_link(portal, url="https://elsewhere.example/steal?x=1")
    stub_reply(portal)

    post(client, event())

    assert not [c for c in portal.calls if "elsewhere.example" in c.request.url]
    assert "not on the portal" in Message.objects.get(author=Message.Author.BOT).llm_error


def test_drive_access_refused_gets_the_polite_reply(client, portal, stt_server):
    portal.post(
        f"{WEBHOOK}disk.file.get.json",
        status=403,
        json={"error": "ACCESS_DENIED", "error_description": "Access denied"},
    )
    stub_reply(portal)

    post(client, event())

    bot = Message.objects.get(author=Message.Author.BOT)
    assert (bot.text, bot.delivery_state) == (config().voice_failed_text, Message.Delivery.SENT)
    assert "ACCESS_DENIED" in bot.llm_error


def test_a_document_without_text_gets_the_media_text(client, portal, stt_server):
    stub_reply(portal)
    post(client, event(**file_fields(b24_type="file", name="Прайс.pdf", extension="pdf", viewer_type="document")))

    assert calls(portal, "imbot.message.add")[0]["MESSAGE"] == config().media_text
    assert calls(portal, "disk.file.get") == []
    assert stt_server.requests == []


# The sender's download ---------------------------------------------------------------


@pytest.fixture
def voice_message(db):
    conversation = make_conversation(
        "bitrix24", external_id=f"{MEMBER}:1269", channel_data={"member_id": MEMBER, "dialog_id": "1269"}
    )
    return Message.objects.create(
        conversation=conversation,
        channel="bitrix24",
        direction=Message.Direction.IN,
        author=Message.Author.CUSTOMER,
        text="",
        attachments=[{"kind": "voice", "file_id": "1755", "mime_type": "audio/webm", "file_name": "v.webm"}],
    )


def test_fetch_media_stops_reading_past_the_limit(portal, voice_message):
    stub_link(portal)
    portal.get(DOWNLOAD_URL, body=AUDIO * 10, content_type="audio/webm")

    with pytest.raises(DeliveryError, match="larger than 100 bytes") as error:
        FastSender().fetch_media(voice_message, voice_message.attachments[0], max_bytes=100)

    assert error.value.permanent


def test_fetch_media_gives_the_file_with_its_name_and_type(portal, voice_message):
    stub_link(portal)
    portal.get(DOWNLOAD_URL, body=AUDIO, content_type="audio/webm")

    media = FastSender().fetch_media(voice_message, voice_message.attachments[0], max_bytes=10_000)

    assert (media.content, media.filename, media.mime_type) == (AUDIO, "v.webm", "audio/webm")


def test_fetch_media_refuses_an_attachment_without_a_drive_id(voice_message):
    with pytest.raises(DeliveryError, match="Drive file id"):
        FastSender().fetch_media(voice_message, {"kind": "voice"}, max_bytes=100)
