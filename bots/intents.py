"""What a customer's message asks for, read from its words.

Plain functions over normalised text (catalog.text): a request for a person,
a greeting or thanks, a vague request, a follow-up about what was just shown.
A price limit and a pack size are the catalog's reading of a query
(catalog.query), shared with the search API.
"""

import itertools
import re
from dataclasses import dataclass

from catalog.query import PriceLimit, pack_size, price_limit
from catalog.search import NOISE_WORDS
from catalog.text import from_latin_layout, has_latin_letters, normalize_text, words

HANDOFF_PHRASES = (
    "оператор",
    "оператора",
    "оператору",
    "оператором",
    "operator",
    "позовите человека",
    "позовите менеджера",
    "живой человек",
    "живого человека",
    "с человеком",
    "соедините с менеджером",
)

_GREETINGS = (
    "привет",
    "здравствуйте",
    "здравствуй",
    "добрый день",
    "добрый вечер",
    "доброе утро",
    "доброй ночи",
    "hello",
    "hi",
    "салют",
    "хай",
)
_THANKS = ("спасибо", "благодарю", "спс", "thanks", "thank you")
_FAREWELLS = ("до свидания", "всего доброго", "пока")
# Words that add nothing to a greeting or thanks ("спасибо большое!").
_FILLER = {"большое", "огромное", "вам", "тебе", "еще", "раз", "всё", "все", "ок", "хорошо", "понятно", "ясно"}

_VAGUE_PATTERNS = (
    "что посоветуете",
    "что посоветуешь",
    "что порекомендуете",
    "посоветуйте что",
    "помогите выбрать",
    "что у вас есть",
    "что есть",
    "что вкусного",
    "что можете предложить",
    "что предложите",
    "хочу что нибудь",
    "что нибудь вкусное",
    "не знаю что выбрать",
    "какой ассортимент",
    "ассортимент",
    "каталог",
)


def _contains_phrase(text: str, phrase: str) -> bool:
    return f" {phrase} " in f" {' '.join(words(text))} "


# A person of the store, in any form ("с живым человеком", "менеджеру").
_PERSON = re.compile(
    r"^(?:человек\w*|люд\w*|оператор\w*|менеджер\w*|сотрудник\w*|консультант\w*|специалист\w*"
    r"|администратор\w*|operator|manager|human)$"
)
_LIVE = re.compile(r"^жив(?:ой|ого|ому|ым|ом|ая|ую|ые|ых|ыми)$")
# Asking for one: "позовите", "соедините", "хочу поговорить", "можно пообщаться", "нужен".
_ASKING = re.compile(
    r"^(?:позов\w*|позва\w*|позвать|соедин\w*|переключ\w*|подключ\w*|перевед\w*|передай\w*|пригласи\w*"
    r"|поговор\w*|пообщ\w*|общать\w*|свяж\w*|связать\w*|связа\w*|хочу|хотел\w*|хотим|можно|дайте|дай"
    r"|нужен|нужна|нужно|надо|требуется|зовите)$"
)
# Calling someone to the chat; unlike "хочу", never said of goods ("хочу живых раков").
_CALLING = re.compile(r"^(?:позов\w*|позва\w*|соедин\w*|переключ\w*|пригласи\w*|зовите)$")
# "Are you a bot?": the customer wants to know there is a person; one answers.
_BOT_QUESTION = ("вы бот", "ты бот", "это бот", "вы робот", "ты робот", "это робот", "с ботом", "бот или человек")
# A short message naming a person is a request by itself ("менеджера!", "живой человек").
_SHORT_REQUEST_WORDS = 3


