"""What a seller may write on Ozon, Wildberries and Yandex Market, and which buyer items a person answers."""

import re

import pytest

from bots.marketplace_rules import MAX_CHARS, GuardedText, clean_for_marketplace, needs_a_person

MARKETPLACES = ["ozon", "wildberries", "yandex_market"]
DIGITS = re.compile(r"\d")


def reads_as_text(text: str) -> bool:
    """No contact leftovers: no space before punctuation, no empty brackets, no preposition before a dot."""
    return not re.search(r"\s[.,!?:;]|\(\s*\)|\b(?:на|по|в|через|номеру|телефону)\s*[.!?]|^\W", text)


# --- contacts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("marketplace", MARKETPLACES)
@pytest.mark.parametrize(
    "contact_sentence",
    [
        "Пишите нам на https://shop.ru/contacts.",
        "Подробнее на сайте http://example.com/page?id=5.",
        "Загляните на www.seafood-msk.ru!",
        "Каталог целиком на shop.ru.",
        "Наш канал t.me/seafood_msk.",
        "Мы есть ВКонтакте: vk.com/seafood.",
        "Напишите в wa.me/79161234567.",
        "Все размеры найдёте на магазин.рф.",
        "Переходите по ссылке bit.ly/3xYz.",
        "Больше фото на SHOP.RU/photos.",
    ],
)
def test_a_sentence_that_sends_the_buyer_to_a_link_goes(marketplace, contact_sentence):
    result = clean_for_marketplace(f"Здравствуйте! {contact_sentence} Спасибо за заказ!", marketplace)

    assert result.text == "Здравствуйте! Спасибо за заказ!"
    assert "link" in result.removed


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Товар в наличии, подробности www.x.ru/p?id=1, доставка 2 дня.", "Товар в наличии, доставка 2 дня."),
        ("Фото упаковки (см. shop.ru/img) приложили.", "Фото упаковки приложили."),
        ("shop.ru — там всё видно, размер M подойдёт.", "Размер M подойдёт."),
        ("Модель новая (shop.ru/new), размер M подойдёт.", "Модель новая, размер M подойдёт."),
        ("Размер M подойдёт; таблица shop.ru/sizes.", "Размер M подойдёт."),
    ],
)
def test_a_link_in_a_sentence_about_something_else_takes_only_its_clause(text, cleaned):
    result = clean_for_marketplace(text, "ozon")

    assert result.text == cleaned
    assert result.removed == ["link"]


@pytest.mark.parametrize(
    "phone",
    [
        "+7 (495) 123-45-67",
        "8 800 555 35 35",
        "89161234567",
        "+79161234567",
        "7-916-123-45-67",
        "8(916)123-45-67",
        "8-800-555-35-35",
        "+7 916 123 45 67",
        "(916) 123-45-67",
        "916 123-45-67",
        "123-45-67",
        "+375 (29) 123-45-67",
    ],
)
@pytest.mark.parametrize(
    "template",
    [
        "Звоните по номеру {}.",
        "Наш телефон: {}.",
        "Если что, {}, спросите Ивана.",
        "{} — горячая линия.",
    ],
)
def test_a_phone_number_goes_in_any_russian_format(phone, template):
    result = clean_for_marketplace(f"Спасибо за вопрос! {template.format(phone)} Хорошего дня!", "wildberries")

    assert not DIGITS.search(result.text)
    assert "phone" in result.removed
    assert result.text.startswith("Спасибо за вопрос!")
    assert result.text.endswith("Хорошего дня!")
    assert reads_as_text(result.text)


@pytest.mark.parametrize("marketplace", MARKETPLACES)
@pytest.mark.parametrize(
    "text",
    [
        "Цена 1 290 ₽, со скидкой 990 ₽.",
        "Вес упаковки 500 г, в коробке 12 шт.",
        "Ваш заказ 12345678-0001 уже в пути.",
        "Заказ 87654321-0001-1 передан в доставку.",
        "Доставим 05.12.2026 с 10:00 до 18:00.",
        "Срок годности до 2027-03-01.",
        "Артикул 123456789, размер 48-50.",
        "Креветки 70/90, 1 кг, 2 упаковки по 1 290 ₽ = 2 580 ₽.",
        "Температура хранения от -18 до -25 °C, 24 месяца.",
        "Батарея 5000 мА·ч, заряд 100 % за 1,5 часа.",
    ],
)
def test_ordinary_numbers_are_not_phones(marketplace, text):
    assert clean_for_marketplace(text, marketplace) == GuardedText(text, [])


