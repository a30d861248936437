"""Ordering in the dialog: the customer's words about a basket and a checkout,
read and answered in Russian.

«хочу заказать икру кеты 500 г, 2 шт», «добавь ещё креветки тигровые»,
«убери креветки», «корзина», «оформляем», «отмена», then the checkout's
questions (phone, delivery or pickup, address, time, payment, comment), a
summary and «подтверждаю». The basket and the step are orders.basket's; this
module reads messages into them and says what happened. Every reply carries
the basket it leaves (Reply.basket), which the caller records with the reply.

Without an LLM everything here answers; with one, the model adds and removes
products through tools (TOOLS, `tool_reply`), and the checkout's steps are
still read here, not by the model. A message that is not about the order (a
question in the middle of the checkout) is answered as any other, the basket
kept, and the step's question is asked again after the answer (`reminder`).
"""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from bots.dialog import DialogContext
from bots.intents import read_followup
from bots.replies import Kind, Reply, out_of_stock_reply
from catalog.models import Product
from catalog.presentation import money
from catalog.query import find_products, has_size, pack_size
from catalog.search import NOISE_WORDS, corrected_query, parse_query
from catalog.selectors import match_faq
from catalog.text import crude_stem, normalize_text, other_form_stems, words
from catalog.vocabulary import title_vocabulary
from conversations.channels import SHARE_PHONE_BUTTON
from conversations.models import Channel, Conversation, Message
from orders import basket as baskets
from orders.basket import Basket, Step
from orders.models import Order
from orders.phones import InvalidPhone, display_phone, normalize_phone
from orders.services import OrderChanged, OrderError, create_order, customer_for, minimum_total, set_phone

logger = logging.getLogger(__name__)

CONTEXT_KEY = baskets.CONTEXT_KEY
CHECKOUT_BUTTON = "Оформить заказ"
BASKET_BUTTON = "Корзина"
CONFIRM_BUTTON = "Подтверждаю"
CANCEL_BUTTON = "Отмена"
CHOOSE_PREFIX = "Беру"
# Products offered when an item is ambiguous.
MAX_CHOICE = 5


# Reading the customer ---------------------------------------------------------

_UNIT = (
    r"(?:шт\w*|штук\w*|банк\w*|банок|баноч\w*|упаков\w*|уп\b\.?|пач\w*|пакет\w*|порци\w*|короб\w*|набор\w*|единиц\w*)"
)
_WORD_NUMBERS = {
    "один": 1,
    "одну": 1,
    "одна": 1,
    "одно": 1,
    "два": 2,
    "две": 2,
    "пару": 2,
    "пара": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
    "девять": 9,
    "десять": 10,
}
# «2 шт», «3 банки», «две упаковки», «x2», «2х»; not «16/20», a shrimp's size.
_COUNT_RE = re.compile(rf"(?<![\d/.,])(\d{{1,3}})\s*{_UNIT}", re.IGNORECASE)
_WORD_COUNT_RE = re.compile(rf"(?<![а-я])({'|'.join(_WORD_NUMBERS)})\s+{_UNIT}", re.IGNORECASE)
_TIMES_RE = re.compile(r"(?:(?<![\w/])[xх×*]\s?(\d{1,3})(?![\d/])|(?<![\d/.,])(\d{1,3})\s?[xх×](?![а-яa-z]))")
# A number said alone, «возьму две».
_BARE_WORD_NUMBERS = frozenset({"одну", "один", "одна", "две", "два", "три", "четыре", "пять", "пару"})
# «сделай 3 банки», «пусть будет две», «поменяй на 4»: the quantity of what is in the basket, set.
_SETTING = re.compile(r"^(?:сдела\w*|поменя\w*|измени\w*|исправ\w*|пусть|будет|количество)$")

_ADD = re.compile(
    r"^(?:закаж\w*|заказат\w*|заказыва\w*|добав\w*|докин\w*|полож\w*|бер[уеё]\w*|возьм\w*|"
    r"куплю|купить|купим|купите|покупаю)$"
)
# «добавляете консерванты?», «заказывают ли …»: about doing, not asking to do it.
_DESCRIBING = re.compile(r"(?:ете|ет|ют|ут|ешь)$")
_REMOVE = re.compile(r"^(?:убер\w*|убра\w*|удал\w*|выкин\w*|исключ\w*|вычеркн\w*)$")
_CHECKOUT = re.compile(r"^оформ\w*$")
_CANCEL = re.compile(r"^(?:отмен\w*|передумал\w*)$")
_CLEAR = re.compile(r"^(?:очист\w*|очищ\w*)$")
_BASKET = re.compile(r"^корзин\w*$")
_CONFIRM = re.compile(
    r"^(?:подтвер\w*|да|верно|правильно|ок|окей|ok|согласен|согласна|отлично|конечно|заказываю|давайте|"
    r"оформ\w*|все|всё|точно|ага|угу|good|yes)$"
)
_NO = frozenset({"нет", "не", "неверно", "неправильно", "но", "однако", "измени", "изменить", "поменяй", "поменять"})
_DONE_PHRASES = ("это все", "на этом все", "больше ничего", "больше не надо", "больше не нужно", "пока все")

