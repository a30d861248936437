"""What the model is told: the system prompt, the dialog history, and a budget.

Tokens are estimated, not counted: no tokenizer ships for every provider, and
the estimate errs high (about 2 characters a token for Cyrillic, 4 for Latin,
plus a per-message overhead), so a prompt under the budget by this count is
under it for the real tokenizers too.
"""

import json
import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from bots.models import AssistantSettings
from catalog.models import Category, FAQEntry
from catalog.selectors import match_faq
from conversations.models import Conversation, Message

MESSAGE_OVERHEAD_TOKENS = 4
HISTORY_TURN_CHARS = 300
# An earlier bot reply matters for what it offered, not for its product lines and links.
HISTORY_REPLY_CHARS = 150


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / 4 + (len(text) - ascii_chars) / 2)


def estimate_messages(messages: list[dict], tools: list[dict] = ()) -> int:
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + estimate_tokens(message.get("content") or "")
        if message.get("tool_calls"):
            total += estimate_tokens(json.dumps(message["tool_calls"], ensure_ascii=False))
    if tools:
        total += estimate_tokens(json.dumps(list(tools), ensure_ascii=False))
    return total


def system_prompt(config: AssistantSettings, *, question: str = "", faq_limit: int = 2, recent: str = "") -> str:
    """Rules, tone, catalog sections, the FAQ answers that fit this question,
    and what the dialog last showed (`recent`, bots.dialog.prompt_lines).

    The rest of the FAQ is named by topic only (the model looks it up with
    lookup_faq): all answers in every prompt would cost more than the history.
    """
    store = config.store_name or "интернет-магазин"
    relevant = match_faq(question, limit=faq_limit) if question and faq_limit else []
    faq_text = "\n".join(f"— {e.question} {e.answer}" for e in relevant)
    topics = "; ".join(
        FAQEntry.objects.filter(is_active=True).order_by("sort_order", "id").values_list("question", flat=True)
    )
    categories = ", ".join(
        Category.objects.filter(parent__isnull=True).order_by("sort_order", "title").values_list("title", flat=True)
    )
    return "\n".join(
        part
        for part in [
            f"Ты — консультант магазина «{store}» в чате с покупателем. Отвечай по-русски.",
            f"Тон: {config.tone}" if config.tone else "",
            f"Правила магазина: {config.policies}" if config.policies else "",
            "Товары, цены, наличие и ссылки узнавай только через инструменты search_catalog и get_product "
            "или из списка последних показанных товаров ниже; не придумывай товары, которых нет в результатах.",
            "Упоминая товар, вставляй метку [[product:ID]] с его id из результатов инструмента — система "
            "подставит точное название, цену, наличие и ссылку. Сам цены и ссылки не пиши.",
            "Если товара нет в наличии, скажи об этом и предложи похожие товары в наличии.",
            "Если запрос неясен, задай один уточняющий вопрос.",
            "Если покупатель просит живого человека, жалуется или вопрос вне твоих знаний, "
            "вызови инструмент handoff_to_operator с причиной.",
            "Пиши простым текстом без Markdown: без звёздочек, решёток и таблиц.",
            f"Разделы каталога: {categories}." if categories else "",
            f"Темы частых вопросов (ответы — через lookup_faq): {topics}." if topics else "",
            f"Ответы магазина, относящиеся к вопросу:\n{faq_text}" if faq_text else "",
            recent,
        ]
        if part
    )


def history(conversation: Conversation, current: Message) -> list[dict]:
    """Earlier turns of this dialog, oldest first, within HISTORY_TTL_S and the current context."""
    since = timezone.now() - timedelta(seconds=settings.HISTORY_TTL_S)
    if conversation.context_started_at and conversation.context_started_at > since:
        since = conversation.context_started_at
    earlier = (
        conversation.messages.filter(created_at__gte=since)
        .exclude(pk=current.pk)
        .exclude(author=Message.Author.SYSTEM)
        .filter(created_at__lte=current.created_at)
        .order_by("-created_at", "-id")
        .values_list("direction", "author", "text", "transcript")[:50]
    )
    turns = []
    for direction, author, text, transcript in reversed(earlier):
        if direction == Message.Direction.IN:
            # A voice message's words are its transcript.
            said = transcript or text
            if not said:
                continue  # a sticker, a picture: nothing the model could read
            turns.append({"role": "user", "content": _clip(said)})
        else:
            prefix = "[оператор] " if author == Message.Author.OPERATOR else ""
            turns.append({"role": "assistant", "content": prefix + _clip(_before_list(text), HISTORY_REPLY_CHARS)})
    return turns


def _before_list(text: str) -> str:
    """A reply up to its numbered product list: the last list is in the system
    prompt by product id (bots.dialog.prompt_lines), older ones are past."""
    head, numbered, _rest = text.partition("\n1. ")
    return head + " …" if numbered and head.strip() else text


def _clip(text: str, limit: int = HISTORY_TURN_CHARS) -> str:
    """Earlier turns matter for what was asked and offered, not for every product line."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def build_messages(
    conversation: Conversation,
    current: Message,
    config: AssistantSettings,
    *,
    tools: list[dict],
    budget: int,
    recent: str = "",
) -> list[dict]:
    """System prompt, as much recent history as fits the budget, and the new message."""
    system = {"role": "system", "content": system_prompt(config, question=current.text, recent=recent)}
    user = {"role": "user", "content": current.text}
    turns = history(conversation, current)
    while True:
        messages = [system, *turns, user]
        if estimate_messages(messages, tools) <= budget or not turns:
            break
        turns = turns[1:]  # the oldest turn goes first
    if estimate_messages(messages, tools) > budget:
        # Long FAQ answers alone exceed the budget: the model can still look
        # them up with the lookup_faq tool.
        system = {"role": "system", "content": system_prompt(config, faq_limit=0, recent=recent)}
        messages = [system, user]
    return messages
