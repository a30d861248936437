"""TelegramSender against a stubbed Bot API: what sendMessage, sendPhoto and sendMediaGroup receive,
hand-offs to the operators' group, customers' files."""

import json
import logging

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.core.cache import cache

from conversations.channels import DeliveryError
from conversations.models import ChannelAccount, Conversation, Message
from conversations.services import deliver, hand_off, send_operator_reply
from integrations.telegram.sender import TelegramSender
from tests.factories import make_conversation, make_message, make_product
from tests.outages import cache_outage

pytestmark = pytest.mark.django_db

TOKEN = "123456789:AAHsecretPartOfTheBotToken_abcdefghij"
SECRET = TOKEN.partition(":")[2]
API = "https://api.telegram.test"
CHAT = 555001
OPERATORS = "-1002000"

SLEEPS: list[float] = []


class QuickSender(TelegramSender):
    """The real sender whose client retries without waiting, its sleeps recorded."""

    client_options = {"backoff": 0, "sleep": SLEEPS.append}


@pytest.fixture(autouse=True)
def telegram_settings(settings):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_API_URL = API
    settings.TELEGRAM_OPERATOR_CHAT_ID = ""
    settings.PUBLIC_URL = "https://bot.example"
    settings.TELEGRAM_RATE_PER_BOT_PER_S = 1000.0
    settings.TELEGRAM_RATE_PER_CHAT_PER_S = 1000.0
    settings.CHANNEL_SENDERS = {"telegram": "tests.integrations.telegram.test_sender.QuickSender"}
    SLEEPS.clear()
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def url(method: str) -> str:
    return f"{API}/bot{TOKEN}/{method}"


def ok(api, method: str, message_id=100):
    result = [{"message_id": m} for m in message_id] if isinstance(message_id, list) else {"message_id": message_id}
    api.post(url(method), json={"ok": True, "result": result})


def fail(api, method: str, error_code: int, description: str, **parameters):
    body = {"ok": False, "error_code": error_code, "description": description}
    if parameters:
        body["parameters"] = parameters
    api.post(url(method), json=body, status=error_code)


def sent(api, method: str | None = None) -> list[dict]:
    return [
        json.loads(call.request.body)
        for call in api.calls
        if method is None or call.request.url == url(method)
        if call.request.body
    ]


def methods(api) -> list[str]:
    return [call.request.url.rsplit("/", 1)[-1] for call in api.calls]


def chat(**data):
    return make_conversation("telegram", external_id=str(CHAT), channel_data={"chat_id": CHAT, **data})


def caviar(title="Икра кеты, 100 г", **fields):
    fields = {
        "price": 1690,
        "quantity": 5,
        "url": "https://shop.example/ikra-kety",
        "image_url": "https://shop.example/img/ikra-kety.jpg",
        **fields,
    }
    return make_product(title, **fields)


def bot_reply(conversation=None, text="Вот что есть", products=(), **fields):
    return make_message(conversation or chat(), text, author="bot", products=products, **fields)


@pytest.fixture
def two_products_reply():
    keta = caviar()
    gorbusha = caviar(
        "Икра горбуши, 250 г",
        price=2490,
        url="https://shop.example/ikra-gorbushi",
        image_url="https://shop.example/img/ikra-gorbushi.jpg",
    )
    text = "Вот что есть в наличии:\n1. Икра кеты, 100 г — 1 690 ₽\n2. Икра горбуши, 250 г — 2 490 ₽"
    return bot_reply(
        text=text, products=[keta, gorbusha], reply_kind=Message.ReplyKind.CATALOG, suggestions=["Доставка", "Оплата"]
    )


# Text --------------------------------------------------------------------------------


def test_reply_is_escaped_html_to_the_chat(api):
    ok(api, "sendMessage", 101)
    message = bot_reply(text="Скидка <b>не</b> для заказов < 2000 ₽ & без промокода")

    deliver(message)

    (params,) = sent(api)
    assert params["chat_id"] == CHAT
    assert params["parse_mode"] == "HTML"
    assert params["text"] == "Скидка &lt;b&gt;не&lt;/b&gt; для заказов &lt; 2000 ₽ &amp; без промокода"
    # No products: link previews stay as Telegram has them.
    assert "link_preview_options" not in params
    message.refresh_from_db()
    assert (message.delivery_state, message.external_id) == (Message.Delivery.SENT, "101")