_DELIVERY = re.compile(r"^(?:достав\w*|курьер\w*|привез\w*|привоз\w*|привези\w*)$")
_PICKUP = re.compile(r"^(?:самовывоз\w*|забер\w*|заберу|самостоятельно)$")
_ONLINE = re.compile(r"^(?:онлайн|online|перевод\w*|сбп|ссылк\w*|предоплат\w*|сайте)$")
_CARD = re.compile(r"^(?:карт\w*|терминал\w*|безнал\w*)$")
_CASH = re.compile(r"^(?:налич\w*|нал|кеш|кэш|cash)$")
_NO_COMMENT = re.compile(r"^(?:нет|нету|ничего|не|без|неа|no|ок|окей|ok|хорошо|норм\w*|все)$")
_QUESTION_WORDS = frozenset(
    {"как", "какой", "какая", "какие", "каким", "сколько", "где", "почему", "зачем", "можно", "есть", "что", "а", "вы"}
)
_PHONE_RE = re.compile(r"\+?\d[\d\s\-().\u00a0]{8,18}\d")
_POINTING = frozenset(
    {"его", "ее", "их", "это", "эту", "этот", "эти", "этих", "него", "нее", "них", "такой", "такую", "такие", "вот"}
)
# Words of an ordering message that name no product.
_ORDER_WORDS = frozenset(
    """хочу хотим хотел хотела хотелось бы мне нам пожалуйста пжл плиз еще ещё в корзину корзина корзины
    давайте давай тогда и а ну у вас можно мы я штуку штуки позицию товар товары заказ заказа заказе
    из из-за с со вариант варианта на лучше сразу""".split()
)


def _normal(text: str) -> str:
    return normalize_text(text)


def _tokens(text: str) -> list[str]:
    return words(text)


@dataclass
class Wanted:
    """What an ordering message asks for: the product words, how many, and a pointer at what was shown."""

    query: str
    quantity: int | None
    more: bool  # «ещё»: on top of what the basket has
    ordinal: int | None
    pointing: bool


def read_quantity(text: str) -> tuple[int | None, str]:
    """How many items («2 шт», «две банки», «x3»), and the text without it."""
    for regex in (_COUNT_RE, _WORD_COUNT_RE, _TIMES_RE):
        match = regex.search(text)
        if match:
            value = next(g for g in match.groups() if g)
            number = _WORD_NUMBERS.get(value.lower()) or int(value)
            return (number if number > 0 else None), text[: match.start()] + " " + text[match.end() :]
    for token in _tokens(text):
        if token in _BARE_WORD_NUMBERS:
            return _WORD_NUMBERS[token], re.sub(rf"(?<![а-я]){token}(?![а-я])", " ", _normal(text))
    return None, text


def _wanted(text: str) -> Wanted:
    quantity, rest = read_quantity(_normal(text))
    tokens = _tokens(rest)
    more = any(t == "еще" for t in tokens)
    pointing = any(t in _POINTING for t in tokens)
    # The product words, with a pack size («500 г») and a shrimp's size («16/20») as written.
    kept = [t for t in rest.split() if not _is_order_word(t)]
    size, without_size = pack_size(" ".join(kept))
    plain = re.sub(r"\d+\s*/\s*\d+", " ", without_size)
    numbers = [t for t in _tokens(plain) if t.isdigit()]
    follow = read_followup(rest)
    named = [w for w in follow.words if not (w.isdigit() or _is_order_word(w))]
    if not named and not size:
        # «беру второй», «закажу его»: a pointer at what was shown.
        return Wanted("", quantity, more, follow.ordinal, pointing)
    if numbers and quantity is None and 1 <= int(numbers[0]) <= 99:
        # «закажу 2 икры кеты»: a number before the product is how many.
        quantity = int(numbers[0])
        kept = _without_first(kept, numbers[0])
    return Wanted(" ".join(kept).strip(" ,.;:!"), quantity, more, None, pointing)


def _is_order_word(token: str) -> bool:
    bare = token.strip(" ,.;:!?«»\"'()")
    return (
        not bare
        or bool(_ADD.match(bare) or _REMOVE.match(bare) or _SETTING.match(bare))
        or bare in _ORDER_WORDS
        or bare in _POINTING
        or (bare in NOISE_WORDS)
    )


def _without_first(tokens: list[str], number: str) -> list[str]:
    for i, token in enumerate(tokens):
        if token.strip(" ,.;:!") == number:
            return tokens[:i] + tokens[i + 1 :]
    return tokens


def _is_question(text: str) -> bool:
    tokens = _tokens(text)
    return "?" in text or bool(tokens and tokens[0] in _QUESTION_WORDS)


def _asks(text: str) -> bool:
    """A question, read strictly: «а ещё краба камчатского» orders, «а ещё крабы есть?» asks."""
    tokens = [t for t in _tokens(text) if t not in ("а", "и", "еще", "ну")]
    return "?" in text or bool(tokens and tokens[0] in _QUESTION_WORDS)


_TOTAL = frozenset({"всего", "итого", "получается", "выходит", "вместе", "общая", "сумма", "сумму"})
_TIME_RE = re.compile(
    r"\b\d{1,2}[:.]\d{2}\b|(?<![а-я])(?:завтра|сегодня|послезавтра|утр\w*|вечер\w*|днем|обед\w*|"
    r"понедельник|вторник|сред[уа]|четверг|пятниц\w*|суббот\w*|воскресень\w*)(?![а-я])"
)


def _says_done(text: str) -> bool:
    normal = _normal(text)
    return any(phrase in normal for phrase in _DONE_PHRASES)


def _phone_in(text: str) -> str | None:
    for match in _PHONE_RE.finditer(text):
        try:
            return normalize_phone(match[0])
        except InvalidPhone:
            continue
    return None


def _fulfilment_in(tokens: list[str]) -> str:
    if any(_PICKUP.match(t) for t in tokens) or "сам" in tokens:
        return Order.Fulfilment.PICKUP
    if any(_DELIVERY.match(t) for t in tokens):
        return Order.Fulfilment.DELIVERY
    return ""


def _payment_in(tokens: list[str]) -> str:
    if any(_ONLINE.match(t) for t in tokens):
        return Order.Payment.ONLINE
    if any(_CASH.match(t) for t in tokens):
        return Order.Payment.CASH
    if any(_CARD.match(t) for t in tokens):
        return Order.Payment.CARD
    return ""


def _confirms(text: str) -> bool:
    tokens = _tokens(text)
    if not tokens or any(t in _NO for t in tokens) or len(tokens) > 6:
        return False
    return any(_CONFIRM.match(t) for t in tokens)


