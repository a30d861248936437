import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import channels
from conversations.channels import ChannelSender, DeliveryError
from conversations.models import Conversation, Message
from conversations.services import close, take_over
from tests.factories import make_conversation, make_message, make_product

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/conversations/conversation/"


def page_url(conversation, action="change"):
    return f"{LIST_URL}{conversation.pk}/{action}/"


class RefusingSender(ChannelSender):
    """A channel that is down: every send fails."""

    def send(self, message) -> str:
        raise DeliveryError("HTTP 502 from the channel")

    def hand_off(self, conversation, reason: str) -> None:
        return None


@pytest.fixture(autouse=True)
def locmem_channels(settings):
    settings.CHANNEL_SENDERS = {"*": "conversations.channels.LocmemSender"}
    channels.outbox.clear()
    yield
    channels.outbox.clear()


@pytest.fixture
def viewer(client):
    """Staff who may read conversations but not act on them."""
    user = get_user_model().objects.create_user("viewer", password="a-long-password-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    client.force_login(user)
    return client


def state_label(state):
    return str(Conversation.State(state).label)


# The list ---------------------------------------------------------------------


def test_list_shows_customer_and_state(admin_client):
    conversation = make_conversation(customer_name="Анна Петрова")
    make_message(conversation, "Здравствуйте")

    content = admin_client.get(LIST_URL).content.decode()

    assert "Анна Петрова" in content
    assert state_label(Conversation.State.BOT) in content


def test_list_shows_customer_id_when_the_name_is_unknown(admin_client):
    make_conversation(customer_name="", customer_external_id="tg-5551234")

    content = admin_client.get(LIST_URL).content.decode()

    assert "tg-5551234" in content


def test_list_shows_message_count_and_last_message(admin_client):
    conversation = make_conversation()
    make_message(conversation, "Есть икра кеты?")
    make_message(conversation, "Да, есть в наличии.", author="bot")

    response = admin_client.get(LIST_URL)

    row = response.context["cl"].result_list[0]
    assert row.message_count == 2
    assert "Да, есть в наличии." in response.content.decode()


def test_list_puts_the_latest_activity_first(admin_client):
    older = make_conversation(customer_name="Анна")
    newer = make_conversation(customer_name="Борис")
    make_message(older, "Первый вопрос")
    make_message(newer, "Второй вопрос")
    make_message(older, "Ещё вопрос")

    response = admin_client.get(LIST_URL)

    assert list(response.context["cl"].result_list) == [older, newer]


def test_list_puts_conversations_without_messages_last(admin_client):
    silent = make_conversation(customer_name="Анна")
    talking = make_conversation(customer_name="Борис")
    make_message(talking, "Здравствуйте")

    response = admin_client.get(LIST_URL)

    assert list(response.context["cl"].result_list) == [talking, silent]


def test_search_finds_a_conversation_by_a_word_from_its_messages(admin_client):
    wanted = make_conversation(customer_name="Анна")
    make_message(wanted, "Сколько стоит нерка?")
    other = make_conversation(customer_name="Борис")
    make_message(other, "Когда доставка?")

    response = admin_client.get(LIST_URL, {"q": "нерка"})

    assert list(response.context["cl"].result_list) == [wanted]


def test_search_lists_a_conversation_once_when_several_messages_match(admin_client):
    conversation = make_conversation()
    make_message(conversation, "Есть нерка?")
    make_message(conversation, "Нерка есть, 100 г.", author="bot")

    response = admin_client.get(LIST_URL, {"q": "нерка"})

    assert list(response.context["cl"].result_list) == [conversation]
    assert response.context["cl"].result_list[0].message_count == 2


def test_list_filters_by_state(admin_client):
    make_conversation(customer_name="Анна")
    closed = make_conversation(customer_name="Борис")
    close(conversation=closed)

    response = admin_client.get(LIST_URL, {"state__exact": "closed"})

    assert list(response.context["cl"].result_list) == [closed]


def test_list_queries_do_not_grow_with_conversations(admin_client, django_user_model):
    def list_queries():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(LIST_URL).status_code == 200
        return len(queries)

    operator = django_user_model.objects.create_user("olga", is_staff=True)
    for _ in range(2):
        conversation = make_conversation()
        make_message(conversation)
        take_over(conversation=conversation, operator=operator)
    few = list_queries()
    for _ in range(5):
        conversation = make_conversation()
        make_message(conversation)
        take_over(conversation=conversation, operator=operator)

    assert list_queries() == few


# Bulk actions -----------------------------------------------------------------


def test_take_over_action_assigns_the_selected_conversations_to_me(admin_client, admin_user):
    conversation = make_conversation()

    admin_client.post(LIST_URL, {"action": "take_over_selected", "_selected_action": [conversation.pk]})

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.OPERATOR, admin_user)


