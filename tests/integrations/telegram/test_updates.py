"""Reading Telegram updates: recorded webhook bodies, their IncomingMessage, malformed bodies."""

import json
from pathlib import Path

import pytest

from integrations.telegram.updates import (
    BadUpdate,
    addressed_to_bot,
    is_operator_request,
    parse_update,
    read_update,
    to_incoming,
)

FIXTURES = Path(__file__).parent / "fixtures"
ANNA = 384912765
ACCOUNT = 7


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def update(name: str):
    return read_update(parse_update(body(name)))


def changed(name: str, path: str, value) -> dict:
    """A fixture with one field (dotted path) replaced."""
    payload = json.loads(body(name))
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    node[last] = value
    return payload


# The body -------------------------------------------------------------------


def test_a_body_is_a_json_object():
    assert parse_update(body("message_text.json"))["update_id"] == 815240101


@pytest.mark.parametrize("raw", [b"", b"  ", b"[1, 2]", b'"text"', b"42", b"null", b"{", b"update_id=1"])
def test_a_body_that_is_not_a_json_object_is_refused(raw):
    with pytest.raises(BadUpdate):
        parse_update(raw)


@pytest.mark.parametrize("raw", [b'{"update_id": NaN}', b'{"update_id": Infinity}', b'{"x": -Infinity}'])
def test_nan_and_infinity_are_refused(raw):
    with pytest.raises(BadUpdate):
        parse_update(raw)


def test_a_number_too_large_for_a_float_is_refused():
    with pytest.raises(BadUpdate):
        parse_update(b'{"update_id": 1, "x": 1e400}')


def test_a_nul_character_in_a_string_is_refused():
    with pytest.raises(BadUpdate, match="NUL"):
        parse_update(b'{"update_id": 1, "message": {"text": "a\\u0000b"}}')


def test_a_nul_character_in_a_key_is_refused():
    with pytest.raises(BadUpdate, match="NUL"):
        parse_update(b'{"update_id": 1, "a\\u0000": 1}')


def test_a_lone_surrogate_is_refused():
    with pytest.raises(BadUpdate, match="surrogate"):
        parse_update(b'{"update_id": 1, "message": {"text": "\\ud83d"}}')


def test_a_surrogate_pair_is_an_emoji():
    assert parse_update(b'{"update_id": 1, "text": "\\ud83d\\udc4d"}')["text"] == "👍"


def test_a_body_that_is_not_utf8_is_refused():
    with pytest.raises(BadUpdate):
        parse_update('{"text": "привет"}'.encode("cp1251"))


def test_nesting_deeper_than_32_is_refused():
    with pytest.raises(BadUpdate, match="deep"):
        parse_update(b'{"update_id": 1, "a": ' + b"[" * 40 + b"]" * 40 + b"}")


def test_nesting_of_32_is_accepted():
    assert parse_update(b"{" + b'"a": {' * 30 + b'"b": []' + b"}" * 30 + b"}")


def test_nesting_deep_enough_to_break_the_parser_is_refused():
    with pytest.raises(BadUpdate):
        parse_update(b"[" * 100_000 + b"]" * 100_000)


# The update -----------------------------------------------------------------


@pytest.mark.parametrize("update_id", [None, "815240101", 1.5, True, -1, 2**63])
def test_update_id_must_be_an_integer(update_id):
    payload = changed("message_text.json", "update_id", update_id)

    with pytest.raises(BadUpdate, match="update_id"):
        read_update(payload)


def test_a_message_without_a_chat_is_refused():
    with pytest.raises(BadUpdate, match="chat"):
        read_update(changed("message_text.json", "message.chat", None))


def test_a_message_whose_type_is_not_an_object_is_refused():
    with pytest.raises(BadUpdate, match="message"):
        read_update({"update_id": 1, "message": "Здравствуйте"})


def test_an_id_beyond_bigint_is_refused():
    with pytest.raises(BadUpdate, match="range"):
        read_update(changed("message_text.json", "message.from.id", 2**64))


def test_text_message():
    u = update("message_text.json")

    assert (u.kind, u.update_id, u.chat_id, u.chat_type, u.message_id) == ("message", 815240101, ANNA, "private", 1201)
    assert (u.user_id, u.user_name, u.username) == (ANNA, "Анна Соколова", "anna_sok")
    assert u.text == "Здравствуйте! Есть икра кеты?"
    assert (u.date, u.edit_date, u.command, u.attachments, u.is_bot_author) == (1718013600, None, "", [], False)


def test_the_raw_update_is_kept():
    assert update("message_text.json").raw == json.loads(body("message_text.json"))


def test_user_name_is_the_first_name_alone_without_a_last_name():
    assert update("group_message.json").user_name == "Игорь"


def test_user_name_is_the_username_without_a_name():
    payload = changed("message_text.json", "message.from", {"id": ANNA, "is_bot": False, "username": "anna_sok"})

    assert read_update(payload).user_name == "anna_sok"


def test_start_with_a_deep_link_payload():
    u = update("message_start_deep_link.json")

    assert (u.command, u.command_args) == ("start", "promo_summer24")


