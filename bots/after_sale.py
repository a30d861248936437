"""After the sale: «где мой заказ?» and returns, answered from this customer's own orders.

`answer` reads the message before the catalog and the LLM do, and returns
None for everything else. The customer is the dialog's (orders.services
.customer_for): an order number they give is looked up among their orders
only, and one that is not theirs is answered as not found, exactly like one
that does not exist.

A return («пришла испорченная икра», «хочу вернуть», «верните деньги,
креветки тухлые») opens a request for the latest order delivered or on its
way (or the one numbered), with the lines the text names by their title
words, else all of them (orders.returns). Without a photo the bot asks for
one and the request waits: the next picture, even with no text (see
integrations.voice), or «без фото» sends it to staff. Then the store's
return policy (its FAQ entry) is quoted and the dialog handed to a person,
the request's number and admin link in the hand-off reason.

Ordering («хочу заказать», «оформить заказ», «корзина») is not read here.
"""

import itertools
import re
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rapidfuzz.distance import Levenshtein

from bots.models import AssistantSettings
from bots.replies import Kind, Reply
from catalog.search import NOISE_WORDS
from catalog.selectors import match_faq
from catalog.text import crude_stem, from_latin_layout, has_latin_letters, words
from conversations.channels import OPERATOR_BUTTON
from conversations.models import Conversation, Message
from orders import returns, selectors
from orders.models import Order, OrderLine, OrderState, ReturnRequest, ReturnState
from orders.services import customer_for, money

NO_PHOTOS_BUTTON = "Без фото"
POLICY_QUERY = "возврат товара"
MAX_POLICY_CHARS = 600
# Other orders in progress named under the one asked about.
MAX_OTHER_ORDERS = 3

# --- reading the message ------------------------------------------------------