def test_return_to_bot_action(admin_client, admin_user):
    conversation = make_conversation()
    take_over(conversation=conversation, operator=admin_user)

    admin_client.post(LIST_URL, {"action": "return_selected_to_bot", "_selected_action": [conversation.pk]})

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.BOT, None)


def test_close_action(admin_client):
    conversation = make_conversation()

    admin_client.post(LIST_URL, {"action": "close_selected", "_selected_action": [conversation.pk]})

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.CLOSED


# The conversation page --------------------------------------------------------


def test_transcript_shows_the_dialog_in_order_with_how_the_bot_answered(admin_client):
    product = make_product("Икра нерки, 250 г", price=990)
    conversation = make_conversation(customer_name="Анна")
    question = make_message(conversation, "Есть красная икра?")
    make_message(
        conversation, "Есть икра нерки.", author="bot", in_reply_to=question, reply_kind="catalog", products=[product]
    )

    content = admin_client.get(page_url(conversation)).content.decode()

    assert content.index("Есть красная икра?") < content.index("Есть икра нерки.")
    assert str(Message.ReplyKind.CATALOG.label) in content
    assert f'href="/admin/catalog/product/{product.pk}/change/"' in content
    assert "990&nbsp;₽" in content


def test_transcript_shows_llm_details_and_failures(admin_client):
    conversation = make_conversation()
    make_message(
        conversation,
        "Подберу вам икру.",
        author="bot",
        reply_kind="llm",
        llm_model="gpt-4o-mini",
        prompt_tokens=812,
        completion_tokens=64,
        duration_ms=1430,
        llm_error="timeout after 30 s, answered from the catalog",
    )

    content = admin_client.get(page_url(conversation)).content.decode()

    assert "gpt-4o-mini" in content
    assert "812" in content and "64" in content and "1430" in content
    assert "timeout after 30 s, answered from the catalog" in content


def test_transcript_shows_times_in_moscow_time(admin_client):
    conversation = make_conversation()
    message = make_message(conversation, "Добрый вечер")
    Message.objects.filter(pk=message.pk).update(created_at=datetime(2025, 3, 1, 19, 5, tzinfo=UTC))

    content = admin_client.get(page_url(conversation)).content.decode()

    assert "01.03.2025 22:05" in content


def test_transcript_shows_an_undelivered_reply_with_the_error(admin_client, settings):
    settings.CHANNEL_SENDERS = {"*": "tests.conversations.test_admin.RefusingSender"}
    conversation = make_conversation()

    admin_client.post(page_url(conversation, "reply"), {"text": "Сейчас уточню."})
    content = admin_client.get(page_url(conversation)).content.decode()

    assert str(Message.Delivery.FAILED.label) in content
    assert "HTTP 502 from the channel" in content


def test_transcript_queries_do_not_grow_with_messages(admin_client, admin_user):
    products = [make_product("Икра кеты", price=1690), make_product("Икра нерки", price=990)]
    conversation = make_conversation()

    def add_exchange():
        question = make_message(conversation, "Что есть из икры?")
        make_message(conversation, "Вот что есть.", author="bot", in_reply_to=question, products=products)
        make_message(conversation, "Уточню наличие.", author="operator", operator=admin_user)

    def page_queries():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(page_url(conversation)).status_code == 200
        return len(queries)

    add_exchange()
    few = page_queries()
    for _ in range(5):
        add_exchange()

    assert page_queries() == few


# Buttons on the page ----------------------------------------------------------


