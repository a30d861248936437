from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bots.guardrails import fold
from bots.llm import OFF, configured_provider, default_model

DEFAULT_HANDOFF_TEXT = (
    "Передаю диалог оператору — он ответит вам здесь же в ближайшее время. "
    "Если вопрос срочный, можно позвонить в магазин."
)
# {store} is the store's name.
DEFAULT_WELCOME_TEXT = (
    "Здравствуйте! Я консультант магазина «{store}». Подскажу по ассортименту, ценам и наличию, "
    "расскажу о доставке и оплате — просто напишите, что ищете. "
    "Если нужен человек, нажмите «Позвать оператора» или напишите «оператор»."
)
DEFAULT_WAITING_TEXT = "Ваше сообщение получено — оператор ответит здесь же, как только освободится."
# {hours} is when operators work, e.g. "пн–пт с 09:00 до 21:00".
OFF_DUTY_TEXT = "Сейчас операторы не на связи: они работают {hours}. Ответим, как только начнётся рабочее время."
OFF_DUTY_NO_HOURS_TEXT = "Сейчас операторы не на связи. Ответим, как только сможем."
DEFAULT_MEDIA_TEXT = (
    "Спасибо! Я понимаю текст и голосовые сообщения, а картинки и файлы пока не разбираю. "
    "Напишите, пожалуйста, что вы ищете, — подскажу."
)
DEFAULT_VOICE_FAILED_TEXT = (
    "Извините, не получилось разобрать голосовое сообщение. Напишите, пожалуйста, вопрос текстом — отвечу сразу."
)
DEFAULT_VOICE_TOO_LONG_TEXT = (
    "Голосовое сообщение слишком длинное, я не смогу его разобрать. "
    "Напишите, пожалуйста, вопрос текстом или запишите покороче."
)
DEFAULT_TONE = "Дружелюбно и по делу, на «вы», коротко: два-четыре предложения или короткий список."
DEFAULT_POLICIES = (
    "Не обещай скидок, подарков, возвратов и сроков, которых нет в ответах магазина. "
    "Цены, остатки и ссылки бери только из результатов инструментов."
)
# The guardrails read ё as е, so "вернём деньги" also covers "вернем деньги".
DEFAULT_BANNED_PHRASES = "\n".join(
    ["вернём деньги", "гарантируем возврат", "сделаем скидку", "дадим скидку", "промокод"]
)


