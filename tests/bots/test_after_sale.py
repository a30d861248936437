"""«Где мой заказ?» and returns in the dialog (bots.after_sale), through the worker's path: a recorded
customer message, integrations.answering.respond, the in-memory channel."""

import pytest

from bots import after_sale
from bots.llm import locmem as llm
from bots.models import AssistantSettings
from conversations.channels import MediaFile
from conversations.models import Conversation, Message
from conversations.services import record_incoming
from integrations.answering import respond
from orders.models import Order, ReturnRequest
from tests.factories import make_conversation, make_product
from tests.orders.conftest import ADDRESS, place_order
from tests.orders.returns_support import JPEG, order_settings, photo

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels")


@pytest.fixture(autouse=True)
def _orders(settings, tmp_path):
    order_settings(settings)
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def dialog(db):
    return make_conversation("telegram", external_id="chat-42", customer_external_id="42", customer_name="Анна")


@pytest.fixture
def caviar(db):
    return make_product("Икра кеты", price=590, quantity=10, unit="100 г")


@pytest.fixture
def shrimp(db):
    return make_product("Креветки тигровые 16/20", price=2190, quantity=5, unit="1 кг")


def ordered(conversation, lines, state=Order.State.NEW, **details) -> Order:
    order = place_order(conversation, lines, **details)
    Order.objects.filter(pk=order.pk).update(state=state)
    order.refresh_from_db()
    return order


def ask(conversation, text, attachments=None) -> Message | None:
    message, _ = record_incoming(conversation=conversation, text=text, attachments=attachments)
    return respond(message)


def crash_before_the_reply(reply: Message) -> None:
    """As if the worker had died after its writes, before the reply was recorded (and so handed off)."""
    Message.objects.filter(pk=reply.pk).delete()
    Conversation.objects.filter(pk=reply.conversation_id).update(state=Conversation.State.BOT)


def with_picture(locmem_channels, file_id="ph-1", content=JPEG):
    locmem_channels.media[file_id] = MediaFile(content=content, filename="IMG_0001.jpg", mime_type="image/jpeg")
    return [photo(file_id)]


# What is read as what ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "где мой заказ 1234",
        "что с заказом?",
        "статус заказа",
        "мой заказ №1002",
        "Где мой заказ?",
        "ГДЕ МОЙ ЗАКАЗ",
        "где мой заказм",  # a slip
        "ult vjq pfrfp",  # «где мой заказ» with the keyboard on English
        "заказ 1003 уже отправили?",
        "как там мой заказ",
        "когда доставят мой заказ",
        "Что по заказу #1005?",
    ],
)
def test_questions_about_an_order_are_read_so(text):
    assert after_sale.read(text).order_status


@pytest.mark.parametrize("text", ["когда привезут?", "где курьер?", "когда привезёте уже?"])
def test_when_the_goods_come_is_read_as_a_delivery_question(text):
    assert after_sale.read(text).delivery_status


@pytest.mark.parametrize(
    "text",
    [
        "где икра?",
        "хочу заказать икру",
        "оформить заказ",
        "корзина",
        "заказать икру кеты 2 банки",
        "как сделать заказ?",
        "минимальная сумма заказа",
        "как оплатить заказ?",
        "когда привезёте, если закажу сейчас?",
        "как работает доставка?",
        "добавьте в заказ креветки",
        "отменить заказ 1002",
    ],
)
def test_ordering_and_product_questions_are_not_about_an_order_or_a_return(text):
    reading = after_sale.read(text)

    assert not (reading.order_status or reading.delivery_status or reading.return_request)


@pytest.mark.parametrize(
    "text",
    [
        "хочу вернуть",
        "пришла испорченная икра",
        "верните деньги, креветки тухлые",
        "икра пришла размороженная",
        "привезли не тот товар",
        "испрченная икра пришла",  # a slip
        "Хочу вернуть заказ 1002",
        "брак!",
        "Пришла тухлая икра, хочу поменять",
    ],
)
def test_complaints_and_returns_are_read_so(text):
    assert after_sale.read(text).return_request