def test_take_over_button_makes_me_the_operator(admin_client, admin_user):
    conversation = make_conversation()

    response = admin_client.post(page_url(conversation, "take-over"))

    conversation.refresh_from_db()
    assert response["Location"] == page_url(conversation)
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.OPERATOR, admin_user)


def test_return_to_bot_button(admin_client, admin_user):
    conversation = make_conversation()
    admin_client.post(page_url(conversation, "take-over"))

    admin_client.post(page_url(conversation, "return-to-bot"))

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.BOT, None)


def test_close_button(admin_client):
    conversation = make_conversation()

    admin_client.post(page_url(conversation, "close"))

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.CLOSED


def test_buttons_do_nothing_on_get(admin_client):
    conversation = make_conversation()

    response = admin_client.get(page_url(conversation, "close"))

    conversation.refresh_from_db()
    assert response.status_code == 405
    assert conversation.state == Conversation.State.BOT


# The reply box ----------------------------------------------------------------


def test_operator_reply_is_recorded_and_sent_to_the_channel(admin_client, admin_user):
    conversation = make_conversation("telegram", external_id="tg-42")

    response = admin_client.post(page_url(conversation, "reply"), {"text": "  Добрый день! Икра будет завтра.  "})

    reply = conversation.messages.get()
    assert response["Location"] == page_url(conversation)
    assert (reply.author, reply.operator, reply.text) == ("operator", admin_user, "Добрый день! Икра будет завтра.")
    assert [(m.dialog, m.text) for m in channels.outbox] == [("tg-42", "Добрый день! Икра будет завтра.")]


def test_the_same_reply_box_submitted_twice_sends_once(admin_client):
    conversation = make_conversation("telegram", external_id="tg-42")
    page = admin_client.get(page_url(conversation)).content.decode()
    token = re.search(r'name="client_token" value="(\w+)"', page).group(1)

    for _ in range(2):
        admin_client.post(page_url(conversation, "reply"), {"text": "Икра будет завтра.", "client_token": token})

    assert [m.text for m in channels.outbox] == ["Икра будет завтра."]


def test_operator_reply_appears_in_the_transcript(admin_client):
    conversation = make_conversation()

    response = admin_client.post(page_url(conversation, "reply"), {"text": "Икра будет завтра."}, follow=True)

    assert "Икра будет завтра." in response.content.decode()


def test_operator_reply_in_the_command_line_channel_is_only_recorded(admin_client, settings):
    settings.CHANNEL_SENDERS = {"cli": "conversations.channels.NullSender", "*": "conversations.channels.LocmemSender"}
    conversation = make_conversation("cli")

    admin_client.post(page_url(conversation, "reply"), {"text": "Проверка"})

    assert conversation.messages.get().text == "Проверка"
    assert channels.outbox == []


def test_empty_reply_records_nothing(admin_client):
    conversation = make_conversation()

    response = admin_client.post(page_url(conversation, "reply"), {"text": "   "}, follow=True)

    assert not conversation.messages.exists()
    assert channels.outbox == []
    assert [m.level_tag for m in response.context["messages"]] == ["error"]


def test_staff_who_may_only_view_cannot_reply(viewer):
    conversation = make_conversation()

    response = viewer.post(page_url(conversation, "reply"), {"text": "Добрый день"})

    assert response.status_code == 403
    assert not conversation.messages.exists()


def test_staff_who_may_only_view_read_the_transcript_without_reply_box_or_buttons(viewer):
    conversation = make_conversation()
    make_message(conversation, "Есть икра кеты?")

    content = viewer.get(page_url(conversation)).content.decode()

    assert "Есть икра кеты?" in content
    assert 'name="text"' not in content
    assert "/take-over/" not in content


# Voice messages: the transcript and the recording ---------------------------------------

VOICE = b"OggS\x00\x02voice-bytes"


@pytest.fixture
def voice_file():
    channels.media.clear()
    channels.media["voice-7"] = channels.MediaFile(content=VOICE, filename="voice.ogg", mime_type="audio/ogg")
    yield channels.media
    channels.media.clear()