_ORDER_NOUN = re.compile(r"^(?:заказ|заказа|заказу|заказом|заказе|заказы|заказов|заказам|заказах|заказик\w*)$")
_MINE = re.compile(r"^(?:мой|моего|моему|моим|моем|мои|моих|моя|мою|наш|нашего|нашему|нашим|нашем|наши)$")
# Asking where or how an order is: «где», «что с», «когда», «статус», «отправили?», «оплачен?».
_STATUS = re.compile(
    r"^(?:где|что|когда|скоро|статус\w*|отслед\w*|трек\w*|отправ\w*|оплачен\w*|готов|готова|готово|собра\w*"
    r"|приш[её]л|пришла|пришло|придет|приедет|едет|везут|привез\w*|доставят|доставлен\w*|доставили|доставите"
    r"|ждать|жду|ждем|задерж\w*|опаздыва\w*|долго|почему|потерял\w*|получу|получим)$"
)
# The goods on their way, for a message that names no order («когда привезут?», «где курьер?»).
_DELIVERY = re.compile(
    r"^(?:привез\w*|доставят|доставите|доставили|доставлен\w*|приедет|едет|курьер\w*|пришел|пришло|пришла"
    r"|придет|задерж\w*|опаздыва\w*)$"
)
_WHEN = re.compile(r"^(?:когда|где|скоро|почему|долго|еще|уже)$")
# Ordering, someone else's part of the dialog: «оформить заказ», «хочу заказать», «корзина».
_ORDERING = re.compile(
    r"^(?:оформит\w*|оформи|оформим|оформлю|оформлять|оформляю|сделат\w*|сделаю|сделаем|закажу|закажем"
    r"|заказать|закажи|закажите|заказываю|заказывать|корзин\w*|добав\w*|положит\w*|доложит\w*)$"
)
# Other questions about an order that are not where it is: «сумма заказа», «как оплатить заказ», «отменить заказ».
_NOT_STATUS = re.compile(
    r"^(?:убер\w*|удал\w*|измен\w*|поменя\w*|отмен\w*|минимальн\w*|сумм\w*|оплатит\w*|оплата|оплату|оплаты"
    r"|оплачивать|способ\w*|повтор\w*|стоимост\w*|бесплатн\w*|скидк\w*|промокод\w*|забрат\w*|заберу|самовывоз\w*)$"
)
_RETURN = re.compile(r"^(?:вернут\w*|верните|вернете|вернешь|верни|возврат\w*|возвращ\w*)$")
_REFLEXIVE = ("ся", "сь")
# Said of what came, these are a complaint whatever else the message says.
_SPOILED = re.compile(
    r"^(?:испорч\w*|испорт\w*|тухл\w*|протух\w*|гнил\w*|сгнил\w*|вонюч\w*|воня\w*|вонь|плесен\w*|заплесн\w*"
    r"|отрав\w*|прокис\w*|брак|бракован\w*|некачествен\w*|несвеж\w*)$"
)
# These only when the message says the goods came: «икра пришла размороженная», «банка разбита, доставили вчера».
_DEFECT = re.compile(
    r"^(?:просроч\w*|кисл\w*|разбит\w*|разбил\w*|поврежд\w*|повредил\w*|вскрыт\w*|протек\w*|потек\w*"
    r"|разморож\w*|оттаял\w*|растаял\w*|недовес\w*|недолож\w*|некомплект\w*|пересорт\w*|перепутал\w*)$"
)
_RECEIVED = re.compile(
    r"^(?:приш[её]л|пришла|пришло|пришли|привез\w*|доставил\w*|доставлен\w*|получил\w*|прислал\w*|купил\w*"
    r"|заказывал\w*|заказал\w*|вчера|сегодня|мне|нам|ваш|ваша|ваши|вашу|вашей|вашем)$"
)
# A question about the policy, answered by the FAQ: «можно ли вернуть товар?», «как вернуть, если не понравится?».
_POLICY = re.compile(r"^(?:можно|ли|как|если|условия|услови\w*|правила|правил\w*|какие|принимаете|подлежит)$")
_WANT = re.compile(r"^(?:хочу|хотим|хотел\w*|прошу|просим|нужно|надо|оформит\w*|оформи\w*|требую|верните)$")
# «вернуться к каталогу»: going back in the dialog, not goods.
_NAVIGATION = frozenset({"меню", "каталог", "каталогу", "началу", "списку", "вариантам", "бот", "бота", "боту"})
_PHOTO = re.compile(r"^(?:фото\w*|фотк\w*|фотограф\w*|сфотограф\w*|сфоткат\w*|снимк\w*|снимок|картинк\w*)$")
_NO = frozenset({"без", "нет", "не", "нету"})
# Typed with a slip: a word one edit from one of these forms, or starting one edit from one of these stems.
_FUZZY_FORMS = (
    "заказ", "заказа", "заказу", "заказом", "заказе", "статус", "статуса",
    "возврат", "возврата", "вернуть", "верните",
)  # fmt: skip
_FUZZY_STEMS = ("испорч", "протух")
_NUMBER = re.compile(r"(?:№|#|\bn|\bno|\bномер)\s*(\d{1,10})\b", re.IGNORECASE)
# A bare number beside «заказ»: four digits or more (numbers start at 1001), not a part of a phone, a date,
# a price or a weight.
_BARE_NUMBER = re.compile(
    r"(?<![\d/.,:+\-])(?<!\d\s)(\d{4,10})(?![\d/.,:\-])(?!\s\d)"
    r"(?!\s*(?:(?:г|гр|кг|шт|р|руб\w*|мл|л)\b|₽|%))",
    re.IGNORECASE,
)
_KNOWN = (_ORDER_NOUN, _ORDERING, _NOT_STATUS, _RETURN, _SPOILED, _DEFECT, _STATUS, _RECEIVED)
# Earlier pictures in the dialog kept with a return written after them.
PICTURES_BEFORE = timedelta(minutes=30)


@dataclass(frozen=True)
class Reading:
    order_status: bool = False  # «где мой заказ?», «статус заказа 1002»
    delivery_status: bool = False  # «когда привезут?»: about an order only if one is on its way
    return_request: bool = False  # «хочу вернуть», «пришла испорченная икра»
    return_status: bool = False  # «когда вернут деньги?»
    no_photos: bool = False  # «без фото», «фото нет»
    number: int | None = None


def read(text: str) -> Reading:
    """What the message asks about an order or a return, from its words (ё/е, case, a slip or the layout)."""
    readings = [_read(words(text), text)]
    if has_latin_letters(text) and not re.search("[а-яё]", text, re.IGNORECASE):
        # «ult vjq pfrfp» is «где мой заказ» typed with the keyboard left on English.
        layout = from_latin_layout(text)
        readings.append(_read(words(layout), layout))
    return max(readings, key=lambda r: (r.return_request, r.order_status, r.return_status, r.delivery_status))