# The module's entry points ------------------------------------------------------


def basket_of(conversation: Conversation) -> Basket:
    return baskets.load(conversation.dialog_context)


def answer(
    conversation: Conversation,
    message: Message,
    text: str,
    *,
    context: DialogContext | None,
    with_llm: bool = False,
) -> Reply | None:
    """The reply when the message is about the order; None when it is about something else.

    `with_llm`: the model adds and removes products (its tools); here only
    the checkout, the basket's commands and a pending choice are read.
    """
    basket = basket_of(conversation)
    tokens = _tokens(text)
    if not tokens:
        if basket.step == Step.COMMENT and text.strip():
            # «-», «—»: no comment.
            return _checkout_answer(conversation, message, "нет", basket, context=context, with_llm=with_llm)
        return None
    if not basket.is_empty and (
        any(_CANCEL.match(t) for t in tokens) or (any(_CLEAR.match(t) for t in tokens) and _mentions_basket(tokens))
    ):
        return _reply("Заказ отменён, корзина очищена. Если захотите заказать снова — напишите.", Basket(), [])
    if basket.choice:
        chosen = _chosen(text, basket)
        if chosen is not None:
            # «первые, 3 штуки»: the number said with the choice wins.
            quantity = read_quantity(text)[0] or basket.choice_quantity
            return _in_checkout(conversation, _added(conversation, basket, chosen, quantity, more=True))
    if basket.in_checkout:
        return _checkout_answer(conversation, message, text, basket, context=context, with_llm=with_llm)
    if basket.is_empty and any(t.startswith("подтвер") for t in tokens):
        placed = _placed_just_now(conversation)
        if placed is not None:
            # «подтверждаю» sent twice: the second finds the order made.
            return _reply(f"Заказ №{placed.number} уже оформлен, всё в порядке.", basket, [])
    if any(_CHECKOUT.match(t) for t in tokens) or (not basket.is_empty and _says_done(text)):
        return _start_checkout(conversation, basket)
    if _asks_for_basket(tokens) or (not basket.is_empty and "сколько" in tokens and _TOTAL & set(tokens)):
        # «корзина», «сколько всего получается?»
        return _show(basket)
    if with_llm:
        return None
    return _edit(conversation, text, tokens, basket, context)


def _mentions_basket(tokens: list[str]) -> bool:
    return any(_BASKET.match(t) for t in tokens) or "все" in tokens or "заказ" in tokens


def _asks_for_basket(tokens: list[str]) -> bool:
    """«корзина», «что в корзине?», «покажи корзину»: the basket, nothing added or removed."""
    return any(_BASKET.match(t) for t in tokens) and not any(_ADD.match(t) or _REMOVE.match(t) for t in tokens)


def reminder(conversation: Conversation) -> str:
    """The checkout's current question, to ask again after answering something else; "" outside a checkout."""
    basket = basket_of(conversation)
    if not basket.in_checkout:
        return ""
    return _question(conversation, basket)[0]


def _asks_to_add(token: str) -> bool:
    return bool(_ADD.match(token)) and not _DESCRIBING.search(token)


def _counted(text: str) -> bool:
    """ "2 шт", "пару банок", "x3": a number of items, which is how people write an order."""
    normal = _normal(text)
    return any(regex.search(normal) for regex in (_COUNT_RE, _WORD_COUNT_RE, _TIMES_RE))


def _edit(conversation, text: str, tokens: list[str], basket: Basket, context) -> Reply | None:
    # «икра кеты 500 г, 2 шт», «и ещё пару банок икры»: an order without the verb.
    more = bool(tokens) and "еще" in tokens[:2] and not basket.is_empty
    setting = any(_SETTING.match(t) for t in tokens) and not basket.is_empty
    adds = any(_asks_to_add(t) for t in tokens) or ((_counted(text) or more or setting) and not _asks(text))
    removes = any(_REMOVE.match(t) for t in tokens)
    if removes:
        return _remove(text, basket)
    if not adds or (_is_question(text) and match_faq(text)):
        # «если закажу сейчас, привезёте сегодня?»: the FAQ answers it.
        return None
    items = _items(text)
    if items:
        several = _add_several(conversation, basket, items)
        if several is not None:
            return several
    wanted = _wanted(text)
    if wanted.query:
        return _add_searched(conversation, basket, wanted)
    if not basket.is_empty and wanted.quantity and wanted.ordinal is None and not wanted.pointing:
        # «сделай 3 банки», «ещё 2»: the product last put in.
        return _requantified(conversation, basket, wanted, setting=any(_SETTING.match(t) for t in tokens))
    if not basket.is_empty and wanted.ordinal is None and not wanted.pointing and wanted.quantity is None:
        # «заказываю», «хочу заказать» with the basket filled: the checkout, not the list shown before.
        return _start_checkout(conversation, basket)
    product = _pointed_at(wanted, context)
    if product is not None:
        return _added(conversation, basket, product, wanted.quantity or 1, more=True)
    if wanted.ordinal is not None:
        return Reply(
            "В последнем списке нет такого номера. Напишите, пожалуйста, название товара.",
            Kind.CLARIFY,
            suggestions=[BASKET_BUTTON, "Позвать оператора"],
        )
    if context is not None and len(context.shown) > 1 and wanted.ordinal is None:
        shown = list(Product.objects.in_bulk(context.shown).values())
        offered = [p for p in sorted(shown, key=lambda p: context.shown.index(p.pk)) if p.in_stock][:MAX_CHOICE]
        if offered:
            return _choice(basket, offered, wanted.quantity or 1)
    if not basket.is_empty:
        return _start_checkout(conversation, basket)
    return Reply(
        "Напишите, что добавить в корзину и сколько — например: «икра кеты 500 г, 2 шт».",
        Kind.ORDER,
        suggestions=[],
    )