@pytest.mark.parametrize(
    "email",
    ["info@shop.ru", "Ivan.Petrov+orders@mail.example.com", "sale-24@магазин.рф", "support@seafood-msk.ru"],
)
@pytest.mark.parametrize(
    ("template", "left"),
    [
        ("Напишите нам на {}.", ""),
        ("Почта для претензий: {}.", ""),
        ("Связь по {} круглосуточно.", ""),
        ("Реквизиты вышлем сегодня, {}.", "Реквизиты вышлем сегодня. "),
        ("{}, ответ будет завтра.", "Ответ будет завтра. "),
    ],
)
def test_an_email_goes(email, template, left):
    result = clean_for_marketplace(f"Здравствуйте! {template.format(email)} Спасибо!", "yandex_market")

    assert result.text == f"Здравствуйте! {left}Спасибо!"
    assert "email" in result.removed


@pytest.mark.parametrize(
    "sentence",
    [
        "Пишите в телеграм @seafood_msk.",
        "Наш телеграм: seafood_msk.",
        "Напишите нам в WhatsApp.",
        "Наш вотсап 89161234567.",
        "Добавляйтесь в Viber.",
        "Мы в вайбере, пишите.",
        "Свяжитесь с нами в Telegram.",
        "Подписывайтесь на наш инстаграм.",
        "Пишите в личку @ivan_shop.",
        "Ответим в ТГ, пишите.",
    ],
)
def test_a_messenger_contact_or_invitation_goes(sentence):
    result = clean_for_marketplace(f"Спасибо за отзыв! {sentence} Всего доброго!", "ozon")

    assert result.text == "Спасибо за отзыв! Всего доброго!"
    assert result.removed


@pytest.mark.parametrize(
    "text",
    [
        "Часы показывают уведомления WhatsApp и Telegram.",
        "Приложение умеет отправлять фото в Viber.",
    ],
)
def test_a_messenger_named_as_a_product_feature_stays(text):
    assert clean_for_marketplace(text, "ozon").text == text


# --- refunds and compensation -------------------------------------------------------------------


@pytest.mark.parametrize("marketplace", MARKETPLACES)
@pytest.mark.parametrize(
    "promise",
    [
        "Мы вернём деньги в течение дня.",
        "Вернем вам деньги сразу.",
        "ВЕРНЁМ ВСЮ СУММУ.",
        "Деньги мы вам обязательно вернём.",
        "Мы компенсируем стоимость доставки.",
        "Возместим ущерб полностью.",
        "Гарантируем полный возврат средств.",
        "Оформим возврат денег без вопросов.",
        "Сделаем скидку на следующий заказ.",
        "Дадим промокод на 500 ₽.",
        "Предложим компенсацию.",
        "Деньги будут возвращены на карту.",
        "В качестве извинения начислим бонусы.",
    ],
)
def test_a_refund_or_compensation_promise_removes_its_sentence(marketplace, promise):
    result = clean_for_marketplace(f"Нам очень жаль. {promise} Спасибо, что написали!", marketplace)

    assert result.text == "Нам очень жаль. Спасибо, что написали!"
    assert result.removed == ["refund promise"]


@pytest.mark.parametrize(
    "text",
    [
        "Возврат оформляется в личном кабинете покупателя.",
        "Мы вернёмся к вам с ответом завтра.",
        "Проверим заказ и вернём его в доставку.",
        "Скидка 10 % действует до воскресенья.",
    ],
)
def test_talk_that_promises_no_money_stays(text):
    assert clean_for_marketplace(text, "ozon").text == text


# --- other marketplaces -------------------------------------------------------------------------

