"""What marketplaces (Ozon, Wildberries, Yandex Market) allow a seller to write, and which buyer
items must never be answered automatically.

Plain functions over text: no database, no models. Matching runs on `guardrails.fold` text
(case, ё/е and spacing folded), so «Вернём» and «ВЕРНЕМ» are one phrase.

`clean_for_marketplace` — every outgoing text (the bot's and an operator's) before it is sent:

- Contacts outside the marketplace (links, bare domains, t.me/wa.me/vk.com, e-mails, phone
  numbers, @handles) get marketplaces to hide the answer or fine the seller. A sentence that is
  about contacting («Пишите нам…», «Наш сайт…», «Звоните по номеру…») goes whole; otherwise only
  the clause holding the contact goes («Товар есть, сайт shop.ru, доставка 2 дня.» →
  «Товар есть, доставка 2 дня.»), and the sentence goes anyway if what is left would dangle
  («Подробнее на .»). A messenger named with a contact or an invitation («Пишите в телеграм»,
  «WhatsApp: shop_msk») is a contact too; a messenger merely named as a product feature
  («Часы показывают уведомления WhatsApp») stays.
- Phones are Russian shapes only (+7/7/8 and ten digits with any spaces, dashes or brackets;
  9xx xxx-xx-xx with separators; 123-45-67; +375… and other +country numbers). Prices, weights,
  dates and order numbers such as «12345678-0001» are not phone-shaped and stay. An order number
  of exactly eleven bare digits starting with 7 or 8 is indistinguishable and is removed.
- A promise of a refund or compensation (the marketplace decides those, not the seller) and any
  other marketplace's name remove their sentence. The marketplace itself may be named.
- Markdown is stripped (marketplaces show plain text) and the text is cut to the marketplace's
  limit at a line or sentence end.
- No rule about the words «бот»/«ИИ»: words merely containing them («работа», «линии») are never
  touched.

`needs_a_person` — an incoming chat message, question or review that staff must answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bots.guardrails import fold, limit_length, strip_markdown

OZON = "ozon"
WILDBERRIES = "wildberries"
YANDEX_MARKET = "yandex_market"

MAX_CHARS = {OZON: 1000, WILDBERRIES: 1000, YANDEX_MARKET: 4096}


@dataclass
class GuardedText:
    """The text as it may be sent, and what was taken out of it (for the record), each kind once."""

    text: str
    removed: list[str] = field(default_factory=list)


# --- other marketplaces -------------------------------------------------------------------------

_MARKET_WORD = r"маркет(?:а|е|у|ом|ы)?\b"  # not «маркетплейс», «маркетолог», «супермаркет»
_NAMES = {
    # «озон» only in the declensions of a name: «озоном», «озонатор» are ozone.
    OZON: [r"\bozon\b", r"\bозон(?:а|е|у)?\b"],
    WILDBERRIES: [
        r"\bwildberr\w*",
        r"\b(?:ва[йи]?л|вил|уа[йи]л)д?бер+и[сз]\w*",  # вайлдберриз, валдберис, вилдберриз, уайлдберриз
        r"\bwb\b(?!-?\d)",  # not a product code such as «WB-200»
        r"\bвб\b(?!-?\d)",
    ],
    YANDEX_MARKET: [
        rf"яндекс[\s.-]*{_MARKET_WORD}",
        rf"\bя\.\s?{_MARKET_WORD}",
        rf"(?<![\w-]){_MARKET_WORD}",
        r"yandex[\s.-]*market\b",
    ],
}
# Marketplaces no store here sells on: foreign everywhere.
_ALWAYS_FOREIGN = [
    r"\bавито\b",
    r"\bavito\b",
    r"aliexpress",
    r"\bали\s?экспресс?\w*",
    r"мегамаркет\w*",
    r"megamarket",
    r"\blamoda\b",
    r"\bламод\w*",
    r"kazan\s?express",
    r"казань\s?экспресс?\w*",
    r"магнит\s?маркет\w*",
    r"\bjoom\b",
    r"\bamazon\b",
    r"\bамазон[еау]?\b",
    r"\bebay\b",
    r"\btemu\b",
]


def _foreign_names(marketplace: str) -> re.Pattern:
    patterns = [p for name, group in _NAMES.items() if name != marketplace for p in group] + _ALWAYS_FOREIGN
    return re.compile("|".join(patterns))


_FOREIGN = {marketplace: _foreign_names(marketplace) for marketplace in MAX_CHARS}

# --- refund and compensation promises -----------------------------------------------------------

_MONEY = r"(?:деньг|денежн|средств|оплат|стоимост|сумм)"
_REFUND_PROMISE = re.compile(
    "|".join(
        [
            rf"\bверн(?:ем|у)\b[^.!?]{{0,30}}\b{_MONEY}",  # вернём (вам) деньги
            rf"\b{_MONEY}\w*[^.!?]{{0,30}}\bверн(?:ем|у)\b",  # деньги (мы) вернём
            rf"\b{_MONEY}\w*[^.!?]{{0,20}}\bбудут\b[^.!?]{{0,20}}\bвозвращ",  # деньги будут возвращены
            r"\bкомпенсир(?:уем|ую|овать)\b",
            r"\bкомпенсаци",
            r"\bвозмест(?:им|им вам|ем)\b",
            r"\bвозмещ",
            r"\bполн\w* возврат",
            r"\b(?:гарантир\w*|сделаем|оформим|обеспечим|произведем|осуществим)\b[^.!?]{0,30}\bвозврат",
            r"\bскидк\w*[^.!?]{0,40}\bследующ\w* (?:заказ|покупк)",
            r"\b(?:сделаем|дадим|предоставим|подарим|вышлем|отправим|начислим)\b[^.!?]{0,30}"
            r"\b(?:скидк|промокод|купон|бонус|баллы|подарок)",
        ]
    )
)

# --- contacts -----------------------------------------------------------------------------------

_SENTINEL = "\x00"
_URL_TAIL = r"[^\s<>«»\"'\x00]*"
_TRAILING_PUNCT = ".,!?;:)»…"
_TLDS = "ru|com|рф|net|org|su|me|io|shop|store|online|site|info|biz|pro|by|kz|ua|cc|ly|link|app|page|club"
_CONTACT_PATTERNS = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)),
    ("link", re.compile(rf"(?:https?://|www\.){_URL_TAIL}", re.IGNORECASE)),
    (
        "link",
        re.compile(
            rf"(?<![\w@.-])(?:[a-zа-яё0-9](?:[a-zа-яё0-9-]*[a-zа-яё0-9])?\.)+(?P<tld>{_TLDS})\b(?:/{_URL_TAIL})?",
            re.IGNORECASE,
        ),
    ),
    ("handle", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{2,}\b")),
    (
        "phone",
        re.compile(
            "|".join(
                [
                    # +7 (495) 123-45-67, 8 800 555 35 35, 89161234567, 7-916-123-45-67
                    r"(?<![\w+\-/.])(?:\+\s?7|8|7)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?![\w-])",
                    # (916) 123-45-67, 916 123 45 67: a mobile without its prefix, separators required
                    r"(?<![\w\-/.])(?:\(9\d{2}\)\s*|9\d{2}[\s-])\d{3}[\s-]\d{2}[\s-]\d{2}(?![\w-])",
                    r"(?<![\w\-/.])\d{3}-\d{2}-\d{2}(?![\w-])",  # a city number, 123-45-67
                    r"(?<![\w+])\+\d{1,3}[\s(-]*\d{2,3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?![\w-])",  # +375 (29) …
                ]
            )
        ),
    ),
]
_MESSENGER = re.compile(
    r"\b(?:telegram|телеграм\w*|тг|whats\s?app|вотсап\w*|ватсап\w*|вацап\w*|viber|вайбер\w*|вибер\w*"
    r"|instagram|инстаграм\w*|инст[аеуы]|вконтакте|вк|vk|skype|скайп\w*)\b"
)
# A messenger right before what looks like an account name («телеграм: shop_msk», «WhatsApp 8916…»).
_MESSENGER_ACCOUNT = re.compile(_MESSENGER.pattern + r"[\s:–—-]+[@a-z0-9_+][a-z0-9_.-]{2,}")
_MESSENGER_INVITATION = re.compile(
    r"\b(?:нам|нас|нами|наш\w*|мне|мой|моя)\b|пиш|напиш|звон|связ|свяж|обращ|канал|групп|подпис|контакт|личк|аккаунт"
    r"|профил|добавля|добавь"
)
# Words that make a sentence holding a contact "about contacting": it goes whole.
_CONTACT_CUES = re.compile(
    r"пиш|напиш|звон|связ|свяж|обращ|телефон|\bномер|почт|e-?mail|имейл|мейл|сайт|ссылк|переход|перейд|контакт"
    r"|\bтел\b|мессенджер|канал|групп|подпис|страниц|профил|аккаунт|личк|\bлс\b|директ"
)
_CLAUSE_SEP = re.compile(r"([,;]\s+|:\s*(?=\x00)|:\s+|\s[—–-]\s)")
# A sentence ending in one of these after its contact went would not read («Подробнее на.»).
_DANGLING = {
    "на", "по", "в", "во", "через", "к", "ко", "с", "со", "у", "о", "об", "от", "для", "и", "или", "а", "но",
    "тут", "здесь", "подробнее", "ниже", "адрес", "адресу", "ссылка", "ссылке", "номер", "номеру",
    "телефон", "телефону", "почта", "почте", "сайт", "сайте", "email", "e-mail", "нам", "мне",
}  # fmt: skip
_DEICTIC = re.compile(r"(?:там|тут|здесь|туда|по ней|по нему|на нем|на ней)\b")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])\s+")
# «см. shop.ru», «тел. 8 916…»: a dot after these does not end the sentence (or the contact's sentence would split).
_ABBREVIATION_END = re.compile(r"(?:^|[\s(])(?:см|тел|т\.\s?[едпк]|ул|напр|стр|им)\.$", re.IGNORECASE)
_WORD = re.compile(r"[\w-]+")


def _sentences(line: str) -> list[str]:
    sentences: list[str] = []
    for piece in _SENTENCE_SPLIT.split(line):
        if sentences and _ABBREVIATION_END.search(sentences[-1]):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return sentences


def _mark_contacts(sentence: str) -> tuple[str, list[str]]:
    """The sentence with every contact replaced by a sentinel, and the kinds found."""
    kinds = []

    def replace(kind):
        def sub(match):
            token = match.group(0)
            tld = match.groupdict().get("tld")
            if tld and not (tld.islower() or tld.isupper()):  # «X.Pro» is a model name, «shop.ru» a domain
                return token
            stripped = token.rstrip(_TRAILING_PUNCT)
            kinds.append(kind)
            return _SENTINEL + token[len(stripped) :]

        return sub

    for kind, pattern in _CONTACT_PATTERNS:
        sentence = pattern.sub(replace(kind), sentence)
    return sentence, kinds


def _drop_contact_clauses(marked: str) -> str:
    """What is left of a sentence once the clauses holding its contacts go; "" if it would not read."""
    terminal = re.search(r"[.!?…]+$", marked.rstrip())
    ending = terminal.group(0) if terminal else ""
    body = re.sub(r"\s*\([^()]*\x00[^()]*\)", "", marked.rstrip()[: len(marked.rstrip()) - len(ending)])
    parts = _CLAUSE_SEP.split(body)
    kept, separator, start_dropped = [], "", False
    for index, part in enumerate(parts):
        if index % 2:
            separator = part
            continue
        dropped_before = index > 0 and _SENTINEL in parts[index - 2]
        # «shop.ru — там всё видно»: a clause pointing at the contact goes with it.
        if _SENTINEL in part or not part.strip() or (dropped_before and _DEICTIC.match(fold(part))):
            start_dropped = start_dropped or not kept
            continue
        kept.append((separator if kept else "") + part)
    left = "".join(kept).strip().rstrip(",;:—–- ")
    words = _WORD.findall(left.lower())
    # A stub of one or two words («Тоже наш.») only made sense with the contact.
    if len(words) < 3 or words[-1] in _DANGLING:
        return ""
    if start_dropped and left[:1].islower():
        left = left[0].upper() + left[1:]
    return left + (ending or "")


def _clean_sentence(sentence: str, foreign: re.Pattern) -> tuple[str, list[str]]:
    folded = fold(sentence)
    if _REFUND_PROMISE.search(folded):
        return "", ["refund promise"]
    if foreign.search(folded):
        return "", ["other marketplace"]
    marked, kinds = _mark_contacts(sentence)
    if _MESSENGER.search(folded) and (
        kinds or _MESSENGER_ACCOUNT.search(folded) or _MESSENGER_INVITATION.search(folded)
    ):
        return "", ["messenger", *kinds]
    if not kinds:
        return sentence, []
    if _CONTACT_CUES.search(fold(marked.replace(_SENTINEL, " "))):
        return "", kinds
    return _drop_contact_clauses(marked), kinds


def clean_for_marketplace(text: str, marketplace: str) -> GuardedText:
    """The text as the marketplace allows it to be sent, and what was removed (see the module docstring)."""
    if marketplace not in MAX_CHARS:
        raise ValueError(f"unknown marketplace {marketplace!r}")
    foreign = _FOREIGN[marketplace]
    removed: list[str] = []
    lines = []
    for line in strip_markdown(text).split("\n"):
        kept = []
        for sentence in _sentences(line):
            cleaned, kinds = _clean_sentence(sentence, foreign)
            removed += kinds
            if cleaned.strip():
                kept.append(cleaned.strip())
        if kept or not line.strip():
            lines.append(" ".join(kept))
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    limit = MAX_CHARS[marketplace]
    if len(cleaned) > limit:
        cleaned = limit_length(cleaned, limit)
        if len(cleaned) > limit:  # one word longer than the limit: limit_length's "…" would overflow
            cleaned = cleaned[: limit - 1] + "…"
        removed.append(f"cut to {limit}")
    return GuardedText(cleaned, list(dict.fromkeys(removed)))


# --- items that need a person -------------------------------------------------------------------

DEFECT = "defect"
WRONG_ITEM = "wrong item"
RETURN = "return"
COMPLAINT = "complaint"
LOW_RATING = "low rating"

# Words that carry the complaint themselves («брак», «протекает»): a negation or «ли» next to
# them («без брака», «брака нет», «Не протекает ли?») makes them praise or a neutral question.
_NEGATABLE = {
    DEFECT: [
        r"\bбрак(?:а|е|у|ом|и|ов)?\b",
        r"\bбракован\w*",
        r"\bдефект\w*",
        r"\bнеисправ\w*",
        r"\bсломал\w*",
        r"\bсломан\w*",
        r"\bполомал\w*",
        r"\bполомк\w*",
        r"\bразбит\w*",
        r"\bразбил\w*",
        r"\bтрес(?:нул|нув|кал|кает|кается)\w*",
        r"\bповрежд\w*",
        r"\bтрещин\w*",
        r"\bлопнул\w*",
        r"\bпорван\w*",
        r"\bпорвал\w*",
        r"\bдыр(?:а|ы|у|ой|ка|ку|ки|очк\w*)\b",
        r"\bоторвал\w*",
        r"\bотвалил\w*",
        r"\bпротека\w*",
        r"\bпротек(?:ла|ло|ли)?\b",
        r"\bподтека\w*",
        r"\bтечет\b",
        r"\bтечь\b",
        r"\bиспорч\w*",
        r"\bиспортил\w*",
        r"\bтухл\w*",
        r"\bпротух\w*",
        r"\bпросроч\w*",
        r"\bплесен\w*",
        r"\bплесн\w*",
        r"\bзаплесн\w*",
        r"\bгнил\w*",
        r"\bсгнил\w*",
        r"\bпрогорк\w*",
        r"\bвоня\w*",
        r"\bвонюч\w*",
        r"\bвонь\b",
        r"\bвздут\w*",
        r"\bвздул\w*",
        r"\b(?:пахнет|пахло|запах)\w* (?:странно|плохо|неприятно|тухл|кисл)\w*",
        r"\bпротух\w*",
        r"\bскис\w*",
        r"\bразморож\w*",
        r"\bрастаял\w*",
        r"\bотравил\w*",
        r"\bотравлени\w*",
        r"\bцарапин\w*",
        r"\bпоцарапан\w*",
        r"\bвмятин\w*",
        r"\bпомят\w*",
        r"\bскол(?:ы|ом|ами)?\b",
        r"\bполинял\w*",
        r"\bлиняет\b",
        r"\bнекачествен\w*",
        r"\b(?:плох|ужасн|отвратительн|низк|паршив|отстойн|никак)\w* качеств\w*",
    ],
    WRONG_ITEM: [
        r"\bперепутал\w*",
        r"\bпересорт\w*",
        r"\bнедовлож\w*",
        r"\bнедолож\w*",
        r"\bнедостач\w*",
        r"\bнедокомплект\w*",
        r"\bнекомплект\w*",
    ],
    RETURN: [
        r"\bвозврат\w*",
        r"\bвозвраща(?:ю|ем)\b",
        r"\bвозвращу\b",
        # «вернуть», «верните», «вернули» — not «вернётся», «вернусь» («Когда вернётся в наличие?»)
        r"\bверн(?:уть|ите|ете|у|ем|ешь|ули|ула|ул)\b",
        r"\bобмен\w*",
        r"\bденьги назад\b",
        r"\b(?:хочу|требую|нужна|сделайте|оформите|прошу) замен\w*",
        r"\bзамените\b",
        # «поменять» a size is an exchange; «поменять адрес / время доставки» is not
        r"\bпомен(?:ять|яйте|яю|яем)\b(?!\s+(?:адрес|врем|дат|способ|пункт|получател|телефон|номер))",
    ],
    COMPLAINT: [
        r"\bпретензи\w*",
        r"\bжалоб\w*",
        r"\bпожалу(?:юсь|емся)\b",
        r"\bроспотребнадзор\w*",
        r"\bв суд\b",
        r"\bобманул\w*",
        r"\bобман\b",
        r"\bмошенни\w*",
        r"\bподделк\w*",
        r"\bподдельн\w*",
        r"\bконтрафакт\w*",
        r"\bне оригинал\w*",
    ],
}
_DELIVERED = (
    r"(?:прислали|прислал|прислала|пришел|пришла|пришло|пришли|привезли|доставили|положили|отправили|выдали|вложили)"
)
# Phrases that are complaints with their own «не» («не работает», «прислали не тот»): no negation check.
_PLAIN = {
    DEFECT: [
        r"\bне (?:работает|работают|работал\w*)\b(?! ли\b)",
        r"\bнерабоч\w*",
        r"\bперестал\w* (?:работать|включаться|заряжаться)",
        r"\bне (?:включа|заряжа|запуска|греет|греют|нагрева|светит|горит|крутит|печатает|функционир)\w*(?! ли\b)",
        r"\b(?:не|плохо) (?:закрыва|застег|открыва)\w*(?! ли\b)",
        r"\b(?:истек|вышел|прошел|закончился) срок годности",
        r"\bсрок\w* годности (?:уже )?(?:истек|вышел|прошел|закончился)\b",
        rf"\b{_DELIVERED}\b[^.!?]{{0,30}}\b(?:мокр|промок|размок|грязн|вскрыт|мят)\w*",
    ],
    WRONG_ITEM: [
        rf"\b{_DELIVERED} не (?:тот|то|те|та|ту|того|той)\b",
        r"\bне (?:тот|та|то|те|ту|того|той) (?:размер|цвет|товар|модел|артикул|вкус|объем|вес|комплект|фасон|заказ)",
        r"\bне то,? что (?:я )?(?:заказыва|заказал|выбира|хотел|покупа|оплачива)\w*",
        rf"\b{_DELIVERED}\b[^.!?]{{0,40}}\bвместо\b",
        rf"\bвместо\b[^.!?]{{0,40}}\b{_DELIVERED}\b",
        rf"\b{_DELIVERED}\b[^.!?]{{0,30}}\bдруг(?:ой|ого|ую|ие|ое|им)\b",
        # «Заказывала красную икру, а положили щучью»
        rf"\bзаказыва\w*[^.!?]{{0,60}}\bа {_DELIVERED}\b",
        r"\bне (?:хватает|хватало|хватило|доложили|положили|вложили)\b",
        r"\bне соответству\w*",
        r"\bнет в (?:посылке|коробке|заказе|упаковке|пакете|наборе|комплекте)\b",
    ],
    RETURN: [
        r"\b(?:отдайте|вернуть|верните) (?:мне |мои |наши )?деньги\b",
    ],
    COMPLAINT: [],
}
# «Есть ли возврат тары?» asks about returnable packaging (a product fact), not about returning an order.
_NOT_A_RETURN = re.compile(r"\bвозврат\w* тар\w*|\bвозвратн\w* (?:тар|упаковк|бутыл)\w*")
_NEGATION_BEFORE = re.compile(
    r"\b(?:не|без|нет|ни|никакого|никакой|никаких|ничего|нисколько|отсутствие|отсутствуют)\b(?:\s+\S+)?\s*$"
)
_NEGATION_AFTER = re.compile(
    r"^\s+(?:нет|не было|не обнаружен\w*|не обнаружил\w*|не заметил\w*|не замечен\w*|не нашл\w*|не нужен"
    r"|не нужна|не нужно|не требуется|ли)\b"
)
_CLAUSE_START = re.compile(r"[,.!?;:—–(]")


def _compiled(groups: dict[str, list[str]]) -> list[tuple[str, re.Pattern]]:
    return [(reason, re.compile("|".join(patterns))) for reason, patterns in groups.items() if patterns]


_NEGATABLE_RE = _compiled(_NEGATABLE)
_PLAIN_RE = _compiled(_PLAIN)
_ORDER = (DEFECT, WRONG_ITEM, RETURN, COMPLAINT)


def _negated(folded: str, match: re.Match) -> bool:
    before = folded[: match.start()]
    clause_start = max((m.end() for m in _CLAUSE_START.finditer(before)), default=0)
    return bool(_NEGATION_BEFORE.search(before[clause_start:]) or _NEGATION_AFTER.match(folded[match.end() :]))


def _reason_in_text(text: str) -> str:
    folded = fold(text)
    masked = _NOT_A_RETURN.sub(lambda m: " " * len(m.group(0)), folded)
    found = set()
    for reason, pattern in _PLAIN_RE:
        if pattern.search(masked):
            found.add(reason)
    for reason, pattern in _NEGATABLE_RE:
        if any(not _negated(masked, match) for match in pattern.finditer(masked)):
            found.add(reason)
    return next((reason for reason in _ORDER if reason in found), "")


def needs_a_person(text: str, *, stream: str, rating: int | None = None) -> str:
    """Why staff must answer this item themselves; "" when it may be answered automatically.

    The reason is one of "defect", "wrong item", "return", "complaint" (a claim, a regulator or
    court named, «обманули») or "low rating"; when the text has several, the first in that order.

    Choices:
    - Stems, on folded text (case, ё/е): «сломалась», «СЛОМАН», «треснула» all match.
    - A complaint word next to a negation or «ли» in its clause is not a complaint: «без брака»,
      «брака нет», «ничего не сломано», «Не протекает ли крышка?», «Протекает ли?».
    - Any talk of returning or exchanging fires, pre-purchase policy questions included («Можно ли
      вернуть, если не подойдёт?»): marketplace returns follow the marketplace's rules, which the
      bot must not paraphrase. Not «Когда вернётся в наличие?» («вернётся» is not «вернуть») and
      not «Есть ли возврат тары?» (returnable packaging is a product fact).
    - Hypothetical defects fire too («Что делать, если придёт брак?»): a person answers those safely.
    - Reviews ("reviews" stream) rated 1–2 always need a person; the text's own reason is given when
      it has one, else "low rating". A 3–5 rating is no excuse: a complaint in the text still fires.
      Ratings on other streams are ignored (only reviews carry them).
    - Not covered: late or lost deliveries and cancellations («Где мой заказ?», «Отмените заказ»),
      which the marketplace handles; counted shortfalls without a cue word («Заказала 3, пришло 2»).
    """
    reason = _reason_in_text(text or "")
    if reason:
        return reason
    if stream == "reviews" and rating is not None and rating <= 2:
        return LOW_RATING
    return ""