def test_chat_id_falls_back_to_the_dialog_id(api):
    ok(api, "sendMessage")
    conversation = make_conversation("telegram", external_id="777")

    deliver(bot_reply(conversation))

    assert sent(api)[0]["chat_id"] == "777"


def test_a_5000_character_answer_goes_as_two_messages_split_at_a_paragraph(api):
    ok(api, "sendMessage", 201)
    ok(api, "sendMessage", 202)
    first = ("Камчатская икра лососёвых рыб. " * 100).strip()  # ~3 100 characters
    second = ("Доставка курьером по Москве в день заказа. " * 45).strip()  # ~1 900
    text = f"{first}\n\n{second}"
    assert len(text) > 4096
    message = bot_reply(text=text, suggestions=["Доставка"])

    deliver(message)

    parts = sent(api, "sendMessage")
    assert [p["text"] for p in parts] == [first, second]
    # The buttons go under the last part only.
    assert "reply_markup" not in parts[0]
    assert parts[1]["reply_markup"]["inline_keyboard"][-1][0]["text"] == "Позвать оператора"
    message.refresh_from_db()
    assert message.external_id == "202"


def test_a_send_that_fails_half_way_resumes_without_repeating_a_part(api):
    first = ("Камчатская икра лососёвых рыб. " * 100).strip()
    second = ("Доставка курьером по Москве в день заказа. " * 45).strip()
    message = bot_reply(text=f"{first}\n\n{second}")
    ok(api, "sendMessage", 301)
    for _ in range(3):
        fail(api, "sendMessage", 502, "Bad Gateway")

    with pytest.raises(DeliveryError) as caught:
        deliver(message)
    assert not caught.value.permanent

    api.replace(responses.POST, url("sendMessage"), json={"ok": True, "result": {"message_id": 302}})
    calls_before = len(api.calls)
    assert deliver(message)

    resent = [json.loads(c.request.body)["text"] for c in list(api.calls)[calls_before:]]
    assert resent == [second]
    message.refresh_from_db()
    assert (message.delivery_state, message.external_id) == (Message.Delivery.SENT, "302")


def test_operator_reply_is_signed_and_escaped_without_buttons(api):
    ok(api, "sendMessage")
    conversation = chat()
    operator = get_user_model().objects.create_user("maria", first_name="Мария <Ивановна>")

    send_operator_reply(conversation=conversation, operator=operator, text="Соберём заказ к 18:00 & позвоним")

    (params,) = sent(api)
    assert params["text"] == "<b>Мария &lt;Ивановна&gt;</b>: Соберём заказ к 18:00 &amp; позвоним"
    assert "reply_markup" not in params


# Pictures and buttons --------------------------------------------------------------------------


def test_products_go_as_an_album_then_the_text_with_the_keyboard(api, two_products_reply):
    ok(api, "sendMediaGroup", [401, 402])
    ok(api, "sendMessage", 403)

    deliver(two_products_reply)

    assert methods(api) == ["sendMediaGroup", "sendMessage"]
    album, text = sent(api)
    assert [m["media"] for m in album["media"]] == [
        "https://shop.example/img/ikra-kety.jpg",
        "https://shop.example/img/ikra-gorbushi.jpg",
    ]
    assert album["media"][0]["caption"] == (
        "1. <b>Икра кеты, 100 г</b> — 1\u00a0690\u00a0₽\n2. <b>Икра горбуши, 250 г</b> — 2\u00a0490\u00a0₽"
    )
    assert "caption" not in album["media"][1]
    assert album["disable_notification"] is True
    assert "<b>Икра кеты, 100 г</b>" in text["text"]
    assert text["link_preview_options"] == {"is_disabled": True}
    rows = text["reply_markup"]["inline_keyboard"]
    assert [row[0]["text"] for row in rows] == [
        "Икра кеты, 100 г",
        "Икра горбуши, 250 г",
        "Доставка",
        "Оплата",
        "Позвать оператора",
    ]
    assert rows[0][0]["url"] == "https://shop.example/ikra-kety"
    assert rows[-1][0]["callback_data"] == "op"
    two_products_reply.refresh_from_db()
    assert two_products_reply.external_id == "403"