OTHER_NAMES = {
    "ozon": ["Wildberries", "WB", "вайлдберриз", "Валдберис", "ВБ", "Яндекс Маркет", "Я.Маркет", "Маркете"],
    "wildberries": ["Ozon", "Озоне", "ОЗОН", "Яндекс.Маркет", "Маркете", "yandex market"],
    "yandex_market": ["Ozon", "Озоне", "Wildberries", "WB", "Вайлдберриз"],
}
ALWAYS_FOREIGN = ["Авито", "AliExpress", "Алиэкспресс", "Мегамаркет", "СберМегаМаркет", "Lamoda", "Ламоде", "Amazon"]
OWN_NAMES = {
    "ozon": ["Ozon", "Озоне", "OZON"],
    "wildberries": ["Wildberries", "WB", "Вайлдберриз"],
    "yandex_market": ["Яндекс Маркет", "Маркете", "Я.Маркет"],
}


@pytest.mark.parametrize(
    ("marketplace", "name"),
    [(marketplace, name) for marketplace, names in OTHER_NAMES.items() for name in names + ALWAYS_FOREIGN],
)
def test_another_marketplace_named_removes_its_sentence(marketplace, name):
    result = clean_for_marketplace(f"Спасибо за вопрос! Этот товар есть и на {name}. Хорошего дня!", marketplace)

    assert result.text == "Спасибо за вопрос! Хорошего дня!"
    assert result.removed == ["other marketplace"]


@pytest.mark.parametrize(
    ("marketplace", "name"),
    [(marketplace, name) for marketplace, names in OWN_NAMES.items() for name in names],
)
def test_the_marketplace_itself_may_be_named(marketplace, name):
    text = f"Возврат оформляется через {name}, в личном кабинете."

    assert clean_for_marketplace(text, marketplace) == GuardedText(text, [])


@pytest.mark.parametrize("marketplace", MARKETPLACES)
@pytest.mark.parametrize(
    "text",
    [
        "На маркетплейсе цены те же.",
        "Фильтр WB-200 подходит к этой модели.",
        "Маркетплейсы доставляют за 2 дня.",
        "Купили в супермаркете рядом?",
        "Наш маркетолог ответит позже.",
    ],
)
def test_words_that_merely_contain_a_marketplace_name_stay(marketplace, text):
    assert clean_for_marketplace(text, marketplace).text == text


# --- length -------------------------------------------------------------------------------------


@pytest.mark.parametrize("marketplace", MARKETPLACES)
def test_a_long_text_is_cut_to_the_marketplace_limit_at_a_sentence_end(marketplace):
    limit = MAX_CHARS[marketplace]
    sentences = [f"Предложение номер {n} рассказывает о товаре подробно." for n in range(200)]
    text = " ".join(sentences)

    result = clean_for_marketplace(text, marketplace)

    assert len(result.text) <= limit
    assert len(result.text) > limit // 2
    assert result.text.endswith("подробно.")
    assert text.startswith(result.text)
    assert result.removed == [f"cut to {limit}"]


def test_the_limits_are_ozon_and_wildberries_1000_and_market_4096():
    assert MAX_CHARS == {"ozon": 1000, "wildberries": 1000, "yandex_market": 4096}
    text = " ".join(["Это длинный ответ о доставке и хранении."] * 50)  # about 2,000 characters

    assert len(clean_for_marketplace(text, "ozon").text) <= 1000
    assert len(clean_for_marketplace(text, "wildberries").text) <= 1000
    assert clean_for_marketplace(text, "yandex_market").text == text


@pytest.mark.parametrize("marketplace", MARKETPLACES)
def test_a_text_within_the_limit_is_not_cut(marketplace):
    text = "а" * 10 + " " + "б" * (MAX_CHARS[marketplace] - 11)

    assert clean_for_marketplace(text, marketplace) == GuardedText(text, [])


@pytest.mark.parametrize("marketplace", MARKETPLACES)
def test_a_text_without_sentence_ends_is_cut_between_words(marketplace):
    limit = MAX_CHARS[marketplace]
    text = " ".join(["слово"] * limit)

    result = clean_for_marketplace(text, marketplace).text

    assert len(result) <= limit
    assert result.endswith("слово…")


# --- what stays as written ----------------------------------------------------------------------


@pytest.mark.parametrize("marketplace", MARKETPLACES)
@pytest.mark.parametrize(
    "text",
    [
        "Работа курьера начинается в 9:00.",
        "Это робот-пылесос с влажной уборкой.",
        "Отправим в субботу, по линии СДЭК.",
        "Обработка заказа занимает день.",
        "Линии продукции: ИИгра и Ботаника.",
        "Ботинки в наличии, доработанная модель.",
        "Заработает после зарядки, субботний привоз свежий.",
        "Подробно: обработка паром, без химии.",
    ],
)
def test_words_that_merely_contain_bot_or_ai_are_untouched(marketplace, text):
    assert clean_for_marketplace(text, marketplace) == GuardedText(text, [])


