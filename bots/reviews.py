"""The bot's answer to a marketplace review: thanks in the store's voice, never a product list.

A review is not a question: the buyer has bought and says how it went. A
4–5★ review gets thanks; a 3★ one thanks and a promise to take note (one
with a complaint in it, and every 1–2★ review, goes to a person instead:
bots.marketplace_rules.needs_a_person). Answers under one product's reviews
should not all read the same, so the wording varies with the review.
"""

import hashlib

WARM = [
    "Спасибо за отзыв и высокую оценку! Рады, что покупка понравилась — ждём вас снова.",
    "Благодарим за тёплый отзыв! Нам очень приятно, что вы довольны. До новых заказов!",
    "Спасибо, что нашли время оставить отзыв! Рады, что всё понравилось, будем рады видеть вас снова.",
]
POLITE = [
    "Спасибо за отзыв! Жаль, что не всё понравилось: мы учтём ваши замечания.",
    "Благодарим за честный отзыв. Передадим ваши замечания команде, чтобы в следующий раз было лучше.",
    "Спасибо, что поделились впечатлениями! Обязательно учтём ваш отзыв в работе.",
]


def review_reply(*, rating: int | None, customer_name: str = "", product_name: str = "", seed: str = "") -> str:
    variants = WARM if rating is None or rating >= 4 else POLITE
    pick = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(variants) if seed else 0
    text = variants[pick]
    name = customer_name.strip().split(" ")[0] if customer_name.strip() else ""
    if name and name.isalpha():
        text = f"{name}, {text[0].lower()}{text[1:]}"
    if product_name and rating is not None and rating >= 4:
        text += f" Ваш отзыв о «{product_name}» поможет другим покупателям с выбором."
    return text
