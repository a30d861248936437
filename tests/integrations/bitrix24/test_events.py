"""Reading Bitrix24 event bodies: recorded form-encoded events, their JSON twins, malformed bodies."""

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from conversations.models import Message
from integrations.bitrix24.events import (
    BadEvent,
    command_text,
    is_operator_command,
    parse_body,
    parse_event,
    parse_form,
    parse_json,
    to_incoming,
)

FIXTURES = Path(__file__).parent / "fixtures"
MEMBER = "5f0c6a9e2b3d4c1a8e7f6d5c4b3a2918"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def event(name: str):
    return parse_event(parse_form(body(name)))


def changed(name: str, **fields) -> bytes:
    """A fixture with some fields replaced (None drops the field)."""
    pairs = [(k, fields.get(k, v)) for k, v in parse_qsl(body(name).decode(), keep_blank_values=True)]
    return urlencode([(k, v) for k, v in pairs if v is not None]).encode()


# The body -------------------------------------------------------------------


def test_php_style_keys_become_nested_dicts():
    payload = parse_form(body("message_add.txt"))

    assert payload["data"]["PARAMS"]["MESSAGE"] == "Здравствуйте! Есть креветки?"
    assert payload["data"]["BOT"]["1291"]["AUTH"]["member_id"] == MEMBER
    assert payload["auth"]["domain"] == "seafood-shop.bitrix24.ru"


def test_blank_values_are_kept():
    assert parse_form(body("message_add.txt"))["data"]["USER"]["WORK_POSITION"] == ""


def test_empty_brackets_make_a_list():
    assert parse_form(b"a[]=1&a[]=2&b[x][]=y") == {"a": ["1", "2"], "b": {"x": ["y"]}}


def test_a_list_with_named_keys_stays_a_dict():
    assert parse_form(b"a[]=1&a[x]=2") == {"a": {"0": "1", "x": "2"}}


def test_a_nested_key_replaces_an_earlier_plain_value_as_in_php():
    assert parse_form(b"a=1&a[b]=2") == {"a": {"b": "2"}}


def test_json_body_gives_the_same_event_as_the_form():
    form = parse_form(body("message_add_lines_customer.txt"))

    from_json = parse_body(json.dumps(form).encode(), "application/json; charset=utf-8")

    assert parse_event(from_json) == parse_event(form)


def test_json_numbers_are_read_as_strings():
    payload = parse_form(body("message_add.txt"))
    payload["data"]["PARAMS"]["MESSAGE_ID"] = 33899

    assert parse_event(parse_json(json.dumps(payload).encode())).message_id == "33899"


@pytest.mark.parametrize(
    ("raw", "content_type", "says"),
    [
        (b"", "application/x-www-form-urlencoded", "empty body"),
        (b"hello world", "application/x-www-form-urlencoded", "not form data"),
        (b'{"event": "ONIMBOTMESSAGEADD"}', "application/x-www-form-urlencoded", "not form data"),
        (b"event=%FF%FE", "application/x-www-form-urlencoded", "not UTF-8"),
        (b"\xff\xfe=1", "application/x-www-form-urlencoded", "not UTF-8"),
        (b"{broken", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "JSON object"),
        (b"[" * 100_000, "application/json", "not valid JSON"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "application/json", "nested too deep"),
    ],
)
def test_unreadable_bodies_are_refused_with_a_reason(raw, content_type, says):
    with pytest.raises(BadEvent, match=says):
        parse_body(raw, content_type)


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"event=ONIMBOTMESSAGEADD&data%5BPARAMS%5D%5BMESSAGE%5D=a%00b", "application/x-www-form-urlencoded"),
        (b"event=ONIMBOTMESSAGEADD&data%5BPARAMS%5D%5BMESSAGE%5D=a\x00b", "application/x-www-form-urlencoded"),
        (b"event=ONIMBOTMESSAGEADD&a%00b=1", "application/x-www-form-urlencoded"),
        (b'{"event": "ONIMBOTMESSAGEADD", "data": {"PARAMS": {"MESSAGE": "a\\u0000b"}}}', "application/json"),
        (b'{"event": "ONIMBOTMESSAGEADD", "data": {"\\u0000": "x"}}', "application/json"),
    ],
    ids=["form-escaped", "form-raw", "form-key", "json-value", "json-key"],
)
def test_nul_characters_are_refused(raw, content_type):
    with pytest.raises(BadEvent, match="NUL"):
        parse_body(raw, content_type)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"event": "X", "ts": NaN}', "not valid JSON"),
        (b'{"event": "X", "ts": -Infinity}', "not valid JSON"),
        (b'{"event": "X", "ts": 1e400}', "not valid JSON"),
        (b'{"event": "X", "text": "\\ud800"}', "surrogate"),
        (b'{"event": "X", "text": "ok \\uDFFF"}', "surrogate"),
    ],
    ids=["nan", "infinity", "overflow", "lone-high-surrogate", "lone-low-surrogate"],
)
def test_json_that_the_database_cannot_store_is_refused(raw, says):
    with pytest.raises(BadEvent, match=says):
        parse_json(raw)