@pytest.mark.parametrize(
    "text",
    [
        "можно ли вернуть товар?",
        "как вернуть товар?",
        "икра не испортится в дороге?",
        "как разморозить икру?",
        "свежая ли рыба?",
        "вернуться к каталогу",
        "хочу заказать икру, прошлая была тухлая",
    ],
)
def test_questions_about_the_policy_or_goods_are_not_a_return(text):
    assert not after_sale.read(text).return_request


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("где заказ №1002", 1002),
        ("заказ #1002", 1002),
        ("номер 1002, что с ним?", 1002),
        ("мой заказ 1002", 1002),
        ("мой телефон +7 912 345-67-89, где заказ?", None),
        ("где мой заказ", None),
    ],
)
def test_the_order_number_is_the_one_the_customer_gives(text, number):
    assert after_sale.read(text).number == number


# Where is my order --------------------------------------------------------------


def test_where_is_my_order_tells_the_latest_orders_state_and_what_happens_next(dialog, caviar):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    latest = ordered(dialog, [(caviar, 3)], state=Order.State.SHIPPED)

    reply = ask(dialog, "где мой заказ?")

    assert f"Заказ №{latest.number}" in reply.text
    assert "курьер в пути" in reply.text
    assert "Икра кеты × 3" in reply.text
    assert ADDRESS in reply.text


def test_a_numbered_order_is_told_rather_than_the_latest(dialog, caviar):
    first = ordered(dialog, [(caviar, 2)], state=Order.State.PREPARING)
    ordered(dialog, [(caviar, 3)])

    reply = ask(dialog, f"что с заказом №{first.number}?")

    assert f"Заказ №{first.number}" in reply.text
    assert "собираем" in reply.text


def test_a_new_order_waits_for_payment_and_a_managers_call(dialog, caviar):
    ordered(dialog, [(caviar, 2)])

    reply = ask(dialog, "статус заказа")

    assert "принят" in reply.text
    assert "Ждём оплату" in reply.text
    assert "менеджер свяжется" in reply.text


def test_someone_elses_order_number_is_answered_as_no_such_order_of_theirs(dialog, caviar):
    ordered(dialog, [(caviar, 2)])
    other = make_conversation("telegram", customer_external_id="77", customer_name="Олег")
    theirs = ordered(other, [(caviar, 5)], address="Москва, ул. Тайная, 13", phone="+79990001122")
    missing = theirs.number + 100

    to_theirs = ask(dialog, f"где заказ {theirs.number}?").text
    to_missing = ask(dialog, f"где заказ {missing}?").text

    assert to_theirs == to_missing.replace(str(missing), str(theirs.number))
    assert "не нашёл" in to_theirs
    assert not any(secret in to_theirs for secret in ["Тайная", "Олег", "× 5", "2 950", "принят"])


def test_without_orders_the_customer_is_told_so_and_offered_an_operator(dialog):
    reply = ask(dialog, "где мой заказ?")

    assert "Не вижу ваших заказов" in reply.text
    assert "оператор" in reply.text
    assert reply.suggestions == ["Позвать оператора"]


def test_when_will_it_come_from_someone_without_orders_is_the_delivery_answer(dialog):
    reply = ask(dialog, "когда привезёте?")

    assert "Доставляем" in reply.text
    assert "Не вижу ваших заказов" not in reply.text


def test_when_will_it_come_is_about_the_order_on_its_way(dialog, caviar):
    order = ordered(dialog, [(caviar, 2)], state=Order.State.SHIPPED)

    reply = ask(dialog, "когда привезут?")

    assert f"Заказ №{order.number}" in reply.text


def test_a_product_question_is_answered_from_the_catalog(dialog, caviar):
    ordered(dialog, [(caviar, 2)], state=Order.State.SHIPPED)

    reply = ask(dialog, "где икра кеты?")

    assert reply.reply_kind == Message.ReplyKind.CATALOG


def test_the_customer_is_the_same_in_another_dialog_of_the_same_user(dialog, caviar):
    order = ordered(dialog, [(caviar, 2)], state=Order.State.PAID)
    again = make_conversation("telegram", external_id="chat-42-new", customer_external_id="42", customer_name="Анна")

    reply = ask(again, "где мой заказ?")

    assert f"Заказ №{order.number}" in reply.text


# Returns ------------------------------------------------------------------------