def test_one_product_goes_as_a_photo_with_its_caption(api):
    ok(api, "sendPhoto", 501)
    ok(api, "sendMessage", 502)
    keta = caviar()

    deliver(bot_reply(text="Икра кеты, 100 г — 1 690 ₽", products=[keta]))

    assert methods(api) == ["sendPhoto", "sendMessage"]
    photo = sent(api, "sendPhoto")[0]
    assert photo["photo"] == "https://shop.example/img/ikra-kety.jpg"
    assert photo["caption"].startswith("<b>Икра кеты, 100 г</b>\n1\u00a0690\u00a0₽")
    assert photo["parse_mode"] == "HTML"


@pytest.mark.parametrize(
    "description",
    [
        "Bad Request: failed to get HTTP URL content",
        "Bad Request: wrong file identifier/HTTP URL specified",
        "Bad Request: WEBPAGE_CURL_FAILED",
        "Bad Request: wrong type of the web page content",
    ],
)
def test_a_refused_picture_falls_back_to_the_text(api, two_products_reply, caplog, description):
    fail(api, "sendMediaGroup", 400, description)
    ok(api, "sendMessage", 601)

    assert deliver(two_products_reply)

    assert methods(api) == ["sendMediaGroup", "sendMessage"]
    assert sent(api, "sendMessage")[0]["reply_markup"]["inline_keyboard"]
    two_products_reply.refresh_from_db()
    assert (two_products_reply.delivery_state, two_products_reply.external_id) == (Message.Delivery.SENT, "601")
    assert "pictures" in caplog.text


def test_products_without_pictures_send_the_text_only(api):
    ok(api, "sendMessage")

    deliver(bot_reply(products=[caviar(image_url="")]))

    assert methods(api) == ["sendMessage"]


def test_handoff_reply_has_no_operator_button(api):
    ok(api, "sendMessage")

    deliver(bot_reply(text="Передаю оператору", reply_kind=Message.ReplyKind.HANDOFF, suggestions=["Доставка"]))

    rows = sent(api)[0]["reply_markup"]["inline_keyboard"]
    assert [row[0]["text"] for row in rows] == ["Доставка"]


# Failures -------------------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(api):
    fail(api, "sendMessage", 429, "Too Many Requests: retry after 5", retry_after=5)
    ok(api, "sendMessage", 701)
    message = bot_reply()

    assert deliver(message)

    assert SLEEPS == [5.0]
    message.refresh_from_db()
    assert message.external_id == "701"


@pytest.mark.parametrize(
    ("code", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (400, "Bad Request: USER_IS_BLOCKED"),
        (403, "Forbidden: user is deactivated"),
    ],
)
def test_blocked_bot_is_permanent_and_marks_the_conversation(api, code, description):
    fail(api, "sendMessage", code, description)
    message = bot_reply()

    with pytest.raises(DeliveryError) as caught:
        deliver(message)

    assert caught.value.permanent
    assert len(api.calls) == 1  # not retried
    assert Conversation.objects.get(pk=message.conversation_id).blocked_at is not None
    message.refresh_from_db()
    assert message.delivery_state == Message.Delivery.FAILED

    # Nothing more is sent to a customer who blocked the bot.
    with pytest.raises(DeliveryError):
        deliver(bot_reply(message.conversation))
    assert len(api.calls) == 1


def test_chat_not_found_is_permanent_but_not_a_block(api):
    fail(api, "sendMessage", 400, "Bad Request: chat not found")
    message = bot_reply()

    with pytest.raises(DeliveryError) as caught:
        deliver(message)

    assert caught.value.permanent
    assert Conversation.objects.get(pk=message.conversation_id).blocked_at is None