def _requantified(conversation, basket: Basket, wanted: Wanted, *, setting: bool) -> Reply:
    product = Product.objects.filter(pk=basket.lines[-1].product).first()
    if product is None:
        return _show(basket)
    return _added(conversation, basket, product, wanted.quantity, more=not setting)


def _pointed_at(wanted: Wanted, context: DialogContext | None) -> Product | None:
    """«беру второй», «закажу его», «добавьте»: the product the dialog points at."""
    if context is None:
        return None
    product_id = None
    if wanted.ordinal is not None and context.shown:
        index = wanted.ordinal - 1 if wanted.ordinal > 0 else len(context.shown) - 1
        if 0 <= index < len(context.shown):
            product_id = context.shown[index]
    elif context.focus:
        product_id = context.focus
    elif len(context.shown) == 1:
        product_id = context.shown[0]
    if product_id is None:
        return None
    return Product.objects.filter(pk=product_id).first()


# «2 упаковки мидий мясо 500 г и одну икру кеты 100 г»: items split where each part says how many or which pack.
_ITEM_SEPARATOR = re.compile(r"\s*(?:,|;|\bи\b|\bещ[её]\b|\bа также\b)\s*", re.IGNORECASE)


def _items(text: str) -> list[Wanted]:
    """The message's items when it names several, each with its count or pack size; [] for one item."""
    parts: list[str] = []
    for part in (p for p in _ITEM_SEPARATOR.split(_normal(text)) if p.strip()):
        if parts and not _wanted(part).query:
            parts[-1] += " " + part  # «…, 2 шт»: the count of the item before
        else:
            parts.append(part)
    if len(parts) < 2:
        return []
    wanted = [_wanted(part) for part in parts]
    # Only when each part stands alone as an item: product words with a count or a pack size of its own.
    if all(w.query and (w.quantity or pack_size(w.query)[0]) for w in wanted):
        return wanted
    return []


def _add_several(conversation, basket: Basket, items: list[Wanted]) -> Reply | None:
    """Each item found as one product in stock, all added in one reply; None when one is not (asked one by one)."""
    products = []
    for item in items:
        found = find_products(item.query)
        product = _the_one(item, found)
        if product is None:
            return None
        products.append((product, item.quantity or 1))
    basket = basket.copy()
    lines = []
    for product, quantity in products:
        line = basket.add(product, quantity, more=True)
        if product.quantity is not None and line.quantity > product.quantity:
            line.quantity = product.quantity
        lines.append(f"{product.title} × {line.quantity} — {money(product.price * line.quantity)}")
    total = baskets.priced(basket).items_total
    text = "Добавил в корзину:\n" + "\n".join(lines) + f"\nВ корзине {_count(len(basket.lines))} на {money(total)}.\n\n"
    if basket.in_checkout:
        return _reply(text, basket, [])
    return _reply(
        text + "Добавить что-то ещё или оформляем заказ?", basket, [CHECKOUT_BUTTON, BASKET_BUTTON, CANCEL_BUTTON]
    )


def _in_stock_named(wanted: Wanted, found) -> list[Product]:
    pool = _naming_all(found.query, found.products)
    if found.size:
        pool = [p for p in pool if has_size(p, found.size)] or pool
    return [p for p in pool if p.in_stock]


def _the_one(wanted: Wanted, found) -> Product | None:
    """The one product in stock the words name, or None when none or several do."""
    if not found.products:
        return None
    in_stock = _in_stock_named(wanted, found)
    if len(in_stock) == 1 or (in_stock and _named_exactly(wanted.query, in_stock[0])):
        return in_stock[0]
    return None


def _add_searched(conversation, basket: Basket, wanted: Wanted) -> Reply | None:
    found = find_products(wanted.query)
    if not found.products:
        return None  # nothing of the catalog: answered as any other message (the FAQ, a clarifying question)
    product = _the_one(wanted, found)
    if product is not None:
        return _added(conversation, basket, product, wanted.quantity or 1, more=True)
    pool = _naming_all(found.query, found.products)
    if found.size:
        pool = [p for p in pool if has_size(p, found.size)] or pool
    in_stock = [p for p in pool if p.in_stock]
    if in_stock:
        return _choice(basket, in_stock[:MAX_CHOICE], wanted.quantity or 1)
    top = pool[0]
    answer = out_of_stock_reply(top, found.query, candidates=found.searched)
    answer.text += "\n\nВ корзину ничего не добавил. Выберите другой товар — напишите, например, «беру первый»."
    return answer


def _naming_all(query: str, products: list[Product], *, strict: bool = False) -> list[Product]:
    """The products whose title has every word of the query (in any form), in their order;
    when none has, all of them (none when `strict`)."""
    vocabulary = title_vocabulary()
    parsed = parse_query(query, vocabulary)
    corrected = corrected_query(parsed, vocabulary)
    if corrected:
        parsed = parse_query(corrected, vocabulary)
    groups = []
    for group in parsed.groups:
        stems = set()
        for alternative in group:
            for word in alternative:
                stems.add(crude_stem(word))
                stems.update(other_form_stems(word))
        groups.append(stems)
    if not groups:
        return [] if strict else products

    def names_all(product: Product) -> bool:
        title_words = words(product.title)
        return all(any(w.startswith(stem) for w in title_words for stem in stems) for stems in groups)

    named = [p for p in products if names_all(p)]
    return named if named or strict else products


def _named_exactly(query: str, product: Product) -> bool:
    return _normal(query) == _normal(product.title)