def asks_for_operator(text: str, extra_phrases=()) -> bool:
    """The customer asks for a person, in the built-in or staff's words or in plain words.

    A question about reaching the store ("как с вами связаться?", "какой у вас
    телефон?") names no person and is not a hand-off: it is answered.
    """
    normalized = normalize_text(text)
    tokens = words(normalized)
    if _declined(tokens):
        return False
    if any(_contains_phrase(normalized, normalize_text(p)) for p in (*HANDOFF_PHRASES, *extra_phrases)):
        return True
    if any(_contains_phrase(normalized, p) for p in _BOT_QUESTION):
        return True
    if _asks_for_someone_live(tokens):
        return True
    # "на 10 человек" is a number of guests, not a person to talk to.
    people = [i for i, word in enumerate(tokens) if _PERSON.match(word) and not (i and tokens[i - 1].isdigit())]
    if not people or any(i and tokens[i - 1] == "не" for i in people):
        return False
    if len(tokens) <= _SHORT_REQUEST_WORDS:
        return True
    live = any(_LIVE.match(word) for word in tokens)
    return live or any(_ASKING.match(word) for word in tokens)


def _asks_for_someone_live(tokens: list[str]) -> bool:
    """ "позовите кого-нибудь живого", "есть кто живой?": a live someone, with no word for a person."""
    if not any(_LIVE.match(word) for word in tokens):
        return False
    return any(_CALLING.match(word) for word in tokens) or any(word in ("кто", "кого", "кем") for word in tokens)


_NOT_UNDERSTOOD = re.compile(r"^(?:понима\w*|понял\w*|поним\w*|поймет\w*|помога\w*|помож\w*)$")
_USELESS = re.compile(r"^(?:бесполезн\w*|бестолков\w*|тупой|тупая|тупит\w*)$")


def complains_not_understood(text: str) -> bool:
    """ "вы меня не понимаете", "не помогаете", "бесполезно": the answers are not helping."""
    tokens = words(text)
    if any(_USELESS.match(word) for word in tokens):
        return True
    return any(word == "не" and _NOT_UNDERSTOOD.match(nxt) for word, nxt in itertools.pairwise(tokens))


# Reaching the store by other means: its phone, e-mail, messengers, address.
_CONTACT_WORD = re.compile(
    r"^(?:связат\w*|связь|телефон\w*|контакт\w*|позвонит\w*|созвонит\w*|почт\w*|email|mail|whatsapp|"
    r"ватсап\w*|вотсап\w*|вацап\w*)$"
)
_CONTACT_PHRASES = ("где вы находитесь", "ваш адрес", "ваш номер", "как вас найти", "адрес магазина", "номер магазина")


def asks_for_contacts(text: str) -> bool:
    """ "как с вами связаться?", "какой у вас телефон?": how to reach the store, not a request for a person now."""
    normalized = normalize_text(text)
    if any(_contains_phrase(normalized, p) for p in _CONTACT_PHRASES):
        return True
    return any(_CONTACT_WORD.match(word) for word in words(normalized))


_DECLINED_PERSON = re.compile(
    r"\bне\s+(?:нужен|нужна|нужно|надо|хочу|зовите)\s+(?:\w+\s+)?"
    r"(?:человек\w*|оператор\w*|менеджер\w*|сотрудник\w*|консультант\w*)[\s,.!]*",
    re.IGNORECASE,
)
_GUESTS = re.compile(r"\b(?:на\s+)?\d+\s*(?:-?\s*(?:ти|х|и|ью|ми))?\s+(?:человек\w*|персон\w*|гост\w*)", re.IGNORECASE)


def without_people_not_asked_for(text: str) -> str:
    """The message without the people it names but does not ask for: a person declined
    ("не надо оператора, скажите цену") or a number of guests ("на 10 человек"), so
    neither reads as a question about reaching an operator."""
    return _GUESTS.sub(" ", _DECLINED_PERSON.sub(" ", text)).strip()


def _declined(tokens: list[str]) -> bool:
    """ "не нужен оператор", "не надо менеджера": a person declined, not asked for."""
    return any(
        word == "не" and nxt in ("нужен", "нужна", "нужно", "надо", "хочу", "зовите")
        for word, nxt in itertools.pairwise(tokens)
    )