def test_markdown_is_stripped_because_marketplaces_show_plain_text():
    result = clean_for_marketplace("## Ответ\n**Креветки** есть, *свежие*.\n- 1 кг\n- 2 кг", "ozon")

    assert result.text == "Ответ\nКреветки есть, свежие.\n• 1 кг\n• 2 кг"
    assert result.removed == []


def test_a_markdown_link_goes_with_its_address():
    result = clean_for_marketplace("Смотрите [каталог](https://shop.ru/catalog) у нас. Спасибо!", "ozon")

    assert "shop.ru" not in result.text
    assert result.text.endswith("Спасибо!")
    assert "link" in result.removed


def test_several_rules_at_once_record_each_kind_once():
    text = (
        "Здравствуйте! Мы вернём деньги. Звоните 8 800 555 35 35. Или 8 916 123 45 67 — тоже наш. "
        "На Wildberries дешевле. Ждём вас снова!"
    )

    result = clean_for_marketplace(text, "ozon")

    assert result.text == "Здравствуйте! Ждём вас снова!"
    assert result.removed == ["refund promise", "phone", "other marketplace"]


def test_an_unknown_marketplace_is_an_error():
    with pytest.raises(ValueError, match="avito"):
        clean_for_marketplace("Привет", "avito")


# --- needs a person -----------------------------------------------------------------------------

DEFECTS = [
    "Пришёл брак, крышка не закрывается",
    "Товар бракованный",
    "ПРИШЁЛ БРАКОВАННЫЙ ТОВАР!!!",
    "Телефон сломан",
    "Ручка сломалась через день",
    "Не работает совсем",
    "Перестал работать через неделю",
    "Кружка треснула при первом использовании",
    "Бутылка протекает",
    "Икра испорчена",
    "Рыба испортилась в дороге",
    "Мидии тухлые, запах ужасный",
    "Пришло протухшее",
    "Творог просрочен",
    "Прислали просрочку",
    "На хлебе плесень",
    "Сыр заплесневел",
    "Креветки пришли размороженные",
    "Коробка разбита, банка треснула",
    "Не включается после зарядки",
    "Истёк срок годности ещё до доставки",
    "На экране царапины и скол",
    "Треснувший корпус",
    "Упаковка повреждена",
    "Посылка пришла мокрая",
    "Ужасное качество",
]
WRONG_ITEMS = [
    "Прислали не тот товар",
    "Пришёл не тот размер",
    "Не тот цвет, заказывала чёрный",
    "Вы перепутали заказ",
    "Это не то, что я заказывал",
    "Пересорт: вместо 500 г пришло 250 г",
    "В посылке не хватает одной банки",
    "Недовложение, нет второго носка",
    "Прислали синий вместо красного",
    "Пришла не та модель",
    "Вместо икры кеты положили горбушу",
    "Недокомплект, нет зарядки",
    "Перепутали размеры",
    "Пришёл другой цвет",
    "Зарядки нет в коробке",
    "Не соответствует описанию",
]
RETURNS = [
    "Верните деньги",
    "Хочу вернуть товар",
    "Как оформить возврат?",
    "Хочу обменять на другой размер",
    "Можно обменять?",
    "Верните мне деньги за заказ",
    "Требую возврат средств",
    "Оформите возврат, пожалуйста",
    "Как вернуть заказ?",
    "Деньги верните!",
    "Хочу сделать обмен",
    "Возвращаю товар, не подошёл",
    "Отдайте деньги",
    "Можно ли вернуть, если не подойдёт?",
    "Маломерит, хочу поменять",
]
NEUTRAL_QUESTIONS = [
    "Какой срок годности?",
    "Подходит для работы?",
    "Есть ли возврат тары?",
    "Когда товар вернётся в наличие?",
    "Какой размер выбрать при росте 170?",
    "Работаете в субботу?",
    "Какой вес упаковки?",
    "Из какого материала сделан корпус?",
    "Можно ли мыть в посудомоечной машине?",
    "Сколько стоит доставка в Казань?",
    "Есть ли другой цвет?",
    "Подойдёт ли для робота-пылесоса?",
    "Какая обработка поверхности?",
    "Не протекает ли бутылка в сумке?",
    "Протекает ли крышка, если положить набок?",
    "Что входит в комплект?",
    "На сколько хватает одной упаковки?",
    "В течение какого времени доставка?",
    "Сколько граммов в упаковке?",
    "Креветки варёно-мороженые или сырые?",
    "Можно прислать фото упаковки?",
    "Есть размер M?",
    "Можно поменять адрес доставки?",
    "Это оригинал?",
    "Какое качество шва?",
    "Можно мыть мокрой тряпкой?",
]