def _chosen(text: str, basket: Basket) -> Product | None:
    """The product picked from the offered ones: «второй», «2», its title (a button), or its pack size."""
    offered = Product.objects.in_bulk(basket.choice)
    ordered = [offered[i] for i in basket.choice if i in offered]
    normal = _normal(text)
    for product in ordered:
        if _normal(product.title) == normal:
            return product
    follow = read_followup(text)
    if follow.ordinal is not None:
        index = follow.ordinal - 1 if follow.ordinal > 0 else len(ordered) - 1
        return ordered[index] if 0 <= index < len(ordered) else None
    if follow.size:
        sized = [p for p in ordered if has_size(p, follow.size)]
        if len(sized) == 1:
            return sized[0]
    if follow.words:
        named = _naming_all(" ".join(follow.words), ordered)
        if len(named) == 1:
            return named[0]
    return None


def _choice(basket: Basket, products: list[Product], quantity: int) -> Reply:
    basket = basket.copy()
    basket.choice = [p.pk for p in products]
    basket.choice_quantity = quantity
    lines = "\n".join(f"{n}. {_product_text(p)}" for n, p in enumerate(products, 1))
    reply = _reply(
        f"Уточните, какой именно добавить в корзину:\n{lines}\n\nНапишите номер или нажмите кнопку.",
        basket,
        # «Беру 2» reads as the choice; the products' own buttons open their pages.
        [f"{CHOOSE_PREFIX} {n}" for n in range(1, len(products) + 1)],
        kind=Kind.CLARIFY,
    )
    reply.products = products
    reply.context = DialogContext(shown=basket.choice).as_json()
    return reply


def _added(conversation, basket: Basket, product: Product, quantity: int, *, more: bool) -> Reply:
    basket = basket.copy()
    if not product.in_stock or product.price is None:
        return out_of_stock_reply(product, product.title)
    line = basket.add(product, quantity, more=more)
    if product.quantity is not None and line.quantity > product.quantity:
        line.quantity = product.quantity
        note = f" Больше {product.quantity} шт. нет в наличии — положил сколько есть."
    else:
        note = ""
    total = baskets.priced(basket).items_total
    text = (
        f"{'Добавил в корзину' if more else 'Изменил количество'}: {product.title} × {line.quantity} — "
        f"{money(product.price * line.quantity)}.{note}\n"
        f"В корзине {_count(len(basket.lines))} на {money(total)}.\n\n"
    )
    if basket.in_checkout:
        return _reply(text, basket, [])
    return _reply(
        text + "Добавить что-то ещё или оформляем заказ?", basket, [CHECKOUT_BUTTON, BASKET_BUTTON, CANCEL_BUTTON]
    )


def _remove(text: str, basket: Basket) -> Reply:
    if basket.is_empty:
        return _reply("Корзина пуста — убирать нечего. Напишите, что хотите заказать.", basket, [])
    products = baskets.products_of(basket)
    in_basket = [products[line.product] for line in basket.lines if line.product in products]
    wanted = _wanted(text)
    if "все" in _tokens(text) and not wanted.query:
        return _reply("Убрал всё — корзина пуста.", Basket(), [])
    if wanted.query:
        gone = _naming_all(wanted.query, in_basket, strict=True)
    elif wanted.ordinal is not None:
        index = wanted.ordinal - 1 if wanted.ordinal > 0 else len(in_basket) - 1
        gone = [in_basket[index]] if 0 <= index < len(in_basket) else []
    else:
        gone = in_basket if len(in_basket) == 1 else []
    if not gone:
        return _reply(
            "Не понял, что убрать. "
            + _basket_text(basket)
            + "\n\nНапишите, например, «убери 2» — по номеру в корзине.",
            basket,
            [BASKET_BUTTON],
        )
    basket = basket.copy()
    if wanted.quantity and len(gone) == 1:
        line = basket.line_for(gone[0].pk)
        if line.quantity > wanted.quantity:
            line.quantity -= wanted.quantity
            return _reply(
                f"Убрал {wanted.quantity} шт.: {gone[0].title}, осталось {line.quantity}.\n\n" + _basket_text(basket),
                basket,
                [CHECKOUT_BUTTON, CANCEL_BUTTON],
            )
    basket.remove(p.pk for p in gone)
    removed = ", ".join(p.title for p in gone)
    if basket.is_empty:
        return _reply(f"Убрал: {removed}. Корзина пуста.", basket, [])
    return _reply(f"Убрал: {removed}.\n\n" + _basket_text(basket), basket, [CHECKOUT_BUTTON, CANCEL_BUTTON])


def _show(basket: Basket) -> Reply:
    if basket.is_empty:
        return _reply("Корзина пуста. Напишите, что хотите заказать — например, «икра кеты 500 г, 2 шт».", basket, [])
    return _reply(_basket_text(basket), basket, [CHECKOUT_BUTTON, CANCEL_BUTTON])


# The checkout -------------------------------------------------------------------------


def _start_checkout(conversation, basket: Basket) -> Reply:
    if basket.is_empty:
        return _reply("Корзина пуста. Напишите, что хотите заказать — например, «икра кеты 500 г, 2 шт».", basket, [])
    basket = basket.copy()
    refreshed = baskets.refresh(basket)
    news = _changes_text(refreshed)
    if basket.is_empty:
        return _reply(news + "\n\nКорзина опустела — выберите, пожалуйста, другие товары.", basket, [])
    total = baskets.priced(basket).items_total
    least = min(minimum_total(Order.Fulfilment.DELIVERY), minimum_total(Order.Fulfilment.PICKUP))
    if total < least:
        basket.step = Step.ITEMS
        return _reply(
            (news + "\n\n" if news else "")
            + f"Минимальная сумма заказа — {money(least)}, в корзине на {money(total)}. "
            "Добавьте, пожалуйста, что-нибудь ещё.",
            basket,
            [BASKET_BUTTON, CANCEL_BUTTON],
        )
    return _ask_next(conversation, basket, prefix=news)


def _below_delivery_minimum(basket: Basket) -> str:
    """Why delivery cannot be chosen for this basket ("" when it can)."""
    minimum = minimum_total(Order.Fulfilment.DELIVERY)
    total = baskets.priced(basket).items_total
    if total >= minimum:
        return ""
    return (
        f"Минимальная сумма заказа с доставкой — {money(minimum)}, в корзине на {money(total)}. "
        "Добавьте товаров — или выберите самовывоз."
    )


