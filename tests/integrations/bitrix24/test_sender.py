"""Bitrix24Sender against a stubbed portal: what imbot.message.add and the Open Lines methods receive."""

import json

import pytest
import requests
import responses
from django.contrib.auth import get_user_model

from conversations.channels import DeliveryError
from conversations.models import Message
from conversations.services import deliver, hand_off, send_operator_reply
from integrations.bitrix24 import formatting
from integrations.bitrix24.sender import Bitrix24Sender
from tests.factories import make_conversation, make_message, make_product

pytestmark = pytest.mark.django_db

WEBHOOK = "https://portal.example/rest/1/secret123/"
LONG = "Дикая камчатская икра лососёвых рыб, засолка по ГОСТ, без консервантов. " * 20


class QuickSender(Bitrix24Sender):
    """The real sender whose client retries without waiting."""

    client_options = {"backoff": 0}


def url(method: str) -> str:
    return f"{WEBHOOK}{method}.json"


@pytest.fixture(autouse=True)
def portal_settings(settings):
    settings.B24_WEBHOOK_URL = WEBHOOK
    settings.B24_IMBOT_ID = "7"
    settings.B24_IMBOT_CLIENT_ID = ""
    settings.B24_OPERATOR_QUEUE_ID = ""
    settings.B24_OPERATOR_DIALOG_ID = ""
    settings.PUBLIC_URL = "https://bot.example"
    # No client-side rate limit waits (nor a shared bucket) in tests.
    settings.B24_RATE_LIMIT_PER_S = 0
    settings.CHANNEL_SENDERS = {"bitrix24": "integrations.bitrix24.sender.Bitrix24Sender"}


@pytest.fixture
def portal():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def answer(portal, method: str, result=True, status: int = 200):
    portal.post(url(method), json={"result": result}, status=status)


def refuse(portal, method: str, code: str, status: int = 400, description: str = ""):
    portal.post(url(method), json={"error": code, "error_description": description}, status=status)


def sent(portal, method: str = "imbot.message.add") -> list[dict]:
    return [json.loads(call.request.body) for call in portal.calls if call.request.url == url(method)]


def dialog(*, dialog_id: str = "chat42", entity: str = "", **data):
    channel_data = {
        "member_id": "m1",
        "domain": "portal.example",
        "dialog_id": dialog_id,
        "chat_id": dialog_id.removeprefix("chat"),
        "chat_entity_type": entity,
        **data,
    }
    return make_conversation("bitrix24", external_id=f"m1:{dialog_id}", channel_data=channel_data)


def caviar(title="Икра кеты, 100 г", **fields):
    fields = {"price": 1690, "quantity": 5, "url": "https://shop.example/ikra-kety", **fields}
    return make_product(title, **fields)


def bot_reply(conversation=None, text=None, products=(), **fields):
    conversation = conversation or dialog()
    return make_message(conversation, text or "Вот что есть", author="bot", products=products, **fields)


@pytest.fixture
def two_products_reply():
    keta = caviar()
    gorbusha = caviar("Икра горбуши, 250 г", price=2490, url="https://shop.example/ikra-gorbushi")
    text = (
        "Вот что есть в наличии:\n"
        "1. Икра кеты, 100 г — 1 690 ₽\n   https://shop.example/ikra-kety\n"
        "2. Икра горбуши, 250 г — 2 490 ₽\n   https://shop.example/ikra-gorbushi"
    )
    return bot_reply(
        text=text, products=[keta, gorbusha], reply_kind=Message.ReplyKind.CATALOG, suggestions=["Доставка", "Оплата"]
    )


# A bot reply ---------------------------------------------------------------------


def test_bot_reply_is_one_message_to_its_dialog(portal, two_products_reply):
    answer(portal, "imbot.message.add", 501)

    deliver(two_products_reply)

    assert len(portal.calls) == 1
    assert sent(portal)[0]["DIALOG_ID"] == "chat42"


def test_reply_text_is_bb_code(portal, two_products_reply):
    answer(portal, "imbot.message.add", 501)

    deliver(two_products_reply)

    text = sent(portal)[0]["MESSAGE"]
    assert "1. [b]Икра кеты, 100 г[/b] — 1 690 ₽\n" in text
    assert "[url=https://shop.example/ikra-gorbushi]shop.example/ikra-gorbushi[/url]" in text


