"""POST /b24/imbot/events: recorded Bitrix24 events replayed against the demo store.

The worker runs inline (django-q2's sync mode) and every channel delivers into
conversations.channels.outbox, so a test sees what the customer would see.
"""

import json
import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import responses
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Task

from bots.models import AssistantSettings
from conversations.models import Conversation, Message
from conversations.services import account_id_for, get_or_create_conversation, take_over
from integrations.bitrix24.events import parse_form
from integrations.bitrix24.models import Portal

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels", "worker")

URL = "/b24/imbot/events"
FIXTURES = Path(__file__).parent / "fixtures"
MEMBER = "5f0c6a9e2b3d4c1a8e7f6d5c4b3a2918"
APP_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"


@pytest.fixture(autouse=True)
def webhook_token(settings):
    settings.B24_APPLICATION_TOKEN = APP_TOKEN
    return settings


@pytest.fixture
def worker(monkeypatch):
    """Queued tasks run at once, inside the request."""
    monkeypatch.setattr(Conf, "SYNC", True)


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def changed(name: str, **fields) -> bytes:
    """A fixture with some fields replaced (None drops the field)."""
    pairs = [(k, fields.get(k, v)) for k, v in parse_qsl(body(name).decode(), keep_blank_values=True)]
    return urlencode([(k, v) for k, v in pairs if v is not None]).encode()


def post(client, name: str = "", *, raw: bytes | None = None, as_json: bool = False):
    data = body(name) if raw is None else raw
    if as_json:
        return client.post(URL, data=json.dumps(parse_form(data)), content_type="application/json")
    return client.post(URL, data=data, content_type="application/x-www-form-urlencoded")


def bot_messages():
    return Message.objects.filter(author=Message.Author.BOT)


# A customer's message -------------------------------------------------------


def test_message_is_acknowledged(client):
    response = post(client, "message_add.txt")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_message_is_recorded_in_its_dialog(client):
    post(client, "message_add.txt")

    message = Message.objects.get(direction=Message.Direction.IN)
    assert message.external_id == f"{MEMBER}:33899"
    assert message.text == "Здравствуйте! Есть креветки?"
    assert message.conversation.external_id == f"{MEMBER}:1269"
    assert (message.conversation.customer_name, message.conversation.customer_external_id) == ("Иван Смирнов", "1269")


def test_stored_payload_has_no_tokens(client):
    post(client, "message_add.txt")

    stored = json.dumps(Message.objects.get(direction=Message.Direction.IN).raw_payload)
    assert APP_TOKEN not in stored
    assert "acc3ss" not in stored


def test_message_queues_one_answer(client):
    post(client, "message_add.txt")

    assert Task.objects.filter(func="integrations.tasks.answer").count() == 1


def test_message_is_answered_once_with_the_assistants_text(client, locmem_channels):
    post(client, "message_add.txt")

    reply = bot_messages().get()
    assert [(sent.dialog, sent.text) for sent in locmem_channels.outbox] == [(f"{MEMBER}:1269", reply.text)]
    assert reply.text