def _in_checkout(conversation, reply: Reply) -> Reply:
    """The checkout going on after the basket changed in it: the new summary, or the step's question."""
    if reply.basket is None:
        return reply
    basket = Basket.from_json(reply.basket)
    if basket.is_empty or not basket.in_checkout or basket.choice:
        return reply
    if basket.step == Step.CONFIRM:
        return _summary(conversation, basket, customer_for(conversation), prefix=reply.text)
    question, suggestions = _question(conversation, basket)
    return _reply(f"{reply.text}\n\n{question}", basket, suggestions)


def _ask_next(conversation, basket: Basket, *, prefix: str = "") -> Reply:
    customer = customer_for(conversation)
    basket.step = baskets.next_step(basket, customer)
    if basket.step == Step.CONFIRM:
        return _summary(conversation, basket, customer, prefix=prefix)
    question, suggestions = _question(conversation, basket)
    return _reply((prefix + "\n\n" if prefix else "") + question, basket, suggestions)


def _question(conversation, basket: Basket) -> tuple[str, list[str]]:
    step = basket.step
    if step == Step.PHONE:
        text = "Для заказа нужен номер телефона. Напишите его, например: +7 900 123-45-67."
        if conversation.channel == Channel.TELEGRAM:
            text += " Или нажмите кнопку «Поделиться номером»."
        return text, [SHARE_PHONE_BUTTON]
    if step == Step.FULFILMENT:
        why = _below_delivery_minimum(basket)
        rules = why.replace(" Добавьте товаров — или выберите самовывоз.", "") if why else _delivery_rules()
        return f"Доставка курьером или самовывоз? {rules}", ["Доставка", "Самовывоз"]
    if step == Step.ADDRESS:
        return "Напишите адрес доставки: город, улица, дом, квартира.", []
    if step == Step.TIME:
        return "Когда вам удобно получить заказ? Например: «завтра с 10 до 14».", ["Как можно скорее"]
    if step == Step.PAYMENT:
        return (
            "Как удобнее оплатить: онлайн, картой при получении или наличными?",
            ["Онлайн", "Картой при получении", "Наличными"],
        )
    if step == Step.COMMENT:
        return "Есть комментарий к заказу? Если нет — напишите «нет».", ["Без комментария"]
    if step == Step.CONFIRM:
        return "Всё верно? Напишите «подтверждаю» — или что изменить.", [CONFIRM_BUTTON, CANCEL_BUTTON]
    return "", []


def _pickup_note() -> str:
    """Where and when to pick up, as the store's FAQ says."""
    entries = match_faq("самовывоз", limit=1)
    return entries[0].answer if entries else ""


def _delivery_rules() -> str:
    cost = settings.ORDER_DELIVERY_COST
    free_from = settings.ORDER_FREE_DELIVERY_FROM
    if cost <= 0:
        return "Доставка бесплатная."
    rule = f"Доставка — {money(cost)}"
    if free_from > 0:
        rule += f", от {money(free_from)} — бесплатно"
    return rule + "."


def _checkout_answer(conversation, message, text: str, basket: Basket, *, context, with_llm: bool) -> Reply | None:
    tokens = _tokens(text)
    # The basket may change at any step: «добавь ещё икру», «убери креветки», «корзина».
    if _asks_for_basket(tokens):
        shown = _show(basket)
        question, suggestions = _question(conversation, basket)
        shown.text += "\n\n" + question
        shown.suggestions = [*suggestions, "Позвать оператора"]
        return shown
    if any(_asks_to_add(t) or _REMOVE.match(t) for t in tokens):
        if with_llm:
            return None  # the model's tools change the basket
        edited = _edit(conversation, text, tokens, basket, context)
        if edited is not None:
            return _in_checkout(conversation, edited)
    step = basket.step
    basket = basket.copy()
    phone = _phone_in(text)
    if phone and step in (Step.PHONE, Step.CONFIRM):
        customer = customer_for(conversation)
        set_phone(customer, phone)
        return _ask_next(conversation, basket)
    if step == Step.PHONE:
        if _is_question(text):
            return None
        return _reply(
            "Не похоже на номер телефона. Напишите его цифрами, например: +7 900 123-45-67.",
            basket,
            [SHARE_PHONE_BUTTON],
        )
    if step == Step.CONFIRM:
        if _confirms(text):
            return _place(conversation, message, basket)
        chosen = _detail_change(text, tokens, basket)
        if chosen:
            return _ask_next(conversation, basket)
        if _is_question(text):
            return None
        return _reply(
            "Чтобы оформить заказ, напишите «подтверждаю». Изменить: «доставка» или «самовывоз», «оплата наличными», "
            "«убери …», «добавь …». Отменить — «отмена».",
            basket,
            [CONFIRM_BUTTON, CANCEL_BUTTON],
        )
    if step == Step.FULFILMENT:
        fulfilment = _fulfilment_in(tokens)
        if not fulfilment:
            if _looks_like_address(text):
                basket.fulfilment, basket.address = Order.Fulfilment.DELIVERY, text.strip()[:500]
                return _ask_next(conversation, basket)
            if _is_question(text):
                return None
            question, suggestions = _question(conversation, basket)
            return _reply("Не понял. " + question, basket, suggestions)
        if fulfilment == Order.Fulfilment.DELIVERY and (why := _below_delivery_minimum(basket)):
            return _reply(why, basket, ["Самовывоз", BASKET_BUTTON])
        basket.fulfilment = fulfilment
        if fulfilment == Order.Fulfilment.PICKUP:
            basket.address = ""
            return _ask_next(conversation, basket, prefix=_pickup_note())
        if _looks_like_address(text):
            # «привезите на ул. Тверская 10, кв 5»: the address came with it.
            basket.address = text.strip()[:500]
        return _ask_next(conversation, basket)
    if step == Step.ADDRESS:
        if _fulfilment_in(tokens) == Order.Fulfilment.PICKUP:
            basket.fulfilment, basket.address = Order.Fulfilment.PICKUP, ""
            return _ask_next(conversation, basket)
        if _is_question(text) or not _could_be_address(text):
            return None if _is_question(text) else _reply(*_reask(conversation, basket, "Не понял адрес."))
        if _TIME_RE.search(_normal(text)) and not _looks_like_address(text):
            # «к 19:00 завтра» is when, not where: kept for its step, the address asked again.
            basket.desired_time = text.strip()[:255]
            return _reply(*_reask(conversation, basket, "Время записал."))
        basket.address = text.strip()[:500]
        return _ask_next(conversation, basket)
    if step == Step.TIME:
        if "?" in text:
            return None
        basket.desired_time = text.strip()[:255]
        return _ask_next(conversation, basket)
    if step == Step.PAYMENT:
        payment = _payment_in(tokens)
        if not payment:
            if _is_question(text):
                return None
            return _reply(*_reask(conversation, basket, "Не понял, как оплатить."))
        basket.payment = payment
        return _ask_next(conversation, basket)
    if step == Step.COMMENT:
        if "?" in text:
            return None
        no_comment = all(_NO_COMMENT.match(t) or t.startswith("коммент") or t == "нужно" for t in tokens)
        basket.comment = "" if no_comment else text.strip()[:1000]
        basket.comment_asked = True
        return _ask_next(conversation, basket)
    return None