def _read(tokens: list[str], text: str) -> Reading:
    tokens = [_corrected(t) for t in tokens]
    has = set(tokens)

    def any_of(regex) -> bool:
        return any(regex.match(t) for t in tokens)

    order_noun = any_of(_ORDER_NOUN)
    ordering = any_of(_ORDERING)
    number = _number(text, order_noun)
    spoiled = any(_SPOILED.match(t) and not _negated(tokens, i) and not _future(t) for i, t in enumerate(tokens))
    defect = any(_DEFECT.match(t) and not _negated(tokens, i) for i, t in enumerate(tokens))
    received = order_noun or any_of(_RECEIVED)
    complaint = not ordering and (spoiled or (defect and received) or _wrong_goods(tokens))
    asks_back = any(_RETURN.match(t) and not t.endswith(_REFLEXIVE) for t in tokens) and not has & _NAVIGATION
    wants = any_of(_WANT)
    policy_question = any_of(_POLICY) and not wants
    return_status = asks_back and not complaint and not wants and bool(has & {"когда", "где", "статус", "что"})
    return_request = complaint or (asks_back and not policy_question and not return_status)
    about_order = not ordering and not any_of(_NOT_STATUS)
    status = about_order and order_noun and (any_of(_MINE) or number is not None or any_of(_STATUS))
    status = status or (about_order and ("статус" in has or any(t.startswith("трек") for t in tokens)))
    delivery = about_order and not order_noun and any_of(_WHEN) and any_of(_DELIVERY)
    return Reading(
        order_status=status and not return_request,
        delivery_status=delivery and not return_request,
        return_request=return_request,
        return_status=return_status,
        no_photos=any_of(_PHOTO) and bool(has & _NO),
        number=number,
    )


def _corrected(token: str) -> str:
    """The word as meant when it is one slip from a word of ours («заказм», «возрат», «испрченная»)."""
    if len(token) < 5 or any(r.match(token) for r in _KNOWN):
        return token
    for form in _FUZZY_FORMS:
        if Levenshtein.distance(token, form) <= 1:
            return form
    for stem in _FUZZY_STEMS:
        if min(Levenshtein.distance(token[:n], stem) for n in (len(stem) - 1, len(stem), len(stem) + 1)) <= 1:
            return stem
    return token


def _negated(tokens: list[str], i: int) -> bool:
    # «не испорчена?» asks; «несвежая» is one word and a complaint.
    return i > 0 and tokens[i - 1] == "не"


def _future(word: str) -> bool:
    # «испортится», «протухнет»: a question about keeping, not what came.
    return word.endswith(("тся", "нет", "нут", "ться"))


def _wrong_goods(tokens: list[str]) -> bool:
    """«пришло не то», «привезли не тот товар», «положили не те креветки»."""
    came = any(_RECEIVED.match(t) or t.startswith(("положил", "прислал")) for t in tokens)
    return came and any(a == "не" and b in ("то", "тот", "та", "те", "ту") for a, b in itertools.pairwise(tokens))


def _number(text: str, order_noun: bool) -> int | None:
    """The order number the customer gives: «№1002», «#1002», «номер 1002», or a bare one beside «заказ»."""
    match = _NUMBER.search(text)
    if match is None and order_noun:
        match = _BARE_NUMBER.search(text)
    if match is None:
        return None
    number = int(match[1])
    return number if 0 < number <= selectors.MAX_NUMBER else None


# --- answering ----------------------------------------------------------------


def answer(conversation: Conversation, message: Message, config: AssistantSettings | None = None) -> Reply | None:
    """The reply to a question about the customer's order or a return, or None for anything else.

    `message.text` is what the customer said (the assistant passes a voice
    message's transcript as its text).
    """
    config = config or AssistantSettings.load()
    done, waiting = selectors.dialog_returns(message)
    if done is not None:
        # A retried task: the request this message opened or completed, answered again the same way.
        return _request_reply(done, message, config, kept=_keep(done, _with_pictures_before(done, message)))
    reading = read(message.text or "")
    if waiting is not None:
        reply = _awaited(waiting, message, reading, config)
        if reply is not None:
            return reply
    if reading.return_request:
        return _open_return(conversation, message, reading, config)
    if reading.return_status:
        reply = _return_status(conversation)
        if reply is not None:
            return reply
    if reading.order_status or reading.delivery_status:
        return _order_status(conversation, reading)
    return None


# Orders -------------------------------------------------------------------------