def test_no_bot_token_is_a_permanent_failure(api, settings):
    settings.TELEGRAM_BOT_TOKEN = ""

    with pytest.raises(DeliveryError) as caught:
        deliver(bot_reply())

    assert caught.value.permanent
    assert len(api.calls) == 0


def test_the_token_is_in_no_log_record_nor_error(api, caplog):
    caplog.set_level(logging.DEBUG)
    fail(api, "sendMessage", 400, f"Bad Request: can't parse {url('sendMessage')}")
    for _ in range(3):
        api.post(url("sendMessage"), body=requests.ConnectionError(f"Max retries exceeded with url: {url('x')}"))
    first, second = bot_reply(), bot_reply()

    for message in (first, second):
        with pytest.raises(DeliveryError) as caught:
            deliver(message)
        message.refresh_from_db()
        for text in (str(caught.value), message.delivery_error):
            assert TOKEN not in text
            assert SECRET not in text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert SECRET not in record.getMessage()


# Hand-off -------------------------------------------------------------------------------------


def test_hand_off_tells_the_operators_group(api, settings):
    settings.TELEGRAM_OPERATOR_CHAT_ID = OPERATORS
    ok(api, "sendMessage")
    conversation = chat(username="anna_fish")
    make_message(conversation, "Хочу заказать икру <оптом>")
    bot_reply(conversation, text="Передаю оператору")

    hand_off(conversation=conversation, reason="просит оператора")

    (params,) = sent(api)
    assert params["chat_id"] == OPERATORS
    assert params["parse_mode"] == "HTML"
    assert params["link_preview_options"] == {"is_disabled": True}
    text = params["text"]
    assert text.startswith("<b>Клиенту нужен оператор</b>\n")
    assert "Клиент: Анна (@anna_fish)" in text
    assert "Причина: просит оператора" in text
    assert "<b>Клиент</b>: Хочу заказать икру &lt;оптом&gt;" in text
    assert "<b>Бот</b>: Передаю оператору" in text
    admin = f"https://bot.example/admin/conversations/conversation/{conversation.pk}/change/"
    assert f'<a href="{admin}">Открыть диалог в админке</a>' in text


def test_an_account_has_its_own_operators_chat(api, settings):
    settings.TELEGRAM_OPERATOR_CHAT_ID = OPERATORS
    account = ChannelAccount.objects.create(channel="telegram", key="second", token=TOKEN, operator_chat_id="-3003")
    conversation = make_conversation("telegram", account_id=account.pk, channel_data={"chat_id": CHAT})
    ok(api, "sendMessage")

    QuickSender().hand_off(conversation, "просит оператора")

    assert sent(api)[0]["chat_id"] == "-3003"


def test_without_an_operators_chat_hand_off_only_logs(api, caplog):
    caplog.set_level(logging.INFO)
    conversation = chat()

    QuickSender().hand_off(conversation, "просит оператора")

    assert len(api.calls) == 0
    assert "no operators' chat" in caplog.text


def test_a_group_that_became_a_supergroup_gets_the_notice_at_its_new_id(api):
    account = ChannelAccount.objects.create(channel="telegram", key="third", token=TOKEN, operator_chat_id="-4004")
    conversation = make_conversation("telegram", account_id=account.pk, channel_data={"chat_id": CHAT})
    fail(api, "sendMessage", 400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1004)
    ok(api, "sendMessage")

    QuickSender().hand_off(conversation, "просит оператора")

    assert [p["chat_id"] for p in sent(api)] == ["-4004", "-1004"]
    account.refresh_from_db()
    assert account.operator_chat_id == "-1004"


# Files ------------------------------------------------------------------------------------------


def voice(**fields):
    attachment = {"kind": "voice", "file_id": "VOICE-1", "mime_type": "audio/ogg", "file_size": 5, **fields}
    return make_message(chat(), "", attachments=[attachment]), attachment


