"""Answers built from the catalog and the FAQ alone: the mode without an LLM,
and the fallback when the LLM fails."""

from bots import followups, intents
from bots.dialog import DialogContext
from bots.replies import OPERATOR_HINT, Kind, Reply, found_reply, list_reply
from catalog.followups import featured_in_stock
from catalog.query import find_products, price_limit
from catalog.selectors import categories_in_stock, match_faq
from catalog.services import record_search_miss
from catalog.text import words

SUGGESTIONS = ["Доставка", "Оплата", "Позвать оператора"]


def retrieval_reply(text: str, *, store_name: str = "", context: DialogContext | None = None) -> Reply:
    if intents.is_thanks(text):
        return Reply("Пожалуйста! Если появятся вопросы — пишите, я на связи.", Kind.GREETING)
    if intents.is_greeting(text):
        hello = f"Здравствуйте! Это {store_name}." if store_name else "Здравствуйте!"
        return Reply(
            f"{hello} Подскажу по ассортименту, ценам, наличию, доставке и оплате. Что вы ищете?",
            Kind.GREETING,
            suggestions=SUGGESTIONS,
        )
    text = intents.without_people_not_asked_for(intents.strip_greeting(text)) or text
    follow = intents.read_followup(text)
    if context is not None:
        answer = followups.answer(text, follow, context)
        if answer is not None:
            return answer
    faq = match_faq(text)
    if faq:
        return Reply(faq[0].answer, Kind.FAQ, suggestions=SUGGESTIONS)
    if intents.is_vague(text) and not price_limit(text)[0]:
        # «что есть дешевле 300 рублей?» is vague about the product, not about the budget.
        return clarifying_question(context=context, sections=_asks_for_sections(text))
    if (follow.asks or follow.ordinal) and not follow.words:
        # «а подешевле?», «второй» with nothing shown before: there is nothing to search for.
        return clarifying_question(context=context)
    searched, note = followups.inherited(text, follow, context)
    answer = found_reply(find_products(searched), note=note)
    if answer is not None:
        return answer
    # For the reports: what customers look for that the catalog does not name (a synonym to add?).
    record_search_miss(searched)
    return clarifying_question(nothing_found=True, context=context)


# Categories named in a clarifying question, as examples: the buttons carry them too.
CLARIFY_CATEGORIES = 3
SECTIONS = 10


def _asks_for_sections(text: str) -> bool:
    """ "каталог", "какой у вас ассортимент?" (Telegram's /catalog too): the sections are the answer."""
    return any(w.startswith(("каталог", "ассортимент")) for w in words(text))


def clarifying_question(
    *, nothing_found: bool = False, context: DialogContext | None = None, sections: bool = False
) -> Reply:
    """A short question; never the same one twice in a row: the second time, products to choose from."""
    asked = context.clarified if context else 0
    if asked % 2 == 1:
        return _proposal(context)
    if sections:
        categories = categories_in_stock(limit=SECTIONS)
        if categories:
            return Reply(
                f"В каталоге: {', '.join(categories)}. Что вам интересно? Можно с бюджетом или фасовкой: "
                "«икра до 2000 рублей».",
                Kind.CLARIFY,
                suggestions=[*categories[:3], "Позвать оператора"],
            )
    categories = categories_in_stock(limit=CLARIFY_CATEGORIES)
    opening = "Не нашёл такого в каталоге." if nothing_found else "С удовольствием помогу с выбором!"
    examples = f" — например, {', '.join(c.lower() for c in categories)}" if categories else ""
    text = (
        f"{opening} Уточните, что вы ищете{examples}? "
        "Можно с бюджетом или фасовкой: «икра до 2000 рублей». Или напишите «оператор» — подключу человека."
    )
    return Reply(text, Kind.CLARIFY, suggestions=[*categories, "Позвать оператора"])


def _proposal(context: DialogContext | None) -> Reply:
    """After a clarifying question that did not help: the store's products to pick from, or a person."""
    products = featured_in_stock()
    asked = (context.clarified if context else 0) + 1
    if not products:
        return Reply(
            "Не получается подобрать по описанию. " + OPERATOR_HINT, Kind.CLARIFY, suggestions=["Позвать оператора"]
        )
    answer = list_reply(
        "Кажется, я не понял запрос. Вот что сейчас есть в наличии — может быть, что-то из этого?",
        products,
        # The list can be picked from («второй»); the count goes on, so the next miss asks again.
        context=DialogContext(shown=[p.pk for p in products], clarified=asked).as_json(),
        ending="Или напишите «оператор» — подключу человека.",
    )
    answer.kind = Kind.CLARIFY
    answer.suggestions = ["Позвать оператора"]
    return answer