def test_reply_has_a_card_per_product(portal, two_products_reply):
    answer(portal, "imbot.message.add", 501)

    deliver(two_products_reply)

    blocks = sent(portal)[0]["ATTACH"]["BLOCKS"]
    heads = [block["LINK"] for block in blocks if "LINK" in block]
    prices = [block["GRID"][0]["VALUE"] for block in blocks if "GRID" in block]
    assert [(h["NAME"], h["LINK"]) for h in heads] == [
        ("Икра кеты, 100 г", "https://shop.example/ikra-kety"),
        ("Икра горбуши, 250 г", "https://shop.example/ikra-gorbushi"),
    ]
    assert prices == ["1\u00a0690\u00a0₽", "2\u00a0490\u00a0₽"]


def test_reply_offers_its_suggestions_and_an_operator_button(portal, two_products_reply):
    answer(portal, "imbot.message.add", 501)

    deliver(two_products_reply)

    buttons = sent(portal)[0]["KEYBOARD"]["BUTTONS"]
    assert [b.get("TEXT") for b in buttons if b.get("TEXT")] == ["Доставка", "Оплата", "Позвать оператора"]
    assert next(b for b in buttons if b.get("TEXT") == "Позвать оператора")["COMMAND"] == "operator"


def test_cards_turn_link_previews_off(portal, two_products_reply):
    answer(portal, "imbot.message.add", 501)

    deliver(two_products_reply)

    assert sent(portal)[0]["URL_PREVIEW"] == "N"


def test_reply_without_products_has_no_cards(portal):
    answer(portal, "imbot.message.add", 501)

    deliver(bot_reply(text="Доставка курьером по Москве."))

    assert "ATTACH" not in sent(portal)[0]


def test_message_id_is_stored(portal, two_products_reply):
    answer(portal, "imbot.message.add", 501)

    deliver(two_products_reply)

    two_products_reply.refresh_from_db()
    assert two_products_reply.external_id == "501"
    assert two_products_reply.delivery_state == Message.Delivery.SENT


def test_bot_of_the_dialog_sends(portal):
    answer(portal, "imbot.message.add", 501)

    deliver(bot_reply(dialog(bot_id="9")))

    assert sent(portal)[0]["BOT_ID"] == "9"


def test_configured_bot_sends_when_the_dialog_names_none(portal):
    answer(portal, "imbot.message.add", 501)

    deliver(bot_reply())

    assert sent(portal)[0]["BOT_ID"] == "7"


def test_webhook_bot_is_named_by_its_client_id(portal, settings):
    settings.B24_IMBOT_CLIENT_ID = "storebot-client"
    answer(portal, "imbot.message.add", 501)

    deliver(bot_reply())

    assert sent(portal)[0]["CLIENT_ID"] == "storebot-client"


def test_handoff_reply_has_no_buttons(portal):
    answer(portal, "imbot.message.add", 501)

    deliver(bot_reply(text="Передаю оператору.", reply_kind=Message.ReplyKind.HANDOFF))

    assert "KEYBOARD" not in sent(portal)[0]


def test_operator_reply_goes_as_the_bot_signed_with_a_first_name(portal):
    answer(portal, "imbot.message.add", 502)
    operator = get_user_model().objects.create_user("anna", first_name="Анна", is_staff=True)

    send_operator_reply(conversation=dialog(), operator=operator, text="Сейчас уточню наличие.")

    body = sent(portal)[0]
    assert body["MESSAGE"] == "[b]Анна[/b]: Сейчас уточню наличие."
    assert "KEYBOARD" not in body


def test_cards_of_thirty_products_stay_under_30_kb(portal):
    products = [
        caviar(f"Икра лососёвая №{n}", description=LONG, image_url=f"https://shop.example/{n}.jpg") for n in range(30)
    ]
    answer(portal, "imbot.message.add", 501)

    deliver(bot_reply(text="Много икры", products=products))

    assert formatting.attach_size(sent(portal)[0]["ATTACH"]) <= 30_000


def test_dialog_without_an_id_is_a_permanent_failure(portal):
    conversation = make_conversation("bitrix24", external_id="m1", channel_data={"member_id": "m1"})

    with pytest.raises(DeliveryError) as failure:
        deliver(bot_reply(conversation))

    assert failure.value.permanent
    assert not portal.calls