def test_a_complaint_without_a_photo_asks_for_one_and_quotes_the_policy(dialog, caviar):
    order = ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)

    reply = ask(dialog, "пришла испорченная икра")

    assert f"возврат по заказу №{order.number}" in reply.text
    assert "Пришлите, пожалуйста, фото" in reply.text
    assert "в течение 24 часов" in reply.text  # the demo FAQ's words on returns
    assert reply.suggestions == ["Без фото", "Позвать оператора"]
    dialog.refresh_from_db()
    assert dialog.state == Conversation.State.BOT
    assert ReturnRequest.objects.get().state == ReturnRequest.State.AWAITING_PHOTOS


def test_the_photo_sent_after_goes_to_the_request_and_the_dialog_to_a_person(dialog, caviar, locmem_channels):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    ask(dialog, "пришла испорченная икра")

    reply = ask(dialog, "", attachments=with_picture(locmem_channels))

    request = ReturnRequest.objects.get()
    assert f"Заявка на возврат №{request.pk}" in reply.text
    assert "Фото получил" in reply.text
    assert reply.reply_kind == Message.ReplyKind.HANDOFF
    assert request.photos.get().file.read() == JPEG
    [handoff] = locmem_channels.handoffs
    assert f"Заявка на возврат №{request.pk}" in handoff.reason
    assert f"/admin/orders/returnrequest/{request.pk}/change/" in handoff.reason


def test_without_a_photo_the_customer_says_so_and_the_request_goes_on(dialog, caviar, locmem_channels):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    ask(dialog, "хочу вернуть")

    reply = ask(dialog, "Без фото")

    request = ReturnRequest.objects.get()
    assert (request.state, request.without_photos) == (ReturnRequest.State.NEW, True)
    assert reply.reply_kind == Message.ReplyKind.HANDOFF
    assert "без фото" in locmem_channels.handoffs[0].reason


def test_a_complaint_with_a_photo_hands_off_at_once_with_the_policy(dialog, caviar, locmem_channels):
    order = ordered(dialog, [(caviar, 2)], state=Order.State.WON)

    reply = ask(dialog, "пришла испорченная икра", attachments=with_picture(locmem_channels))

    request = ReturnRequest.objects.get()
    assert (request.order, request.state, request.photos.count()) == (order, ReturnRequest.State.NEW, 1)
    assert "Условия возврата: Если товар оказался ненадлежащего качества" in reply.text
    assert "Передаю заявку менеджеру" in reply.text
    dialog.refresh_from_db()
    assert dialog.state == Conversation.State.OPERATOR


def test_photos_sent_just_before_the_complaint_are_kept_with_it(dialog, caviar, locmem_channels):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    first = ask(dialog, "", attachments=with_picture(locmem_channels))

    reply = ask(dialog, "вот, икра протухла")

    assert first.text == AssistantSettings.load().media_text
    assert ReturnRequest.objects.get().photos.count() == 1
    assert reply.reply_kind == Message.ReplyKind.HANDOFF


def test_the_lines_the_text_names_are_returned_and_only_they(dialog, caviar, shrimp):
    ordered(dialog, [(caviar, 2), (shrimp, 1)], state=Order.State.DELIVERED)

    reply = ask(dialog, "верните деньги, креветки тухлые")

    assert [line.title for line in ReturnRequest.objects.get().lines.all()] == ["Креветки тигровые 16/20"]
    assert "Креветки тигровые 16/20 × 1" in reply.text
    assert "Икра" not in reply.text


def test_a_complaint_naming_no_line_returns_the_whole_order(dialog, caviar, shrimp):
    ordered(dialog, [(caviar, 2), (shrimp, 1)], state=Order.State.DELIVERED)

    ask(dialog, "хочу вернуть")

    assert ReturnRequest.objects.get().lines.count() == 2


def test_the_numbered_order_is_the_one_returned(dialog, caviar):
    older = ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    ordered(dialog, [(caviar, 4)], state=Order.State.DELIVERED)

    ask(dialog, f"хочу вернуть заказ №{older.number}, икра испорчена")

    assert ReturnRequest.objects.get().order == older