def test_fetch_media_downloads_the_file(api):
    message, attachment = voice()
    api.post(url("getFile"), json={"ok": True, "result": {"file_id": "VOICE-1", "file_path": "voice/file_7.oga"}})
    api.get(f"{API}/file/bot{TOKEN}/voice/file_7.oga", body=b"OggS!")

    media = QuickSender().fetch_media(message, attachment, max_bytes=1000)

    assert (media.content, media.filename, media.mime_type) == (b"OggS!", "file_7.oga", "audio/ogg")
    assert json.loads(api.calls[0].request.body) == {"file_id": "VOICE-1"}


def test_a_file_too_large_is_refused_before_any_request(api):
    message, attachment = voice(file_size=30 * 1024 * 1024)

    with pytest.raises(DeliveryError) as caught:
        QuickSender().fetch_media(message, attachment, max_bytes=20 * 1024 * 1024)

    assert caught.value.permanent
    assert len(api.calls) == 0


def test_a_file_getfile_says_is_too_large_is_not_downloaded(api):
    message, attachment = voice(file_size=None)
    result = {"file_id": "VOICE-1", "file_size": 5000, "file_path": "voice/file_8.oga"}
    api.post(url("getFile"), json={"ok": True, "result": result})

    with pytest.raises(DeliveryError) as caught:
        QuickSender().fetch_media(message, attachment, max_bytes=1000)

    assert caught.value.permanent
    assert methods(api) == ["getFile"]


def test_a_failed_download_is_a_delivery_error_without_the_token(api, caplog):
    caplog.set_level(logging.DEBUG)
    message, attachment = voice()
    api.post(url("getFile"), json={"ok": True, "result": {"file_id": "VOICE-1", "file_path": "voice/file_9.oga"}})
    file_url = f"{API}/file/bot{TOKEN}/voice/file_9.oga"
    for _ in range(3):
        api.get(file_url, body=requests.ConnectionError(f"Connection aborted: {file_url}"))

    with pytest.raises(DeliveryError) as caught:
        QuickSender().fetch_media(message, attachment, max_bytes=1000)

    assert not caught.value.permanent
    for text in (str(caught.value), *(r.getMessage() for r in caplog.records)):
        assert TOKEN not in text
        assert SECRET not in text


def test_a_file_telegram_will_not_serve_is_permanent(api):
    message, attachment = voice()
    fail(api, "getFile", 400, "Bad Request: file is too big")

    with pytest.raises(DeliveryError) as caught:
        QuickSender().fetch_media(message, attachment, max_bytes=1000)

    assert caught.value.permanent


def test_a_long_answer_is_not_started_while_the_cache_cannot_say_what_was_sent_before(api):
    # Seen in the Redis drill: the cache raised after the send was claimed, and the
    # claim held the reply for minutes. Now nothing is sent and the claim is given back.
    message = bot_reply(text=("Камчатская икра лососёвых рыб. " * 100) + "\n\n" + ("Доставка. " * 200))

    with cache_outage(), pytest.raises(DeliveryError) as caught:
        deliver(message)

    assert not caught.value.permanent
    assert methods(api) == []
    message.refresh_from_db()
    assert message.delivery_claimed_at is None
    assert message.delivery_state == Message.Delivery.FAILED


def test_a_message_in_parts_sent_whole_is_not_sent_again_by_a_second_try(api):
    # A worker killed after the last part and before the save: the next try must not repeat it.
    ok(api, "sendMessage", 401)
    ok(api, "sendMessage", 402)
    message = bot_reply(text=("Камчатская икра лососёвых рыб. " * 100) + "\n\n" + ("Доставка. " * 200))
    sender = QuickSender()
    assert sender.send(message) == "402"
    calls = len(api.calls)

    assert sender.send(message) == "402"

    assert len(api.calls) == calls


def test_a_question_for_the_phone_carries_the_contact_button_instead_of_the_inline_ones(api):
    ok(api, "sendMessage")

    deliver(bot_reply(text="Для заказа нужен номер телефона.", suggestions=["Поделиться номером", "Позвать оператора"]))

    markup = sent(api)[0]["reply_markup"]
    assert markup["keyboard"] == [[{"text": "Поделиться номером", "request_contact": True}]]
    assert "inline_keyboard" not in markup