_STATE_WORDS = {
    OrderState.NEW: "принят",
    OrderState.PAID: "оплачен",
    OrderState.PREPARING: "собираем",
    OrderState.SHIPPED: "передан курьеру, курьер в пути",
    OrderState.DELIVERED: "доставлен",
    OrderState.WON: "выполнен",
    OrderState.CANCELLED: "отменён",
}
_MONTHS = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip
_FINISHED = (OrderState.DELIVERED, OrderState.WON, OrderState.CANCELLED)
NOT_FOUND_HELP = "Если заказывали на сайте или по телефону, напишите «оператор» — сотрудник проверит."


def _order_status(conversation: Conversation, reading: Reading) -> Reply | None:
    customer = customer_for(conversation)
    orders = list(selectors.customer_orders(customer)[:20])
    if reading.number is not None:
        order = selectors.customer_order(customer, reading.number)
        if order is None:
            return _not_found(reading.number, orders)
    elif reading.order_status and orders:
        order = orders[0]
    elif reading.delivery_status:
        # «когда привезёте?» names no order: about theirs only when one is on its way, else the delivery FAQ.
        order = next((o for o in orders if o.state not in _FINISHED), None)
        if order is None:
            return None
    else:
        return Reply(
            "Не вижу ваших заказов в этом чате. " + NOT_FOUND_HELP + " А если хотите сделать заказ — напишите, "
            "что ищете, и я подскажу, что есть в наличии.",
            Kind.FAQ,
            suggestions=[OPERATOR_BUTTON],
        )
    parts = [status_text(order)]
    others = [o for o in orders if o.pk != order.pk and o.state not in _FINISHED][:MAX_OTHER_ORDERS]
    if others:
        listed = ", ".join(f"№{o.number} — {_STATE_WORDS[o.state]}" for o in others)
        parts.append(f"Другие заказы в работе: {listed}.")
    return Reply("\n\n".join(parts), Kind.FAQ, suggestions=[OPERATOR_BUTTON])


def _not_found(number: int, orders: list[Order]) -> Reply:
    # The same words whether the number is someone else's order or none at all.
    text = f"Заказа №{number} среди ваших заказов не нашёл."
    if orders:
        text += " Ваши заказы: " + ", ".join(f"№{o.number}" for o in orders[:5]) + "."
    return Reply(f"{text} {NOT_FOUND_HELP}", Kind.FAQ, suggestions=[OPERATOR_BUTTON])


def status_text(order: Order) -> str:
    """The order's state in the customer's words and what happens next."""
    created = timezone.localtime(order.created_at)
    head = f"Заказ №{order.number} от {created.day} {_MONTHS[created.month - 1]} — {_STATE_WORDS[order.state]}."
    parts = [head, _next_step(order)]
    if order.fulfilment == Order.Fulfilment.DELIVERY and order.state not in _FINISHED and order.address:
        where = f"Доставка: {order.address}"
        parts.append(f"{where}, {order.desired_time}." if order.desired_time else f"{where}.")
    goods = "; ".join(f"{line.title} × {line.quantity}" for line in order.lines.all())
    if goods:
        parts.append(f"В заказе: {goods}. Итого {money(order.total)}.")
    return "\n".join(p for p in parts if p)


def _next_step(order: Order) -> str:
    pickup = order.fulfilment == Order.Fulfilment.PICKUP
    if order.state == OrderState.NEW:
        if order.payment == Order.Payment.ONLINE:
            return "Ждём оплату — менеджер свяжется с вами, чтобы подтвердить заказ."
        return "Менеджер свяжется с вами, чтобы подтвердить заказ; оплата при получении."
    if order.state == OrderState.PAID:
        return "Оплата получена, скоро начнём собирать заказ."
    if order.state == OrderState.PREPARING:
        if pickup:
            return "Напишем здесь, когда заказ будет готов к выдаче."
        return "Как только передадим его курьеру, напишем здесь."
    if order.state == OrderState.SHIPPED:
        if pickup:
            return "Заказ ждёт вас в пункте самовывоза."
        return "Если курьер не приехал в оговорённое время, напишите «оператор»."
    if order.state in (OrderState.DELIVERED, OrderState.WON):
        return "Если с товаром что-то не так, напишите — поможем с заменой или возвратом."
    return "Если это ошибка или нужен новый заказ, напишите — помогу, или позову оператора."


# Returns ------------------------------------------------------------------------

