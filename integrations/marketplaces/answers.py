"""What the bot may say on a marketplace, and when a person answers instead (the channel's reply policy).

Every reply is cleaned by the marketplace's rules (bots.marketplace_rules).
It is held as a draft for an operator when the account's mode for the stream
is "draft", when the buyer writes of a defect, a wrong item or a return, or
leaves a 1–2★ review (those are never answered automatically), and while
the account may not send chat messages.
"""

from bots.marketplace_rules import clean_for_marketplace, needs_a_person
from bots.reviews import review_reply
from conversations.channels import ReplyDecision
from conversations.models import Message
from integrations.marketplaces.accounts import account_of, stream_of
from integrations.marketplaces.base import CHAT, REVIEWS
from integrations.marketplaces.models import Mode

# Shown to the operator beside the draft (the hand-off reason), so in Russian.
DRAFT_MODE = "Режим «черновик для оператора»: ответ ждёт проверки"
PERSON_NEEDED = {
    "defect": "Покупатель пишет о браке",
    "wrong item": "Покупатель получил не тот товар",
    "return": "Покупатель говорит о возврате или обмене",
    "complaint": "Претензия покупателя",
    "low rating": "Отзыв с низкой оценкой",
}
NEVER_AUTOMATIC = "автоматически не отвечаем, нужен человек"
READ_ONLY = "Аккаунт не может отправлять сообщения в чат"


def reply_policy(message, text: str) -> ReplyDecision:
    conversation = message.conversation
    account = account_of(conversation)
    stream = stream_of(conversation)
    context = (conversation.channel_data or {}).get("context") or {}
    rating = context.get("rating") if isinstance(context.get("rating"), int) else None
    kind = ""
    if stream == REVIEWS:
        # A review is thanked, not answered with what is in stock.
        text = review_reply(
            rating=rating,
            customer_name=conversation.customer_name,
            product_name=context.get("product_name", ""),
            seed=conversation.external_id,
        )
        kind = Message.ReplyKind.REVIEW
    cleaned = clean_for_marketplace(text, account.marketplace).text
    if account.mode_for(stream) != Mode.AUTO:
        return ReplyDecision(cleaned, DRAFT_MODE, kind)
    reason = needs_a_person(message.transcript or message.text, stream=stream, rating=rating)
    if reason:
        return ReplyDecision(cleaned, f"{PERSON_NEEDED.get(reason, reason)}: {NEVER_AUTOMATIC}", kind)
    if stream == CHAT and account.read_only_reason:
        return ReplyDecision(cleaned, f"{READ_ONLY}: {account.read_only_reason}", kind)
    return ReplyDecision(cleaned, "", kind)