def _reask(conversation, basket: Basket, why: str) -> tuple[str, Basket, list[str]]:
    question, suggestions = _question(conversation, basket)
    return f"{why} {question}", basket, suggestions


def _looks_like_address(text: str) -> bool:
    normal = _normal(text)
    return bool(re.search(r"\d", normal)) and bool(
        re.search(r"(?<![а-я])(?:ул|улица|пр|проспект|пер|переулок|д|дом|кв|квартира|шоссе|бульвар|наб)\b", normal)
    )


def _could_be_address(text: str) -> bool:
    return len(text.strip()) >= 5 and bool(re.search(r"[а-яa-z]", _normal(text)))


def _detail_change(text: str, tokens: list[str], basket: Basket) -> bool:
    """A detail changed at the summary («лучше самовывоз», «оплачу наличными»); True when one was."""
    changed = False
    fulfilment = _fulfilment_in(tokens)
    if fulfilment and fulfilment != basket.fulfilment:
        basket.fulfilment = fulfilment
        if fulfilment == Order.Fulfilment.PICKUP:
            basket.address = ""
        changed = True
    payment = _payment_in(tokens)
    if payment and payment != basket.payment:
        basket.payment = payment
        changed = True
    if any(t.startswith("адрес") for t in tokens):
        basket.address = ""
        basket.fulfilment = Order.Fulfilment.DELIVERY
        changed = True
    if any(t.startswith(("время", "времен")) for t in tokens):
        basket.desired_time = ""
        changed = True
    if any(t.startswith("коммент") for t in tokens):
        basket.comment, basket.comment_asked = "", False
        changed = True
    return changed


def _summary(conversation, basket: Basket, customer, *, prefix: str = "") -> Reply:
    refreshed = baskets.refresh(basket)
    news = _changes_text(refreshed)
    if basket.is_empty:
        return _reply(
            "\n\n".join(p for p in (prefix, news) if p) + "\n\nКорзина опустела — выберите, пожалуйста, другие товары.",
            basket,
            [],
        )
    basket.step = Step.CONFIRM
    parts = [p for p in (prefix, news) if p]
    parts.append(_summary_text(basket, customer))
    parts.append("Всё верно? Напишите «подтверждаю» — или что изменить.")
    return _reply("\n\n".join(parts), basket, [CONFIRM_BUTTON, CANCEL_BUTTON])


def _summary_text(basket: Basket, customer) -> str:
    products = baskets.products_of(basket)
    priced = baskets.priced(basket, products)
    lines = ["Ваш заказ:", _lines_text(basket, products), f"Товары: {money(priced.items_total)}"]
    if basket.fulfilment == Order.Fulfilment.PICKUP:
        lines.append("Получение: самовывоз")
    else:
        lines.append("Доставка: " + (money(priced.delivery_cost) if priced.delivery_cost else "бесплатно"))
        lines.append(f"Адрес: {basket.address}")
    lines.append(f"Итого: {money(priced.total)}")
    lines.append(f"Телефон: {display_phone(customer.phone)}")
    if basket.desired_time:
        lines.append(f"Когда: {basket.desired_time}")
    lines.append(f"Оплата: {PAYMENT_TEXT.get(basket.payment, '—')}")
    if basket.comment:
        lines.append(f"Комментарий: {basket.comment}")
    return "\n".join(lines)


PAYMENT_TEXT = {
    Order.Payment.ONLINE: "онлайн",
    Order.Payment.CARD: "картой при получении",
    Order.Payment.CASH: "наличными при получении",
}