_RETURN_STATE_WORDS = {
    ReturnState.AWAITING_PHOTOS: "ждёт фото товара: пришлите их сюда или напишите «без фото»",
    ReturnState.NEW: "у менеджера, он свяжется с вами здесь",
    ReturnState.APPROVED: "одобрена, менеджер договорится с вами о замене или возврате денег",
    ReturnState.REJECTED: "отклонена; если остались вопросы, напишите «оператор»",
    ReturnState.REFUNDED: "закрыта: деньги вернули, когда они поступят на счёт, зависит от вашего банка",
}


def _open_return(conversation: Conversation, message: Message, reading: Reading, config) -> Reply | None:
    customer = customer_for(conversation)
    if reading.number is not None:
        order = selectors.customer_order(customer, reading.number)
        if order is None:
            return _not_found(reading.number, list(selectors.customer_orders(customer)[:5]))
    else:
        order = selectors.returnable_order(customer) or selectors.customer_orders(customer).first()
        if order is None:
            # No order of theirs here (bought on the site, by phone): answered as before, by the FAQ's
            # policy or the LLM, which may hand the dialog to a person.
            return None
    if order.state not in selectors.RETURNABLE_STATES:
        return Reply(
            f"Заказ №{order.number} ещё не доставлен ({_STATE_WORDS[order.state]}), вернуть его пока нельзя. "
            "Если нужно изменить или отменить заказ, напишите «оператор» — сотрудник поможет.",
            Kind.FAQ,
            suggestions=[OPERATOR_BUTTON],
        )
    existing = selectors.open_return(order)
    if existing is not None:
        if existing.state == ReturnState.AWAITING_PHOTOS:
            return _awaited(existing, message, reading, config) or _ask_photos(existing, quote=False)
        return Reply(
            f"Заявка на возврат №{existing.pk} по заказу №{order.number} уже у менеджера — передаю ему и это "
            "сообщение.",
            Kind.HANDOFF,
            handoff=True,
            handoff_reason=_handoff_reason(existing),
        )
    with_pictures = [*selectors.recent_pictures(message, within=PICTURES_BEFORE), message]
    with_pictures = [m for m in with_pictures if returns.photo_attachments(m)]
    request = returns.open_request(
        conversation=conversation,
        message=message,
        order=order,
        lines=named_lines(message.text or "", list(order.lines.all())),
        reason=message.text or "",
        has_photos=bool(with_pictures),
        without_photos=reading.no_photos,
    )
    return _request_reply(request, message, config, kept=_keep(request, with_pictures))


def _with_pictures_before(request: ReturnRequest, message: Message) -> list[Message]:
    """The messages whose pictures a request keeps: this one's, and for the message that opened it, the
    pictures sent just before (the same list as when it was opened)."""
    found = [message]
    if request.opened_by_id == message.pk:
        found = [*selectors.recent_pictures(message, within=PICTURES_BEFORE), message]
        # Those kept already are left out of recent_pictures; a retry keeps the rest.
        found += [m for m in _kept_messages(request) if m not in found]
    return [m for m in found if returns.photo_attachments(m)]


def _kept_messages(request: ReturnRequest) -> list[Message]:
    ids = set(request.photos.exclude(message=None).values_list("message_id", flat=True))
    return list(Message.objects.filter(pk__in=ids).order_by("pk"))


def _awaited(request: ReturnRequest, message: Message, reading: Reading, config) -> Reply | None:
    """The dialog's request waits for photos: this message's pictures, or «без фото», send it to staff."""
    if returns.photo_attachments(message):
        kept = _keep(request, [message])
        request = returns.submit(request=request, message=message)
        return _request_reply(request, message, config, kept=kept)
    if reading.no_photos:
        request = returns.submit(request=request, message=message, without_photos=True)
        return _request_reply(request, message, config, kept=None)
    if reading.return_request or (message.attachments and not (message.text or "").strip()):
        # Said again, or a sticker or a file that is no picture: the request still waits for a photo.
        return _ask_photos(request, quote=False)
    return None  # another question: answered as usual, the request keeps waiting


def _keep(request: ReturnRequest, messages: list[Message]) -> returns.KeptPhotos | None:
    """The pictures of these messages kept with the request; None when they have none."""
    if not messages:
        return None
    total = returns.KeptPhotos()
    for message in messages:
        kept = returns.keep_photos(request, message)
        total.kept += kept.kept
        total.failed += kept.failed
    return total


