"""What a customer's message asks for, read from its words.

Plain functions over normalised text (catalog.text): a request for a person,
a greeting or thanks, a vague request. A price limit and a pack size are the
catalog's reading of a query (catalog.query), shared with the search API.
"""

import itertools
import re

from catalog.text import normalize_text, words

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
    # "на 10 человек" is a number of guests, not a person to talk to.
    people = [i for i, word in enumerate(tokens) if _PERSON.match(word) and not (i and tokens[i - 1].isdigit())]
    if not people or any(i and tokens[i - 1] == "не" for i in people):
        return False
    if len(tokens) <= _SHORT_REQUEST_WORDS:
        return True
    live = any(_LIVE.match(word) for word in tokens)
    return live or any(_ASKING.match(word) for word in tokens)


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
    return _only(text, _GREETINGS)


def is_thanks(text: str) -> bool:
    return _only(text, (*_THANKS, *_FAREWELLS, *_GREETINGS)) and any(
        _contains_phrase(text, p) for p in (*_THANKS, *_FAREWELLS)
    )


def strip_greeting(text: str) -> str:
    """The message without a leading greeting ("Здравствуйте! Есть икра?" -> "Есть икра?")."""
    pattern = r"^\s*(?:" + "|".join(re.escape(g) for g in _GREETINGS) + r")\b[\s,!.]*"
    return re.sub(pattern, "", text, flags=re.IGNORECASE)


def is_vague(text: str) -> bool:
    normalized = " ".join(words(text))
    return any(f" {p} " in f" {normalized} " for p in _VAGUE_PATTERNS)