# Failures ------------------------------------------------------------------------


def test_refusal_is_a_permanent_failure(portal):
    refuse(portal, "imbot.message.add", "DIALOG_ID_EMPTY", description="Dialog ID can't be empty")

    with pytest.raises(DeliveryError) as failure:
        deliver(bot_reply())

    assert failure.value.permanent
    assert "DIALOG_ID_EMPTY" in str(failure.value)


def test_query_limit_is_worth_another_try(portal, settings):
    settings.CHANNEL_SENDERS = {"bitrix24": f"{__name__}.QuickSender"}
    refuse(portal, "imbot.message.add", "QUERY_LIMIT_EXCEEDED", status=503, description="Too many requests")

    with pytest.raises(DeliveryError) as failure:
        deliver(bot_reply())

    assert not failure.value.permanent


def test_query_limit_that_passes_on_the_clients_retry_delivers(portal, settings):
    settings.CHANNEL_SENDERS = {"bitrix24": f"{__name__}.QuickSender"}
    refuse(portal, "imbot.message.add", "QUERY_LIMIT_EXCEEDED", status=503)
    answer(portal, "imbot.message.add", 501)
    reply = bot_reply()

    deliver(reply)

    assert reply.delivery_state == Message.Delivery.SENT


def test_lost_connection_is_worth_another_try(portal, settings):
    settings.CHANNEL_SENDERS = {"bitrix24": f"{__name__}.QuickSender"}
    portal.post(url("imbot.message.add"), body=requests.ConnectionError("reset"))

    with pytest.raises(DeliveryError) as failure:
        deliver(bot_reply())

    assert not failure.value.permanent


def test_refused_cards_are_sent_again_as_text(portal, two_products_reply):
    refuse(portal, "imbot.message.add", "ATTACH_OVERSIZE")
    answer(portal, "imbot.message.add", 501)

    deliver(two_products_reply)

    retry = sent(portal)[1]
    assert "ATTACH" not in retry
    assert "[b]Икра кеты, 100 г[/b]" in retry["MESSAGE"]


# Hand-off ------------------------------------------------------------------------


def test_open_lines_dialog_goes_to_a_free_operator(portal):
    answer(portal, "imopenlines.bot.session.operator")

    hand_off(conversation=dialog(entity="LINES"), reason="the customer asked for a person")

    assert sent(portal, "imopenlines.bot.session.operator") == [{"CHAT_ID": "42"}]


def test_open_lines_dialog_goes_to_the_configured_queue(portal, settings):
    settings.B24_OPERATOR_QUEUE_ID = "3"
    answer(portal, "imopenlines.bot.session.transfer")

    hand_off(conversation=dialog(entity="LINES"), reason="the customer asked for a person")

    assert sent(portal, "imopenlines.bot.session.transfer") == [{"CHAT_ID": "42", "QUEUE_ID": "3", "LEAVE": "N"}]


def test_refused_queue_falls_back_to_a_free_operator(portal, settings):
    settings.B24_OPERATOR_QUEUE_ID = "999"
    refuse(portal, "imopenlines.bot.session.transfer", "OPERATOR_WRONG")
    answer(portal, "imopenlines.bot.session.operator")

    hand_off(conversation=dialog(entity="LINES"), reason="the customer asked for a person")

    assert sent(portal, "imopenlines.bot.session.operator") == [{"CHAT_ID": "42"}]


def test_ordinary_chat_hand_off_tells_staff_with_a_link_to_the_dialog(portal, settings):
    settings.B24_OPERATOR_DIALOG_ID = "chat900"
    answer(portal, "imbot.message.add", 601)
    conversation = dialog(dialog_id="15")

    hand_off(conversation=conversation, reason="the customer asked for a person")

    notice = sent(portal)[0]
    assert notice["DIALOG_ID"] == "chat900"
    assert f"https://bot.example/admin/conversations/conversation/{conversation.pk}/change/" in notice["MESSAGE"]
    assert "the customer asked for a person" in notice["MESSAGE"]


def test_ordinary_chat_hand_off_with_nobody_to_tell_calls_nothing(portal):
    hand_off(conversation=dialog(dialog_id="15"), reason="the customer asked for a person")

    assert not portal.calls
