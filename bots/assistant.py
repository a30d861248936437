"""The assistant: a conversation and a new customer message in, a reply out.

Order of work: a dialog an operator has taken gets no bot reply; a request
for a person hands the dialog off; with an LLM configured and enabled the
model answers with tools over the catalog and FAQ; otherwise, or when the
LLM fails, the answer is built from the catalog and FAQ directly. Both read
the dialog's context (bots.dialog: what was last shown), and every reply
says what the context becomes. Every reply passes the guardrails. The
assistant never sends: the caller does.
"""

import copy
import logging

from bots import after_sale, dialog, intents, ordering
from bots.guardrails import apply_guardrails
from bots.llm import LLMError, get_provider
from bots.llm_mode import llm_reply
from bots.models import AssistantSettings
from bots.replies import Kind, Reply
from bots.retrieval import retrieval_reply
from catalog.selectors import match_faq
from conversations.models import Conversation, Message

logger = logging.getLogger(__name__)


def reply(conversation: Conversation, message: Message) -> Reply | None:
    if conversation.state != Conversation.State.BOT:
        return None
    context = dialog.load(conversation)
    answer = _answer(conversation, message, context)
    answer.context = _with_basket(conversation, dialog.after(context, answer), answer.basket)
    return answer


def _with_basket(conversation: Conversation, context: dict | None, basket: dict | None) -> dict | None:
    """The context to store, with the basket the reply left (a new one, or the stored one kept)."""
    stored = (conversation.dialog_context or {}).get(ordering.CONTEXT_KEY)
    if basket is None:
        if stored and stored.get("choice"):
            # A reply about something else ends the choice it offered: «вторую» then means the newer list.
            basket = {**stored, "choice": []}
        elif context is None or not stored:
            return context
        else:
            basket = stored
    result = dict(conversation.dialog_context or {}) if context is None else dict(context)
    if basket.get("lines") or basket.get("choice"):
        result[ordering.CONTEXT_KEY] = basket
    else:
        result.pop(ordering.CONTEXT_KEY, None)
    return result


def _answer(conversation: Conversation, message: Message, context: dialog.DialogContext | None) -> Reply:
    config = AssistantSettings.load()
    # A voice message is answered from its transcript (integrations.voice stores it).
    message = _as_text(message)
    if intents.asks_for_operator(message.text, config.handoff_word_list):
        reason = "the customer asked for a person"
        return Reply(config.handoff_reply(), Kind.HANDOFF, handoff=True, handoff_reason=reason)
    missed = intents.complains_not_understood(message.text) and _answers_missed(conversation, message)
    if missed and missed >= MISSES_BEFORE_HANDOFF:
        return Reply(
            config.handoff_reply(),
            Kind.HANDOFF,
            handoff=True,
            handoff_reason="the customer says the bot does not understand, after answers that missed",
        )
    provider = _provider(config)
    # The order being put together reads the message first: «2», «доставка», a phone are its answers.
    ordered = ordering.answer(conversation, message, message.text, context=context, with_llm=provider is not None)
    if ordered is not None:
        return ordered
    if intents.asks_for_contacts(message.text):
        if config.contacts:
            return Reply(config.contacts, Kind.FAQ, suggestions=["Позвать оператора"])
        if not match_faq(message.text):
            # No contacts in the settings and no FAQ answer: this chat is the way to reach the store.
            return Reply(NO_CONTACTS_TEXT, Kind.FAQ, suggestions=["Позвать оператора"])
    # «Где мой заказ?» and returns, from the customer's own orders (before the catalog and the LLM).
    after = after_sale.answer(conversation, message, config)
    if after is not None:
        return after

    answer = _catalog_or_llm_answer(conversation, message, context, config=config, provider=provider)
    if answer.basket is None and not answer.handoff:
        # Answered something else in the middle of the checkout: its question again, the basket kept.
        reminder = ordering.reminder(conversation)
        if reminder:
            answer.text += "\n\n" + reminder
    return answer


def draft(conversation: Conversation, message: Message) -> Reply:
    """What the assistant would answer this message, for an operator to edit and send (the inbox's
    «Предложить ответ»), whoever the dialog is with. Nothing is recorded, sent or changed: no basket,
    order, return request or hand-off comes of it."""
    config = AssistantSettings.load()
    return _catalog_or_llm_answer(
        conversation, _as_text(message), dialog.load(conversation), config=config, provider=_provider(config)
    )


def _catalog_or_llm_answer(
    conversation: Conversation, message: Message, context: dialog.DialogContext | None, *, config, provider
) -> Reply:
    """The model's answer with tools when there is a model, else (or when it fails) the catalog's, guarded."""
    answer = None
    llm_error = ""
    if provider is not None:
        try:
            answer = llm_reply(conversation, message, provider=provider, config=config, context=context)
        except LLMError as exc:
            llm_error = str(exc)[:500]
            logger.warning("LLM failed for conversation %s, answering from the catalog: %s", conversation.pk, exc)
    if answer is None:
        answer = retrieval_reply(message.text, store_name=config.store_name, context=context)
        if llm_error:
            answer.kind = Kind.FALLBACK
            answer.llm_error = llm_error
    # Banned phrases guard against the model's promises; FAQ answers and
    # catalog lines are the store's own words and may say "вернём деньги".
    banned = config.banned_phrase_list if answer.kind == Kind.LLM else []
    answer.text, removed = apply_guardrails(answer.text, banned=banned, max_chars=config.max_reply_chars)
    if removed:
        logger.info("guardrails removed %s from a reply in conversation %s", removed, conversation.pk)
    if not answer.text:
        answer = retrieval_reply(message.text, store_name=config.store_name, context=context)
    return answer


NO_CONTACTS_TEXT = (
    "Пишите прямо сюда — ответим в этом чате. Если нужен сотрудник магазина, напишите «оператор» — подключу человека."
)


# Replies that did not answer: a clarifying question, a fallback after an LLM failure.
MISSED_KINDS = (Kind.CLARIFY, Kind.FALLBACK)
MISSES_BEFORE_HANDOFF = 2


def _answers_missed(conversation: Conversation, message: Message) -> int:
    """How many of the bot's last replies before this message missed, counted back to the first that did not."""
    recent = (
        Message.objects.filter(conversation=conversation, author=Message.Author.BOT, pk__lt=message.pk)
        .order_by("-pk")
        .values_list("reply_kind", flat=True)[:MISSES_BEFORE_HANDOFF]
    )
    missed = 0
    for kind in recent:
        if kind not in MISSED_KINDS:
            break
        missed += 1
    return missed


def _provider(config: AssistantSettings):
    name = config.effective_provider()
    if not (config.llm_enabled and name):
        return None
    try:
        return get_provider(name)
    except LLMError as exc:
        logger.warning("LLM provider not available: %s", exc)
        return None


# A longer message is answered from its first part: the work per message stays
# bounded whatever the customer pastes (a whole order list, a log, a novel).
MAX_INPUT_CHARS = 2000


def _as_text(message: Message) -> Message:
    """The message with `transcript or text` as its text, for every step that reads the text,
    cut to its first MAX_INPUT_CHARS at a word boundary.

    A copy when they differ: the stored message keeps what the customer sent.
    """
    text = message.transcript or message.text
    if len(text) > MAX_INPUT_CHARS:
        head = text[:MAX_INPUT_CHARS]
        # Cut at the last space, so no word is read half.
        text = head.rsplit(None, 1)[0] if " " in head else head
    if text == message.text:
        return message
    asked = copy.copy(message)
    asked.text = text
    return asked