def test_json_emoji_written_as_a_surrogate_pair_is_kept():
    assert parse_json(b'{"event": "X", "text": "\\ud83e\\udd90"}')["text"] == "🦐"


def test_json_backslash_before_u0000_is_text_not_nul():
    payload = parse_body(b'{"event": "X", "text": "\\\\u0000"}', "application/json")

    assert payload["text"] == "\\u0000"


def test_too_many_fields_are_refused():
    with pytest.raises(BadEvent):
        parse_form("&".join(f"f{i}=1" for i in range(3000)).encode())


# The event ------------------------------------------------------------------


def test_no_event_name_is_refused():
    with pytest.raises(BadEvent, match="no event name"):
        parse_event(parse_form(changed("message_add.txt", event=None)))


def test_a_message_without_dialog_is_refused():
    with pytest.raises(BadEvent, match=r"DIALOG_ID"):
        parse_event(parse_form(changed("message_add.txt", **{"data[PARAMS][DIALOG_ID]": None})))


def test_an_empty_message_is_refused():
    with pytest.raises(BadEvent, match="empty"):
        parse_event(parse_form(changed("message_add.txt", **{"data[PARAMS][MESSAGE]": "  "})))


def test_an_overlong_id_is_refused():
    with pytest.raises(BadEvent, match="too long"):
        parse_event(parse_form(changed("message_add.txt", **{"data[PARAMS][MESSAGE_ID]": "9" * 300})))


def test_events_the_bot_does_not_use_are_read_by_name_only():
    assert event("message_update.txt").name == "ONIMBOTMESSAGEUPDATE"


def test_join_in_open_lines_takes_the_chat_id_from_the_dialog():
    joined = event("join_chat_lines.txt")

    assert (joined.dialog_id, joined.chat_id, joined.in_open_lines) == ("chat2801", "2801", True)


def test_bot_delete_names_the_bot():
    deleted = event("bot_delete.txt")

    assert (deleted.bot_id, deleted.bot_code, deleted.member_id) == ("1291", "storebot", MEMBER)


# Into IncomingMessage -------------------------------------------------------


def test_private_message_becomes_an_incoming_customer_message():
    incoming = to_incoming(event("message_add.txt"))

    assert incoming.channel == "bitrix24"
    assert incoming.dialog_id == f"{MEMBER}:1269"
    assert incoming.message_id == f"{MEMBER}:33899"
    assert incoming.text == "Здравствуйте! Есть креветки?"
    assert (incoming.customer_name, incoming.customer_id) == ("Иван Смирнов", "1269")
    assert incoming.author == Message.Author.CUSTOMER


def test_incoming_keeps_what_the_sender_needs():
    incoming = to_incoming(event("message_add.txt"))

    assert incoming.channel_data == {
        "member_id": MEMBER,
        "domain": "seafood-shop.bitrix24.ru",
        "dialog_id": "1269",
        "chat_id": "2737",
        "bot_id": "1291",
    }


def test_incoming_carries_the_parsed_payload():
    payload = parse_form(body("message_add.txt"))

    assert to_incoming(parse_event(payload)).raw_payload is payload


def test_open_lines_customer_writes_through_the_connector():
    incoming = to_incoming(event("message_add_lines_customer.txt"))

    assert incoming.author == Message.Author.CUSTOMER
    assert incoming.channel_data["chat_entity_type"] == "LINES"
    assert incoming.dialog_id == f"{MEMBER}:chat2801"


def test_open_lines_message_not_from_the_connector_is_an_operators():
    assert to_incoming(event("message_add_lines_operator.txt")).author == Message.Author.OPERATOR


def test_last_name_is_added_when_the_name_lacks_it():
    raw = changed("message_add.txt", **{"data[USER][NAME]": "Иван"})

    assert to_incoming(parse_event(parse_form(raw))).customer_name == "Иван Смирнов"


def test_a_notice_of_bitrix24_itself_is_a_system_message():
    raw = changed("message_add_lines_customer.txt", **{"data[PARAMS][SYSTEM]": "Y"})

    assert to_incoming(parse_event(parse_form(raw))).author == Message.Author.SYSTEM


def test_operator_button_is_the_operator_command():
    pressed = event("command_add.txt")

    assert is_operator_command(pressed)
    assert command_text(pressed) == "Позвать оператора"


def test_question_button_says_its_parameters():
    incoming = to_incoming(event("command_add_ask.txt"))

    assert (incoming.text, incoming.author) == ("Доставка", Message.Author.CUSTOMER)


def test_each_button_press_is_a_message_of_its_own():
    # Both buttons sit under one bot message: its MESSAGE_ID is the same.
    first = to_incoming(event("command_add.txt")).message_id
    second = to_incoming(event("command_add_ask.txt")).message_id

    assert first != second
    assert first.startswith(f"{MEMBER}:33901:")