def _only(text: str, phrases) -> bool:
    """True when the message is one of these phrases and nothing that asks for more."""
    rest = " " + " ".join(words(text)) + " "
    found = False
    for phrase in sorted(phrases, key=len, reverse=True):
        if f" {phrase} " in rest:
            rest = rest.replace(f" {phrase} ", " ")
            found = True
    return found and not [w for w in rest.split() if w not in _FILLER]


def is_greeting(text: str) -> bool:
    return any(_only(t, _GREETINGS) for t in _as_typed_and_on_russian_layout(text))


def is_thanks(text: str) -> bool:
    return any(
        _only(t, (*_THANKS, *_FAREWELLS, *_GREETINGS)) and any(_contains_phrase(t, p) for p in (*_THANKS, *_FAREWELLS))
        for t in _as_typed_and_on_russian_layout(text)
    )


def _as_typed_and_on_russian_layout(text: str) -> tuple[str, ...]:
    """ "ghbdtn" is "привет" typed with the keyboard left on English: read both ways."""
    if not has_latin_letters(text) or re.search("[а-яё]", text, re.IGNORECASE):
        return (text,)
    return (text, from_latin_layout(text))


def strip_greeting(text: str) -> str:
    """The message without a leading greeting ("Здравствуйте! Есть икра?" -> "Есть икра?")."""
    pattern = r"^\s*(?:" + "|".join(re.escape(g) for g in _GREETINGS) + r")\b[\s,!.]*"
    return re.sub(pattern, "", text, flags=re.IGNORECASE)


def is_vague(text: str) -> bool:
    normalized = " ".join(words(text))
    return any(f" {p} " in f" {normalized} " for p in _VAGUE_PATTERNS)


# --- follow-ups: a short message about what the bot has just shown -----------

# «дороговато», «дорого»: too dear, so cheaper.
_CHEAPER = re.compile(r"^(?:(?:по)?дешев\w*|бюджетн\w*|недорог\w*|эконом\w*|дорого|дороговат\w*)$")
_DEARER = re.compile(r"^(?:(?:по)?дорож\w*|получше|премиальн\w*|элитн\w*)$")
_SMALLER = re.compile(r"^(?:(?:по)?меньш\w*|(?:по)?мельче|маленьк\w*|небольш\w*)$")
_LARGER = re.compile(r"^(?:(?:по)?больше|(?:по)?крупнее|больш(?:ой|ая|ую|ое|ие|их|ей|ого|ом))$")
# «сколько стоит килограмм?», «а за кило?»: a number with it is a pack size (catalog.query.pack_size).
_KILO = re.compile(r"^(?:кило|килограм+\w*|кг)$")
_HALF_KILO = re.compile(r"^пол(?:кило|килограм+\w*)$")
_STOCK = re.compile(r"^(?:налич\w*|остал\w*|остат\w*)$")
_PRICE = re.compile(r"^(?:стоит|стоят|стоимост\w*|цен[аыуе]|почем\w*|сколько)$")
_ORDINAL_STEMS = ("перв", "втор", "трет", "четверт", "пят", "шест", "седьм", "восьм", "девят", "десят")
_ORDINAL = re.compile(
    r"^(" + "|".join(_ORDINAL_STEMS) + r")(?:ый|ий|ой|ая|ья|ое|ье|ую|ью|ого|ьего|ом|ьем|ей|ьей|ые|ие|ьи|ых|ьих)$"
)
_LAST = re.compile(r"^последн(?:ий|яя|ее|юю|его|ей|ем)$")
_NUMBERED = re.compile(r"^(\d{1,2})(?:й|я|е|ой|ая|ое|ий|ю|го)?$")
# A number before these is a quantity («дайте 2 штуки»), not a list item.
_QUANTITY = re.compile(r"^(?:шт\w*|пач\w*|упак\w*|банк\w*|кг|г|л)$")
# Openers of an elliptical follow-up: «а крабы?», «и ещё поменьше», «тогда второй».
_OPENERS = ("а", "и", "еще", "тогда", "ну")
# Words that point at what was shown or ask for it, not at a product.
_POINTING = frozenset(
    """
    вариант варианта варианты вариантов варианте номер номера позиция позицию позиции пункт
    упаковка упаковку упаковке упаковки упаковкой фасовка фасовку фасовке фасовки фасовкой пачка пачку
    размер размера размером вес весом объем объема банка банку банки банке банкой пакет пакете коробка коробку
    контейнер ведро ведерко ничего
    нибудь такой такая такое такие такую такого такие же этот эта это эти этого этой этим тот та те того
    он она оно они их его ее ему ей им нем ней них там тут сейчас щас пока теперь
    давайте давай дайте покажите покажи беру возьму выбираю выберу хочу хотим найдется найдутся будет будут
    бывает бывают поищите посмотрите поподробнее подробнее подробности расскажите
    или тогда ну ладно хорошо ок а и еще уже вообще случайно какой какая какие каких просто чуть немного
    штука вашем ваш ваша
    """.split()
)
_NOT_WANTED = ("надо", "нужно", "нужен", "нужна", "нужны", "хочу", "интересует", "буду", "беру")