def voice_message(conversation, **fields):
    attachments = [
        {"kind": "photo", "file_id": "photo-1", "mime_type": "image/jpeg"},
        {"kind": "voice", "file_id": "voice-7", "mime_type": "audio/ogg", "duration": 3},
    ]
    return make_message(conversation, "", attachments=attachments, **fields)


def media_url(conversation, message, index):
    return f"{page_url(conversation, 'media')}{message.pk}/{index}/"


def test_transcript_and_a_play_link_are_shown_for_a_voice_message(viewer, voice_file):
    conversation = make_conversation()
    message = voice_message(conversation)
    Message.objects.filter(pk=message.pk).update(transcript="Есть креветки королевские?")

    content = viewer.get(page_url(conversation)).content.decode()

    assert "Расшифровка" in content
    assert "Есть креветки королевские?" in content
    assert media_url(conversation, message, 1) in content
    assert media_url(conversation, message, 0) not in content  # the photo is no recording


def test_the_play_link_gives_the_recording_inline(viewer, voice_file):
    conversation = make_conversation()
    message = voice_message(conversation)

    response = viewer.get(media_url(conversation, message, 1))

    assert response.status_code == 200
    assert response.content == VOICE
    assert response["Content-Type"] == "audio/ogg"
    assert response["Content-Disposition"] == 'inline; filename="voice.ogg"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_file_that_is_not_media_is_never_served_as_a_page(admin_client, voice_file):
    voice_file["page-1"] = channels.MediaFile(
        content=b"<script>alert(1)</script>", filename="../x.html", mime_type="text/html"
    )
    conversation = make_conversation()
    message = make_message(conversation, "", attachments=[{"kind": "document", "file_id": "page-1"}])

    response = admin_client.get(media_url(conversation, message, 0))

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="x.html"'


def test_a_missing_attachment_is_404(admin_client, voice_file):
    conversation = make_conversation()
    message = voice_message(conversation)
    other = make_conversation()

    assert admin_client.get(media_url(conversation, message, 5)).status_code == 404
    assert admin_client.get(media_url(other, message, 1)).status_code == 404  # not that dialog's message
    assert admin_client.get(f"{page_url(conversation, 'media')}999999/0/").status_code == 404


def test_a_file_the_channel_cannot_give_is_502_in_russian(admin_client):
    channels.media.clear()
    conversation = make_conversation()
    message = voice_message(conversation)

    response = admin_client.get(media_url(conversation, message, 1))

    assert response.status_code == 502
    assert "Канал не отдал файл" in response.content.decode()


def test_staff_without_view_permission_cannot_play_recordings(client, voice_file):
    user = get_user_model().objects.create_user("nobody", password="a-long-password-1", is_staff=True)
    client.force_login(user)
    conversation = make_conversation()
    message = voice_message(conversation)

    response = client.get(media_url(conversation, message, 1))

    assert response.status_code in (403, 404)
    assert response.content != VOICE


def channel_choices(response) -> list[str]:
    spec = next(f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "channel")
    return [str(label) for _value, label in spec.lookup_choices]


def test_channel_filter_lists_channels_with_dialogs_or_set_up_not_every_channel(admin_client, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.B24_WEBHOOK_URL = "https://portal.example/rest/1/secret/"
    make_conversation(channel="cli", customer_name="Анна")

    response = admin_client.get(LIST_URL)

    assert sorted(channel_choices(response)) == ["Bitrix24", "Командная строка"]


def test_channel_filter_narrows_the_list(admin_client):
    telegram = make_conversation(channel="telegram", customer_name="Анна")
    make_conversation(channel="cli", customer_name="Борис")

    response = admin_client.get(LIST_URL, {"channel": "telegram"})

    assert list(response.context["cl"].result_list) == [telegram]


def test_list_preview_of_a_voice_message_is_its_transcript(admin_client):
    conversation = make_conversation(customer_name="Анна")
    voice = make_message(conversation, "", attachments=[{"kind": "voice", "file_id": "v1"}])
    Message.objects.filter(pk=voice.pk).update(transcript="Есть ли икра кеты?")

    response = admin_client.get(LIST_URL)

    assert "Есть ли икра кеты?" in response.content.decode()