@pytest.fixture
def queue_down(settings, monkeypatch):
    """Tasks go through the Redis broker, and Redis does not answer."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (set REDIS_URL): the broker is the cache's Redis")
    monkeypatch.setattr(Conf, "SYNC", False)
    # Nothing listens on port 1; the broker reaches Redis through the cache's client.
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}


def test_message_is_acknowledged_and_kept_when_the_task_queue_is_down(client, queue_down, settings):
    response = post(client, "message_add.txt")

    assert response.status_code == 200
    message = Message.objects.get(direction=Message.Direction.IN)
    settings.REPLY_SWEEP_AFTER_S = 0
    from integrations.tasks import unanswered_messages

    assert list(unanswered_messages()) == [message]  # answered by the sweep once the queue is back


def test_operator_button_is_acknowledged_when_the_task_queue_is_down(client, queue_down):
    response = post(client, "command_add.txt")

    assert response.status_code == 200
    assert bot_messages().get().reply_kind == Message.ReplyKind.HANDOFF


def test_json_body_is_handled_like_the_form(client, locmem_channels):
    response = post(client, "message_add.txt", as_json=True)

    assert response.status_code == 200
    assert Message.objects.get(direction=Message.Direction.IN).external_id == f"{MEMBER}:33899"
    assert len(locmem_channels.outbox) == 1


def test_a_repeated_event_gives_one_message_and_one_reply(client, locmem_channels):
    first = post(client, "message_add.txt")
    second = post(client, "message_add.txt")

    assert (first.status_code, second.status_code) == (200, 200)
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1
    assert len(locmem_channels.outbox) == 1
    assert Task.objects.filter(func="integrations.tasks.answer").count() == 1


def test_a_dialog_with_an_operator_gets_no_bot_answer(client, locmem_channels, admin_user):
    conversation = get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", MEMBER), external_id=f"{MEMBER}:1269"
    )
    take_over(conversation=conversation, operator=admin_user)

    post(client, "message_add.txt")

    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1
    assert locmem_channels.outbox == []


# Open Lines -----------------------------------------------------------------


def test_open_lines_customer_is_answered(client, locmem_channels):
    post(client, "message_add_lines_customer.txt")

    assert [sent.dialog for sent in locmem_channels.outbox] == [f"{MEMBER}:chat2801"]


def test_open_lines_dialog_keeps_what_the_sender_needs(client):
    post(client, "message_add_lines_customer.txt")

    data = Conversation.objects.get().channel_data
    assert (data["chat_entity_type"], data["chat_id"], data["dialog_id"]) == ("LINES", "2801", "chat2801")


def test_open_lines_operator_message_is_recorded_as_the_operators(client):
    post(client, "message_add_lines_operator.txt")

    assert Message.objects.get().author == Message.Author.OPERATOR


def test_open_lines_operator_message_takes_the_dialog_over(client, locmem_channels):
    post(client, "message_add_lines_operator.txt")

    assert Conversation.objects.get().state == Conversation.State.OPERATOR
    assert locmem_channels.outbox == []


def test_open_lines_operator_does_not_become_the_customer(client):
    post(client, "message_add_lines_customer.txt")
    post(client, "message_add_lines_operator.txt")

    assert Conversation.objects.get().customer_name == "Мария Котова"


# Who is calling -------------------------------------------------------------


def test_wrong_application_token_is_refused(client, locmem_channels):
    response = post(client, raw=changed("message_add.txt", **{"auth[application_token]": "f" * 32}))

    assert response.status_code == 401
    assert response.json()["error"]
    assert (Conversation.objects.count(), Message.objects.count(), locmem_channels.outbox) == (0, 0, [])


def test_missing_application_token_is_refused(client):
    response = post(client, raw=changed("message_add.txt", **{"auth[application_token]": None}))

    assert response.status_code == 401
    assert Message.objects.count() == 0


def test_refusal_is_logged_without_the_token(client, caplog):
    forged = "forged0123456789abcdef0123456789"
    with caplog.at_level(logging.WARNING, logger="integrations.bitrix24.services"):
        post(client, raw=changed("message_add.txt", **{"auth[application_token]": forged}))

    assert MEMBER in caplog.text
    assert forged not in caplog.text
    assert APP_TOKEN not in caplog.text


def test_token_stored_for_the_portal_is_accepted(client, settings):
    settings.B24_APPLICATION_TOKEN = ""
    Portal.objects.create(member_id=MEMBER, domain="seafood-shop.bitrix24.ru", application_token=APP_TOKEN)

    response = post(client, "message_add.txt")

    assert response.status_code == 200
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


def test_token_of_another_portal_is_refused(client, settings):
    settings.B24_APPLICATION_TOKEN = ""
    Portal.objects.create(member_id="another-member", domain="other.bitrix24.ru", application_token=APP_TOKEN)

    assert post(client, "message_add.txt").status_code == 401


# Joining a chat -------------------------------------------------------------


def test_join_delivers_a_welcome(client, locmem_channels):
    AssistantSettings.objects.update_or_create(pk=1, defaults={"store_name": "Морской рынок"})

    post(client, "join_chat.txt")

    [welcome] = locmem_channels.outbox
    assert welcome.dialog == f"{MEMBER}:1269"
    assert "Морской рынок" in welcome.text
    assert "«оператор»" in welcome.text


def test_join_records_the_welcome_as_a_bot_greeting(client):
    post(client, "join_chat.txt")

    welcome = bot_messages().get()
    assert (welcome.reply_kind, welcome.delivery_state) == (Message.ReplyKind.GREETING, Message.Delivery.SENT)


def test_a_repeated_join_welcomes_once(client, locmem_channels):
    post(client, "join_chat.txt")
    post(client, "join_chat.txt")

    assert len(locmem_channels.outbox) == 1


def test_join_in_open_lines_starts_a_fresh_context(client):
    earlier = timezone.now() - timedelta(days=2)
    conversation = get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", MEMBER), external_id=f"{MEMBER}:chat2801"
    )
    Conversation.objects.filter(pk=conversation.pk).update(context_started_at=earlier)

    post(client, "join_chat_lines.txt")

    conversation.refresh_from_db()
    assert conversation.context_started_at > earlier


def test_join_in_open_lines_gives_the_new_session_to_the_bot(client, admin_user):
    conversation = get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", MEMBER), external_id=f"{MEMBER}:chat2801"
    )
    take_over(conversation=conversation, operator=admin_user)

    post(client, "join_chat_lines.txt")

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.BOT


def test_join_in_a_private_chat_keeps_the_context(client):
    earlier = timezone.now() - timedelta(days=2)
    conversation = get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", MEMBER), external_id=f"{MEMBER}:1269"
    )
    Conversation.objects.filter(pk=conversation.pk).update(context_started_at=earlier)

    post(client, "join_chat.txt")

    conversation.refresh_from_db()
    assert conversation.context_started_at == earlier


# Commands (keyboard buttons) ------------------------------------------------


def test_operator_button_hands_the_dialog_off(client, locmem_channels):
    post(client, "command_add.txt")

    assert Conversation.objects.get().state == Conversation.State.OPERATOR
    assert [h.dialog for h in locmem_channels.handoffs] == [f"{MEMBER}:1269"]


def test_operator_button_tells_the_customer_with_the_handoff_text(client, locmem_channels, operators_on_duty):
    post(client, "command_add.txt")

    handoff_text = AssistantSettings.load().handoff_text
    assert [(sent.text, sent.kind) for sent in locmem_channels.outbox] == [(handoff_text, "handoff")]


def test_a_repeated_operator_button_event_hands_off_once(client, locmem_channels):
    post(client, "command_add.txt")
    post(client, "command_add.txt")

    assert (len(locmem_channels.outbox), len(locmem_channels.handoffs)) == (1, 1)


def test_question_button_is_answered_like_a_typed_question(client, locmem_channels):
    post(client, "command_add_ask.txt")

    question = Message.objects.get(direction=Message.Direction.IN)
    assert question.text == "Доставка"
    assert [sent.text for sent in locmem_channels.outbox] == [bot_messages().get(in_reply_to=question).text]


# The bot deleted ------------------------------------------------------------


def test_bot_delete_gives_the_portals_dialogs_to_operators(client):
    mine = get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", MEMBER), external_id=f"{MEMBER}:1269"
    )
    others = get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", "another-member"), external_id="another-member:1269"
    )

    post(client, "bot_delete.txt")

    mine.refresh_from_db()
    others.refresh_from_db()
    assert (mine.state, others.state) == (Conversation.State.OPERATOR, Conversation.State.BOT)


def test_bot_delete_calls_no_channel(client, locmem_channels):
    get_or_create_conversation(
        channel="bitrix24", account_id=account_id_for("bitrix24", MEMBER), external_id=f"{MEMBER}:1269"
    )

    post(client, "bot_delete.txt")

    assert (locmem_channels.handoffs, locmem_channels.outbox) == ([], [])


def test_bot_delete_forgets_the_portals_bot(client):
    Portal.objects.create(member_id=MEMBER, domain="seafood-shop.bitrix24.ru", bot_id="1291")

    post(client, "bot_delete.txt")

    assert Portal.objects.get().bot_id == ""


# Other events, bad requests -------------------------------------------------


def test_unknown_event_is_ignored(client):
    response = post(client, "message_update.txt")

    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"hello world", "application/x-www-form-urlencoded"),
        (b"{broken", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"event=%FF", "application/x-www-form-urlencoded"),
        (b'{"event": "ONIMBOTMESSAGEADD", "data": {"PARAMS": {"MESSAGE_ID": NaN}}}', "application/json"),
        (b'{"event": "ONIMBOTMESSAGEADD", "data": {"PARAMS": {"MESSAGE": "\\ud800"}}}', "application/json"),
    ],
    ids=["not-form", "broken-json", "json-array", "not-utf8", "json-nan", "json-lone-surrogate"],
)
def test_unreadable_body_is_a_json_400(client, raw, content_type):
    response = client.post(URL, data=raw, content_type=content_type)

    assert response.status_code == 400
    assert response.json()["error"]


def test_message_with_a_nul_character_is_a_json_400_and_not_stored(client):
    response = post(client, raw=changed("message_add.txt", **{"data[PARAMS][MESSAGE]": "Есть\x00икра?"}))

    assert response.status_code == 400
    assert "NUL" in response.json()["error"]
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("event", None), ("data[PARAMS][DIALOG_ID]", None), ("data[PARAMS][MESSAGE]", "")],
    ids=["no-event", "no-dialog", "empty-message"],
)
def test_incomplete_event_is_a_json_400(client, field, value):
    response = post(client, raw=changed("message_add.txt", **{field: value}))

    assert response.status_code == 400
    assert response.json()["error"]
    assert Message.objects.count() == 0


def test_oversized_body_is_a_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = post(client, "message_add.txt")

    assert response.status_code == 413
    assert response.json() == {"error": "body too large"}


def test_get_is_a_json_405(client):
    response = client.get(URL)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"error": "method not allowed"}


# Nothing outside is called while Bitrix24 waits ------------------------------


@pytest.mark.parametrize("fixture", ["message_add.txt", "command_add.txt", "join_chat.txt"])
def test_event_is_answered_with_one_queued_task_and_no_http(client, queue, fixture):
    # No URL is registered: any outbound request would fail with ConnectionError.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http:
        response = post(client, fixture)

    assert response.status_code == 200
    assert len(http.calls) == 0
    assert queue.queue_size() == 1


def test_a_keyboard_press_with_the_longest_ids_is_recorded_not_a_500(client):
    # Four 64-character ids made a 259-character key for a 255-character column.
    long_id = "9" * 64
    response = post(
        client,
        raw=changed(
            "command_add.txt",
            **{
                "auth[member_id]": "m" * 64,
                "data[COMMAND][103][MESSAGE_ID]": long_id,
                "data[COMMAND][103][COMMAND_ID]": long_id,
                "data[COMMAND][103][COMMAND_CONTEXT]": "KEYBOARD",
                "ts": long_id,
            },
        ),
    )

    assert response.status_code == 200
    stored = Message.objects.get(direction=Message.Direction.IN)
    assert len(stored.external_id) <= 255


def test_a_json_event_with_too_many_fields_is_a_json_400(client):
    event = parse_form(body("message_add.txt"))
    event["data"]["PARAMS"]["EXTRA"] = {f"k{i}": i for i in range(5000)}

    response = client.post(URL, data=json.dumps(event), content_type="application/json")

    assert response.status_code == 400
    assert "fields" in response.json()["error"]
    assert Message.objects.count() == 0


def test_a_json_event_with_utf8_encoded_surrogates_is_a_json_400_and_not_stored(client):
    # Seen in the fuzz drill as a 500: the bytes of a lone surrogate, not a \u escape.
    event = parse_form(changed("message_add.txt", **{"data[PARAMS][MESSAGE]": "@@"}))
    raw = json.dumps(event, ensure_ascii=False).encode().replace(b"@@", b"\xed\xa0\x80")

    response = client.post(URL, data=raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]
    assert not Message.objects.exists()