@pytest.mark.parametrize("stream", ["chat", "questions", "reviews"])
@pytest.mark.parametrize("text", DEFECTS)
def test_a_defect_needs_a_person(text, stream):
    assert needs_a_person(text, stream=stream) == "defect"


@pytest.mark.parametrize("text", WRONG_ITEMS)
def test_a_wrong_item_needs_a_person(text):
    assert needs_a_person(text, stream="chat") == "wrong item"


@pytest.mark.parametrize("text", RETURNS)
def test_a_return_or_exchange_needs_a_person(text):
    assert needs_a_person(text, stream="chat") == "return"


@pytest.mark.parametrize(
    "text",
    [
        "Пишу претензию",
        "Подам жалобу",
        "Пожалуюсь в Роспотребнадзор",
        "Вы меня обманули",
        "Обращусь в суд",
        "Прислали подделку",
        "Это не оригинал",
    ],
)
def test_a_claim_or_threat_needs_a_person(text):
    assert needs_a_person(text, stream="chat") == "complaint"


@pytest.mark.parametrize("stream", ["chat", "questions"])
@pytest.mark.parametrize("text", NEUTRAL_QUESTIONS)
def test_a_neutral_question_may_be_answered_automatically(text, stream):
    assert needs_a_person(text, stream=stream) == ""


@pytest.mark.parametrize("rating", [1, 2])
@pytest.mark.parametrize("text", ["", "Так себе", "Отличный товар!", "Не понравилось", *NEUTRAL_QUESTIONS[:3]])
def test_a_one_or_two_star_review_always_needs_a_person(text, rating):
    assert needs_a_person(text, stream="reviews", rating=rating) == "low rating"


def test_a_low_rated_review_gives_its_texts_own_reason_when_it_has_one():
    assert needs_a_person("Мидии тухлые", stream="reviews", rating=1) == "defect"


PRAISE = [
    "Отличные мидии, всё свежее!",
    "Брака нет, всё целое, спасибо",
    "Без брака, упаковано хорошо",
    "Ничего не сломано, работает отлично",
    "Не протекает, держит тепло весь день",
    "Пришло быстро, ни одной трещины",
    "Вернусь за добавкой!",
    "Обязательно закажу ещё, работает как часы",
    "Всё пришло в целости, ничего не разбито",
    "Лучший робот-пылесос, обработка углов супер",
    "Привезли в субботу, как обещали",
    "Размер подошёл идеально",
]


@pytest.mark.parametrize("text", PRAISE)
def test_five_star_praise_never_needs_a_person(text):
    assert needs_a_person(text, stream="reviews", rating=5) == ""


@pytest.mark.parametrize(
    ("text", "reason"),
    [("Нормально, но крышка треснула", "defect"), ("В целом ок, прислали не тот цвет", "wrong item")],
)
def test_a_three_star_review_fires_on_its_complaint(text, reason):
    assert needs_a_person(text, stream="reviews", rating=3) == reason
    assert needs_a_person("Нормально, средне", stream="reviews", rating=3) == ""


def test_a_rating_outside_reviews_is_ignored():
    assert needs_a_person("Есть размер M?", stream="chat", rating=1) == ""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Банка пришла вздутая, пахнет странно", "defect"),
        ("Рыба протухла, пока ехала", "defect"),
        ("Заказывала красную икру, а положили щучью", "wrong item"),
    ],
)
def test_spoiled_goods_and_a_swapped_item_in_other_words_go_to_a_person(text, reason):
    assert needs_a_person(text, stream="chat") == reason