@dataclass(frozen=True)
class FollowUp:
    """What a message asks about what the bot has just shown, read from its words alone.

    The dialog (bots.followups) decides whether it refers back: «а подешевле?»
    does, «а крабы?» names a new product, «а охлаждённый?» an attribute of the
    same one.
    """

    # "cheaper", "dearer", "smaller", "larger", "kilo", "stock", "price"
    asks: frozenset[str] = frozenset()
    ordinal: int | None = None  # 1 for «первый», -1 for «последний»
    opener: bool = False  # starts like a continuation: «а …», «и …», «ещё …»
    price: PriceLimit | None = None  # «а до 1000?»
    size: str | None = None  # «а 250 г есть?», «полкило»
    words: tuple[str, ...] = ()  # what is left: product words or attributes


def read_followup(text: str) -> FollowUp:
    price, rest = price_limit(text)
    size, rest = pack_size(rest)
    tokens = words(rest)
    if any(
        (word == "не" and nxt in _NOT_WANTED) or {word, nxt} in ({"больше", "ничего"}, {"еще", "ничего"})
        for word, nxt in itertools.pairwise(tokens)
    ):
        return FollowUp()  # «спасибо, больше ничего не нужно»; «а бюджетнее ничего нет?» still asks
    asks: set[str] = set()
    ordinal = None
    left = []
    for i, word in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        for regex, ask in (
            (_CHEAPER, "cheaper"),
            (_DEARER, "dearer"),
            (_SMALLER, "smaller"),
            (_LARGER, "larger"),
            (_KILO, "kilo"),
            (_STOCK, "stock"),
            (_PRICE, "price"),
        ):
            if regex.match(word):
                asks.add(ask)
                break
        else:
            if _HALF_KILO.match(word):
                size = size or "500 г"
            elif match := _ORDINAL.match(word):
                ordinal = _ORDINAL_STEMS.index(match[1]) + 1
            elif _LAST.match(word):
                ordinal = -1
            elif (match := _NUMBERED.match(word)) and 0 < int(match[1]) <= 20 and not _QUANTITY.match(nxt):
                ordinal = int(match[1])
            elif word not in _POINTING and word not in NOISE_WORDS and len(word) > 1:
                left.append(word)
    opener = bool(tokens) and tokens[0] in _OPENERS
    return FollowUp(frozenset(asks), ordinal, opener, price, size, tuple(left))


_ADJECTIVE = re.compile(r"^[а-я]{3,}(?:ый|ий|ой|ая|яя|ое|ее|ые|ие|ую|юю|ого|его|ых|их|ым|им|ыми|ими)$")


def is_attribute(word: str) -> bool:
    """An adjective or participle («охлажденный», «копченая», «тигровые»): it qualifies a product, names none."""
    return bool(_ADJECTIVE.match(word))