def test_command_without_an_entity_is_read_from_the_text():
    payload = changed("message_text.json", "message.text", "/catalog")

    assert read_update(payload).command == "catalog"


def test_command_with_the_bot_name_loses_it():
    payload = changed("message_start_deep_link.json", "message.text", "/Help@seafood_shop_bot")
    payload["message"]["entities"][0]["length"] = 22

    assert (read_update(payload).command, read_update(payload).command_args) == ("help", "")


def test_a_slash_inside_a_word_is_not_a_command():
    payload = changed("message_text.json", "message.text", "/operatorы пожалуйста")

    assert read_update(payload).command == ""


def test_edited_message():
    u = update("edited_message.json")

    assert (u.kind, u.message_id, u.edit_date) == ("edited_message", 1201, 1718013655)
    assert u.text == "Здравствуйте! Есть икра кеты, 250 г?"


def test_voice_message():
    u = update("message_voice.json")

    assert u.text == ""
    assert u.attachments == [
        {
            "kind": "voice",
            "file_id": "AwACAgIAAxkBAAIEs2ZnQ1Xk3vJ8c0k0Vx9wq1Xb2mUVAAJiSwACq9FBS7hH1bUqYp1wNQQ",
            "file_unique_id": "AgADYksAAqvRQUs",
            "mime_type": "audio/ogg",
            "duration": 4,
            "file_size": 15620,
            "file_name": "",
            "telegram_field": "voice",
        }
    ]


def test_audio_file():
    (attachment,) = update("message_audio.json").attachments

    assert (attachment["kind"], attachment["mime_type"], attachment["duration"]) == ("audio", "audio/mpeg", 21)
    assert (attachment["file_name"], attachment["title"]) == ("вопрос про доставку.mp3", "Вопрос про доставку")


def test_video_note_is_an_mp4():
    (attachment,) = update("message_video_note.json").attachments

    assert (attachment["kind"], attachment["mime_type"], attachment["duration"]) == ("video_note", "video/mp4", 7)
    assert attachment["file_id"].startswith("DQAC")  # the video, not its thumbnail


def test_photo_is_its_largest_size_and_the_caption_is_the_text():
    u = update("message_photo_caption.json")

    (attachment,) = u.attachments
    assert u.text == "Вот такую икру хочу, есть?"
    assert (attachment["kind"], attachment["width"], attachment["height"]) == ("photo", 800, 600)
    assert (attachment["file_size"], attachment["mime_type"]) == (81230, "image/jpeg")


def test_sticker():
    (attachment,) = update("message_sticker.json").attachments

    assert (attachment["kind"], attachment["emoji"]) == ("sticker", "👍")
    assert attachment["mime_type"] == "application/x-tgsticker"  # animated


def test_animation_is_one_video_not_also_a_document():
    gif = {"file_id": "CgACAgIAAx", "file_unique_id": "AgADb", "mime_type": "video/mp4", "duration": 2}
    payload = changed("message_text.json", "message.animation", gif)
    payload["message"]["document"] = {**gif, "file_name": "cat.mp4"}

    assert [(a["kind"], a["telegram_field"]) for a in read_update(payload).attachments] == [("video", "animation")]


def test_document():
    doc = {"file_id": "BQACAgIAAx", "file_unique_id": "AgADc", "file_name": "заказ.pdf", "mime_type": "application/pdf"}

    (attachment,) = read_update(changed("message_text.json", "message.document", doc)).attachments

    assert (attachment["kind"], attachment["file_name"], attachment["duration"]) == ("document", "заказ.pdf", None)


def test_a_location_is_an_attachment_of_another_kind():
    payload = changed("message_text.json", "message.location", {"latitude": 55.75, "longitude": 37.62})
    del payload["message"]["text"]

    (attachment,) = read_update(payload).attachments

    assert (attachment["kind"], attachment["file_id"], attachment["telegram_field"]) == ("other", "", "location")


def test_callback_query():
    u = update("callback_query.json")

    assert (u.kind, u.callback_id, u.callback_data) == ("callback_query", "1653402367231045123", "ask:Доставка")
    assert (u.chat_id, u.chat_type, u.callback_message_id) == (ANNA, "private", 1208)
    assert (u.user_id, u.is_bot_author) == (ANNA, False)  # who pressed, not the bot that wrote


def test_callback_query_without_a_message():
    payload = changed("callback_query.json", "callback_query.inline_message_id", "AgAAAOw")
    del payload["callback_query"]["message"]

    u = read_update(payload)

    assert (u.chat_id, u.callback_message_id) == (None, None)


def test_callback_query_without_an_id_is_refused():
    with pytest.raises(BadUpdate, match="id"):
        read_update(changed("callback_query.json", "callback_query.id", ""))


def test_a_callback_query_id_too_long_to_store_is_refused():
    with pytest.raises(BadUpdate, match="too long"):
        read_update(changed("callback_query.json", "callback_query.id", "1" * 300))