def _place(conversation, message: Message, basket: Basket) -> Reply:
    """«подтверждаю»: prices and stock read again; the order made when nothing changed, else asked again."""
    made = (
        Q(confirmed_by=message) | Q(conversation=conversation, basket_key=basket.key)
        if basket.key
        else Q(confirmed_by=message)
    )
    placed = Order.objects.filter(made).first()
    if placed is None:
        refreshed = baskets.refresh(basket)
        if refreshed.changed:
            return _summary(conversation, basket, customer_for(conversation), prefix=_changes_text(refreshed))
        products = baskets.products_of(basket)
        lines = []
        for line in basket.lines:
            product = products[line.product]
            # The price the customer confirmed: create_order compares it with the catalog under a lock.
            product.price = line.price
            lines.append((product, line.quantity))
        try:
            placed = create_order(
                conversation,
                lines,
                fulfilment=basket.fulfilment,
                address=basket.address,
                desired_time=basket.desired_time,
                payment=basket.payment,
                comment=basket.comment,
                confirmed_by=message,
                basket_key=basket.key,
            )
        except OrderChanged:
            refreshed = baskets.refresh(basket)
            return _summary(conversation, basket, customer_for(conversation), prefix=_changes_text(refreshed))
        except OrderError as exc:
            basket.step = Step.ITEMS
            return _reply(f"Не получилось оформить заказ: {exc}", basket, [BASKET_BUTTON, "Позвать оператора"])
    text = (
        f"Спасибо! Заказ №{placed.number} оформлен на {money(placed.total)}. "
        f"Менеджер свяжется с вами по номеру {display_phone(placed.customer.phone)}, чтобы подтвердить заказ."
    )
    if placed.payment == Order.Payment.ONLINE:
        text += " Ссылку на оплату пришлём после подтверждения."
    text += "\nУзнать, что с заказом, можно здесь: напишите «где мой заказ»."
    return _reply(text, Basket(), [], kind=Kind.ORDER)


def _placed_just_now(conversation) -> Order | None:
    since = timezone.now() - timedelta(hours=1)
    return Order.objects.filter(conversation=conversation, created_at__gte=since).order_by("-created_at").first()


def _changes_text(refreshed) -> str:
    lines = []
    for change in refreshed.price_changes:
        lines.append(
            f"Цена изменилась: {change.title} — теперь {money(change.new_price)} (было {money(change.old_price)})."
        )
    for shortage in refreshed.shortages:
        if shortage.available:
            lines.append(f"{shortage.title}: в наличии только {shortage.available} шт. — столько и оставил.")
        else:
            lines.append(f"{shortage.title or 'Товар'} закончился — убрал из корзины.")
    return "\n".join(lines)


# Texts -----------------------------------------------------------------------------------


def _product_text(product: Product) -> str:
    return f"{product.title} — {money(product.price, product.currency)}"


def _lines_text(basket: Basket, products: dict[int, Product]) -> str:
    rows = []
    for n, line in enumerate(basket.lines, 1):
        product = products.get(line.product)
        if product is None or line.price is None:
            continue
        rows.append(
            f"{n}. {product.title} — {line.quantity} × {money(line.price)} = {money(line.price * line.quantity)}"
        )
    return "\n".join(rows)


def _basket_text(basket: Basket) -> str:
    products = baskets.products_of(basket)
    priced = baskets.priced(basket, products)
    return f"В корзине:\n{_lines_text(basket, products)}\nТовары: {money(priced.items_total)}"


def _count(n: int) -> str:
    if n % 10 == 1 and n % 100 != 11:
        word = "товар"
    elif 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        word = "товара"
    else:
        word = "товаров"
    return f"{n} {word}"


def _reply(text: str, basket: Basket, suggestions: list[str], *, kind: str = Kind.ORDER) -> Reply:
    return Reply(text.strip(), kind, suggestions=[*suggestions, "Позвать оператора"], basket=basket.as_json())


# The model's tools -----------------------------------------------------------------------

BASKET_TOOL = "basket"
BASKET_TOOLS = frozenset({BASKET_TOOL})

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": BASKET_TOOL,
            "description": "Корзина покупателя: add — положить товар, remove — убрать, checkout — оформить заказ.",
            "parameters": {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["add", "remove", "checkout"]},
                    "product_id": {"type": "integer"},
                    "quantity": {"type": "integer"},
                },
                "required": ["action"],
            },
        },
    },
]


def tool_reply(conversation: Conversation, name: str, arguments: dict) -> Reply | None:
    """What the model's basket tool does, said to the customer by us; None for bad arguments."""
    basket = basket_of(conversation)
    action = arguments.get("action")
    if action == "checkout":
        return _start_checkout(conversation, basket)
    try:
        product_id = int(arguments.get("product_id"))
    except (TypeError, ValueError):
        return None
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        return None
    if action == "add":
        try:
            quantity = int(arguments.get("quantity") or 1)
        except (TypeError, ValueError):
            quantity = 1
        return _in_checkout(conversation, _added(conversation, basket, product, max(1, quantity), more=True))
    if action == "remove":
        if basket.line_for(product.pk) is None:
            return None
        basket = basket.copy()
        basket.remove([product.pk])
        if basket.is_empty:
            return _reply(f"Убрал: {product.title}. Корзина пуста.", basket, [])
        removed = _reply(
            f"Убрал: {product.title}.\n\n" + _basket_text(basket), basket, [CHECKOUT_BUTTON, CANCEL_BUTTON]
        )
        return _in_checkout(conversation, removed)
    return None


_ORDER_TALK = re.compile(r"^(?:корзин\w*|заказ\w*|закаж\w*|оформ\w*|давай\w*|нужн\w*|надо)$")


def may_order(conversation: Conversation, text: str) -> bool:
    """Whether the model gets the basket tool for this message: the basket has something, or the
    customer talks of ordering. Other questions do without its schema in the prompt."""
    if not basket_of(conversation).is_empty:
        return True
    tokens = _tokens(text)
    return _counted(text) or any(_ADD.match(t) or _REMOVE.match(t) or _ORDER_TALK.match(t) for t in tokens)


def prompt_line(conversation: Conversation) -> str:
    """What the model is told of the basket (by id) and its tool, for a message `may_order` lets order."""
    basket = basket_of(conversation)
    rule = (
        "Хочет заказать — вызови basket (add, id товара из поиска, количество); убрать — remove; "
        "готов оформить — checkout. Телефон, адрес и оплату спросит система."
    )
    if basket.is_empty:
        return rule
    items = "; ".join(f"[[product:{line.product}]] × {line.quantity}" for line in basket.lines)
    return f"Корзина покупателя: {items}. {rule}"
