"""The marketplaces' own answer rules, seeded as each new account's deadlines (AnswerDeadline rows).

- Ozon: a seller may write in a buyer chat for 48 hours after the buyer's
  last message; low-star reviews want an answer the same working day.
- Wildberries: a new chat asks for an answer within 24 hours; questions are
  ranked by how fast they are answered; reviews go to the archive after 30
  days and can no longer be answered there.
- Yandex Market: chats waiting for the partner count against the shop's
  rating after 24 hours.
Staff edit them in admin; what is seeded is only the start.
"""

from integrations.marketplaces.models import AnswerDeadline, Marketplace, MarketplaceAccount, Stream

HOUR, DAY = 60, 24 * 60

# (stream, max_rating, minutes, in working hours, warn before, why)
RULES = {
    Marketplace.OZON: [
        (Stream.CHAT, None, 48 * HOUR, False, 4 * HOUR, "Ozon закрывает ответ в чат через 48 часов"),
        (Stream.REVIEWS, None, 7 * DAY, False, DAY, "Отзыв без ответа неделю выглядит заброшенным"),
        (Stream.REVIEWS, 2, 4 * HOUR, True, HOUR, "Плохой отзыв — ответить в тот же рабочий день"),
    ],
    Marketplace.WILDBERRIES: [
        (Stream.CHAT, None, DAY, False, 2 * HOUR, "Wildberries просит ответить в чат за 24 часа"),
        (Stream.QUESTIONS, None, 4 * HOUR, True, HOUR, "Быстрый ответ на вопрос поднимает карточку"),
        (Stream.REVIEWS, None, 30 * DAY, False, 3 * DAY, "Через 30 дней Wildberries убирает отзыв в архив"),
        (Stream.REVIEWS, 2, 4 * HOUR, True, HOUR, "Плохой отзыв — ответить в тот же рабочий день"),
    ],
    Marketplace.YANDEX_MARKET: [
        (Stream.CHAT, None, DAY, False, 2 * HOUR, "Маркет учитывает ответы в чатах дольше суток в рейтинге"),
    ],
}


def seed_deadlines(account: MarketplaceAccount) -> None:
    for stream, max_rating, minutes, working, warn, note in RULES[account.marketplace]:
        AnswerDeadline.objects.get_or_create(
            account=account,
            stream=stream,
            max_rating=max_rating,
            defaults={"minutes": minutes, "in_working_hours": working, "warn_before_minutes": warn, "note": note},
        )