def test_customer_blocks_the_bot():
    u = update("my_chat_member_kicked.json")

    assert (u.kind, u.member_status, u.chat_id, u.user_id) == ("my_chat_member", "kicked", ANNA, ANNA)


def test_customer_unblocks_the_bot():
    assert update("my_chat_member_member.json").member_status == "member"


def test_group_message():
    u = update("group_message.json")

    assert (u.kind, u.chat_type, u.chat_id) == ("message", "supergroup", -1001987654321)


def test_an_unknown_update_type_is_other():
    u = update("message_reaction.json")

    assert (u.kind, u.update_id, u.chat_id) == ("other", 815240113, None)


def test_an_update_with_no_type_at_all_is_other():
    assert read_update({"update_id": 5}).kind == "other"


# Who we serve -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "message_text.json",
        "message_voice.json",
        "edited_message.json",
        "callback_query.json",
        "my_chat_member_kicked.json",
    ],
)
def test_private_chats_are_served(name):
    assert addressed_to_bot(update(name), "seafood_shop_bot")


def test_a_group_message_is_not_served_even_when_it_mentions_the_bot():
    assert not addressed_to_bot(update("group_message.json"), "seafood_shop_bot")


def test_a_message_from_a_bot_is_not_served():
    payload = changed("message_text.json", "message.from.is_bot", True)

    assert not addressed_to_bot(read_update(payload))


def test_an_unknown_update_is_not_served():
    assert not addressed_to_bot(update("message_reaction.json"))


def test_the_operator_button_is_an_operator_request():
    assert is_operator_request(update("callback_query_operator.json"))


def test_typed_operator_command_is_an_operator_request():
    assert is_operator_request(read_update(changed("message_text.json", "message.text", "/operator")))


def test_a_suggestion_button_is_not_an_operator_request():
    assert not is_operator_request(update("callback_query.json"))


# Into the shared shape -----------------------------------------------------------


def test_text_message_as_incoming():
    incoming = to_incoming(update("message_text.json"), account_id=ACCOUNT)

    assert (incoming.channel, incoming.account_id, incoming.dialog_id) == ("telegram", ACCOUNT, str(ANNA))
    assert (incoming.message_id, incoming.text) == ("1201", "Здравствуйте! Есть икра кеты?")
    assert (incoming.customer_name, incoming.customer_id) == ("Анна Соколова", str(ANNA))
    assert incoming.channel_data == {"chat_id": ANNA, "username": "anna_sok"}
    assert incoming.raw_payload == json.loads(body("message_text.json"))
    assert (incoming.attachments, incoming.needs_reply, incoming.author) == ([], True, "customer")


def test_voice_message_as_incoming_has_no_text_and_one_attachment():
    incoming = to_incoming(update("message_voice.json"), account_id=ACCOUNT)

    assert (incoming.text, [a["kind"] for a in incoming.attachments]) == ("", ["voice"])
    assert incoming.needs_reply


def test_photo_caption_is_the_incoming_text():
    incoming = to_incoming(update("message_photo_caption.json"), account_id=ACCOUNT)

    assert (incoming.text, incoming.attachments[0]["kind"]) == ("Вот такую икру хочу, есть?", "photo")


def test_an_edit_is_its_own_message_that_needs_no_reply():
    incoming = to_incoming(update("edited_message.json"), account_id=ACCOUNT)

    assert (incoming.message_id, incoming.needs_reply) == ("edit:1201:1718013655", False)
    assert incoming.text == "Здравствуйте! Есть икра кеты, 250 г?"


def test_a_suggestion_button_says_its_question():
    incoming = to_incoming(update("callback_query.json"), account_id=ACCOUNT)

    assert (incoming.message_id, incoming.text, incoming.dialog_id) == ("cb:1653402367231045123", "Доставка", str(ANNA))
    assert incoming.needs_reply


def test_the_operator_button_says_the_operator_request():
    incoming = to_incoming(update("callback_query_operator.json"), account_id=ACCOUNT)

    assert incoming.text == "Позвать оператора"


def test_a_button_we_did_not_make_is_not_a_message():
    with pytest.raises(BadUpdate):
        to_incoming(read_update(changed("callback_query.json", "callback_query.data", "buy:42")), account_id=ACCOUNT)


@pytest.mark.parametrize("name", ["my_chat_member_kicked.json", "message_reaction.json"])
def test_other_updates_are_not_messages(name):
    with pytest.raises(BadUpdate, match="not a message"):
        to_incoming(update(name), account_id=ACCOUNT)


def test_a_service_message_is_not_a_message():
    payload = changed(
        "message_text.json", "message.message_auto_delete_timer_changed", {"message_auto_delete_time": 86400}
    )
    del payload["message"]["text"]

    with pytest.raises(BadUpdate, match="not a message"):
        to_incoming(read_update(payload), account_id=ACCOUNT)


def test_a_shared_contact_is_read_as_the_number_written():
    incoming = to_incoming(update("message_contact.json"), account_id=ACCOUNT)

    assert incoming.text == "79161234567"
    assert incoming.needs_reply