def _request_reply(request: ReturnRequest, message: Message, config, *, kept) -> Reply:
    if request.state == ReturnState.AWAITING_PHOTOS:
        return _ask_photos(request, quote=True)
    if request.submitted_by_id not in (None, message.pk):
        # The next picture of an album: the request went to staff with the first one.
        return Reply(f"Добавил фото к заявке на возврат №{request.pk}.", Kind.FAQ)
    parts = [f"Заявка на возврат №{request.pk} по заказу №{request.order.number}: {_goods(request)}."]
    if kept is not None and kept.kept:
        parts.append("Фото получил, они приложены к заявке.")
    elif kept is not None:
        parts.append("Фото сохранить не получилось — менеджер может попросить прислать его ещё раз.")
    elif request.without_photos:
        parts.append("Хорошо, без фото.")
    # Quoted once, with the first reply of the request: a request that waited quoted it when it asked for photos.
    policy = _policy() if request.opened_by_id == message.pk else ""
    if policy:
        parts.append(f"Условия возврата: {policy}")
    parts.append("Передаю заявку менеджеру — он ответит здесь, в чате.")
    note = config.off_duty_note()
    if note:
        parts.append(note)
    return Reply("\n\n".join(parts), Kind.HANDOFF, handoff=True, handoff_reason=_handoff_reason(request, kept))


def _ask_photos(request: ReturnRequest, *, quote: bool) -> Reply:
    text = (
        f"Оформляю возврат по заказу №{request.order.number}: {_goods(request)}.\n"
        "Пришлите, пожалуйста, фото товара и упаковки — сюда, в чат. "
        f"Если сфотографировать не получается, напишите «{NO_PHOTOS_BUTTON.lower()}»."
    )
    policy = _policy() if quote else ""
    if policy:
        text += f"\n\nУсловия возврата: {policy}"
    return Reply(text, Kind.FAQ, suggestions=[NO_PHOTOS_BUTTON, OPERATOR_BUTTON])


def _return_status(conversation: Conversation) -> Reply | None:
    request = selectors.latest_return(customer_for(conversation))
    if request is None:
        return None
    return Reply(
        f"Заявка на возврат №{request.pk} по заказу №{request.order.number} {_RETURN_STATE_WORDS[request.state]}.",
        Kind.FAQ,
        suggestions=[OPERATOR_BUTTON],
    )


def _handoff_reason(request: ReturnRequest, kept: returns.KeptPhotos | None = None) -> str:
    """For staff's notice: which request, with what, and its page in admin."""
    photos = request.photos.count()
    what = f"{photos} фото" if photos else ("без фото" if request.without_photos else "фото нет")
    if kept is not None and kept.failed:
        what += f", не сохранилось: {len(kept.failed)}"
    return f"Заявка на возврат №{request.pk} по заказу №{request.order.number} ({what}): {returns.admin_url(request)}"


def _goods(request: ReturnRequest) -> str:
    return "; ".join(f"{line.title} × {line.quantity}" for line in request.lines.order_by("id")) or "весь заказ"


def _policy() -> str:
    """The store's own words on returns: its FAQ entry, cut to a quotable length."""
    found = match_faq(POLICY_QUERY)
    if not found:
        return ""
    text = found[0].answer.strip()
    if len(text) > MAX_POLICY_CHARS:
        text = text[:MAX_POLICY_CHARS].rsplit(" ", 1)[0] + "…"
    return text


# Which lines ----------------------------------------------------------------------

_SMALL_WORDS = NOISE_WORDS | {"для", "без", "при", "под", "над", "или", "вас", "нас"}


def named_lines(text: str, lines: list[OrderLine]) -> list[OrderLine]:
    """The lines whose titles the text names («икра» -> «Икра кеты», «креветки» -> «Креветки тигровые»),
    all of them when it names none."""
    said = [w for w in words(text) if len(w) >= 3 and w.isalpha() and w not in _SMALL_WORDS]
    named = [
        line
        for line in lines
        if any(_same_word(a, b) for a in said for b in words(line.title) if len(b) >= 3 and b.isalpha())
    ]
    return named or lines


def _same_word(said: str, title: str) -> bool:
    a, b = crude_stem(said), crude_stem(title)
    if a == b:
        return True
    if min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)):
        return True
    # One slip in a longer word: «кревтки».
    return min(len(said), len(title)) >= 5 and Levenshtein.distance(said, title) <= 1