class AssistantSettings(models.Model):
    """How the assistant behaves; one row, edited in admin, read on every message.

    The LLM fields override the environment only where staff set them: a blank
    one (None, or "" for the model) means "as the environment says", read on
    every message, so a key added to .env works after a restart. Read them
    through llm_enabled, effective_provider(), model_name and temperature.
    """

    class Provider(models.TextChoices):
        NONE = "", _("No LLM: answers from catalog and FAQ")
        OPENAI = "openai", _("OpenAI-compatible API")
        GIGACHAT = "gigachat", _("GigaChat")
        LOCMEM = "locmem", _("In-memory (tests)")

    # None: as LLM_ENABLED says.
    use_llm = models.BooleanField(_("use the LLM"), null=True, blank=True, default=None)
    # None: as the environment says (bots.llm.configured_provider); "": no LLM chosen here.
    # Two empty values on purpose: "not set here" and "set here to none" differ.
    provider = models.CharField(  # noqa: DJ001
        _("LLM provider"), max_length=16, choices=Provider.choices, null=True, blank=True, default=None
    )
    model = models.CharField(
        _("model"),
        max_length=128,
        blank=True,
        default="",
        help_text=_("Empty: the provider's model from the environment (OPENAI_MODEL, GIGACHAT_MODEL)."),
    )
    # None: LLM_TEMPERATURE.
    llm_temperature = models.FloatField(
        _("temperature"),
        null=True,
        blank=True,
        default=None,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text=_("From 0 (the same answer every time) to 2; empty: LLM_TEMPERATURE from the environment."),
    )
    store_name = models.CharField(_("store name"), max_length=200, default="")
    tone = models.TextField(_("tone"), blank=True, default=DEFAULT_TONE)
    policies = models.TextField(_("policies"), blank=True, default=DEFAULT_POLICIES)
    handoff_words = models.TextField(
        _("handoff words"),
        blank=True,
        default="",
        help_text=_("Extra words or phrases, one per line, on which the dialog goes to an operator."),
    )
    handoff_text = models.TextField(_("handoff reply"), default=DEFAULT_HANDOFF_TEXT)
    waiting_text = models.TextField(
        _("reply while waiting for an operator"),
        default=DEFAULT_WAITING_TEXT,
        help_text=_("Sent once when the customer writes again before an operator has answered."),
    )
    contacts = models.TextField(
        _("store contacts"),
        blank=True,
        default="",
        help_text=_(
            "Phone, e-mail, address and hours, as the customer should see them: the reply to "
            "“how can I reach you?”. Empty: such a question is answered from the FAQ."
        ),
    )
    welcome_text = models.TextField(
        _("welcome"),
        default=DEFAULT_WELCOME_TEXT,
        help_text=_("Sent when a dialog starts; {store} is replaced with the store name."),
    )
    media_text = models.TextField(_("reply to pictures, stickers and files"), default=DEFAULT_MEDIA_TEXT)
    voice_failed_text = models.TextField(
        _("reply to a voice message not understood"), default=DEFAULT_VOICE_FAILED_TEXT
    )
    voice_too_long_text = models.TextField(_("reply to a voice message too long"), default=DEFAULT_VOICE_TOO_LONG_TEXT)
    banned_phrases = models.TextField(
        _("banned phrases"),
        blank=True,
        default=DEFAULT_BANNED_PHRASES,
        help_text=_(
            "One per line. A sentence of a bot reply containing one is removed before sending. "
            "Capitals and ё/е are not told apart: “вернём деньги” also removes “вернем деньги”."
        ),
    )
    max_reply_chars = models.PositiveIntegerField(_("longest reply, characters"), default=1500)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("assistant settings")
        verbose_name_plural = _("assistant settings")

    def __str__(self) -> str:
        return str(_("Assistant settings"))

    def save(self, *args, **kwargs):
        self.pk = 1  # one row
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> "AssistantSettings":
        row = cls.objects.filter(pk=1).first()
        if row is None:
            row, _created = cls.objects.get_or_create(
                pk=1,
                # The LLM fields stay blank: the environment decides until staff set them.
                defaults={"store_name": settings.STORE_NAME},
            )
        return row

    @property
    def welcome(self) -> str:
        if self.store_name:
            return self.welcome_text.replace("{store}", self.store_name)
        return self.welcome_text.replace(" «{store}»", "").replace("{store}", "")

    def off_duty_note(self, at=None) -> str:
        """What a customer handed to a person is told while operators are off duty (and how to reach the store).

        Operators' hours are the inbox's working hours (inbox.models.WorkingHours,
        Holiday): one schedule for the SLA and for what customers are told.
        """
        from inbox.sla import WorkingSchedule  # inbox builds on the assistant; imported when asked

        schedule = WorkingSchedule.load()
        if schedule.is_open(at or timezone.now()):
            return ""
        hours = schedule.describe()
        note = OFF_DUTY_TEXT.format(hours=hours) if hours else OFF_DUTY_NO_HOURS_TEXT
        return f"{note}\n{self.contacts}" if self.contacts else note

    def handoff_reply(self, at=None) -> str:
        note = self.off_duty_note(at)
        return f"{self.handoff_text}\n\n{note}" if note else self.handoff_text

    def waiting_reply(self, at=None) -> str:
        note = self.off_duty_note(at)
        return f"{self.waiting_text}\n\n{note}" if note else self.waiting_text

    @property
    def handoff_word_list(self) -> list[str]:
        return [w.strip() for w in self.handoff_words.splitlines() if w.strip()]

    @property
    def banned_phrase_list(self) -> list[str]:
        return unique_phrases(self.banned_phrases.splitlines())

    # The LLM as it is used: the row's value where staff set one, else the environment's.

    @property
    def llm_enabled(self) -> bool:
        return settings.LLM_ENABLED if self.use_llm is None else self.use_llm

    @llm_enabled.setter
    def llm_enabled(self, value: bool | None) -> None:
        self.use_llm = value

    def effective_provider(self) -> str:
        """The provider the assistant uses: the row's, else the environment's; "" for no LLM."""
        if self.provider is None:
            return configured_provider()
        return "" if self.provider in OFF else self.provider

    @property
    def model_name(self) -> str:
        return self.model or default_model(self.effective_provider())

    @property
    def temperature(self) -> float:
        return settings.LLM_TEMPERATURE if self.llm_temperature is None else self.llm_temperature

    @temperature.setter
    def temperature(self, value: float | None) -> None:
        self.llm_temperature = value

    def uses_llm(self) -> bool:
        """Whether replies are asked of the model (the assistant also needs the provider to start)."""
        return self.llm_enabled and bool(self.effective_provider())


def unique_phrases(lines) -> list[str]:
    """The non-empty lines, stripped, without those that fold to an earlier one
    ("вернем деньги" after "вернём деньги")."""
    seen, phrases = set(), []
    for line in lines:
        phrase = line.strip()
        key = fold(phrase)
        if key and key not in seen:
            seen.add(key)
            phrases.append(phrase)
    return phrases