def test_a_return_of_someone_elses_order_number_tells_nothing_about_it(dialog, caviar):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    other = make_conversation("telegram", customer_external_id="77", customer_name="Олег")
    theirs = ordered(other, [(caviar, 5)], state=Order.State.DELIVERED, phone="+79990001122")

    reply = ask(dialog, f"хочу вернуть заказ {theirs.number}")

    assert "не нашёл" in reply.text
    assert not ReturnRequest.objects.exists()


def test_an_order_not_yet_delivered_cannot_be_returned_yet(dialog, caviar):
    order = ordered(dialog, [(caviar, 2)], state=Order.State.PREPARING)

    reply = ask(dialog, "икра испорченная, верните деньги")

    assert f"Заказ №{order.number} ещё не доставлен" in reply.text
    assert not ReturnRequest.objects.exists()


def test_a_policy_question_from_someone_without_orders_gets_the_faq(dialog):
    reply = ask(dialog, "возврат")

    assert "Если товар оказался ненадлежащего качества" in reply.text
    assert reply.reply_kind == Message.ReplyKind.FAQ
    assert not ReturnRequest.objects.exists()


def test_a_picture_with_no_request_waiting_gets_the_usual_media_reply(dialog, caviar, locmem_channels):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)

    reply = ask(dialog, "", attachments=with_picture(locmem_channels))

    assert reply.text == AssistantSettings.load().media_text
    assert not ReturnRequest.objects.exists()


def test_another_question_while_waiting_is_answered_and_the_request_still_waits(dialog, caviar):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    ask(dialog, "пришла испорченная икра")

    reply = ask(dialog, "сколько стоит доставка?")

    assert "390 ₽" in reply.text
    assert ReturnRequest.objects.get().state == ReturnRequest.State.AWAITING_PHOTOS


def test_a_sticker_while_waiting_is_asked_again_for_a_photo(dialog, caviar):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    ask(dialog, "пришла испорченная икра")

    reply = ask(dialog, "", attachments=[{"kind": "sticker", "file_id": "st-1", "mime_type": "image/webp"}])

    assert "Пришлите, пожалуйста, фото" in reply.text
    assert ReturnRequest.objects.get().state == ReturnRequest.State.AWAITING_PHOTOS


def test_a_retried_task_makes_one_request_with_one_photo(dialog, caviar, locmem_channels):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    message, _ = record_incoming(
        conversation=dialog, text="пришла испорченная икра", attachments=with_picture(locmem_channels)
    )
    first = respond(message)
    # The worker died after the request was made, before its reply was recorded.
    crash_before_the_reply(first)

    again = respond(Message.objects.get(pk=message.pk))

    assert ReturnRequest.objects.count() == 1
    assert ReturnRequest.objects.get().photos.count() == 1
    assert again.text == first.text


def test_a_retried_photo_only_message_reaches_the_request_again(dialog, caviar, locmem_channels):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    ask(dialog, "хочу вернуть")
    message, _ = record_incoming(conversation=dialog, text="", attachments=with_picture(locmem_channels))
    crash_before_the_reply(respond(message))

    again = respond(Message.objects.get(pk=message.pk))

    assert again.reply_kind == Message.ReplyKind.HANDOFF
    assert ReturnRequest.objects.get().photos.count() == 1


def test_a_refund_question_tells_the_requests_state(dialog, caviar):
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)
    ask(dialog, "хочу вернуть")
    request = ReturnRequest.objects.get()
    ReturnRequest.objects.filter(pk=request.pk).update(state=ReturnRequest.State.APPROVED)
    Conversation.objects.filter(pk=dialog.pk).update(state=Conversation.State.BOT)

    reply = ask(dialog, "когда вернут деньги?")

    assert f"Заявка на возврат №{request.pk}" in reply.text
    assert "одобрена" in reply.text


def test_with_an_llm_the_return_is_handled_the_same_before_the_model(dialog, caviar):
    llm.script.clear()
    llm.requests.clear()
    config = AssistantSettings.load()
    config.provider, config.model, config.use_llm = "locmem", "test-model", True
    config.save()
    ordered(dialog, [(caviar, 2)], state=Order.State.DELIVERED)

    reply = ask(dialog, "пришла испорченная икра")

    assert llm.requests == []
    assert "Пришлите, пожалуйста, фото" in reply.text
