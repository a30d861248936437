"""The operator inbox's own data (SLA policies, working hours, canned replies).

Times are the store's local time (settings.TIME_ZONE); inbox.sla counts SLA
deadlines in working time only.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from conversations.models import Channel


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


# Open within one day: a shift over midnight is two days' rows.
_OPEN_OR_CLOSED = Q(is_closed=True) | Q(opens_at__isnull=False, closes_at__isnull=False, opens_at__lt=F("closes_at"))


class _Hours(models.Model):
    is_closed = models.BooleanField(_("closed"), default=False)
    opens_at = models.TimeField(_("opens"), null=True, blank=True)
    closes_at = models.TimeField(_("closes"), null=True, blank=True)

    class Meta:
        abstract = True

    def clean(self):
        super().clean()
        if self.is_closed:
            return
        if self.opens_at is None or self.closes_at is None:
            raise ValidationError(_("Give the opening and closing time, or mark the day closed."))
        if self.opens_at >= self.closes_at:
            raise ValidationError({"closes_at": _("Closing time must be after opening time.")})

    def hours(self):
        """(opens_at, closes_at), or None on a closed day."""
        return None if self.is_closed else (self.opens_at, self.closes_at)


class WorkingHours(_Hours):
    """When operators answer on a weekday; SLA time runs only then."""

    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices, unique=True)

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        ordering = ["weekday"]
        constraints = [models.CheckConstraint(condition=_OPEN_OR_CLOSED, name="working_hours_open_before_close")]

    def __str__(self) -> str:
        day = self.get_weekday_display()
        if self.is_closed:
            return f"{day}: {_('closed')}"
        return f"{day}: {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"


class Holiday(_Hours):
    """A date that replaces its weekday's hours: closed all day by default, or with its own hours."""

    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    is_closed = models.BooleanField(_("closed all day"), default=True)

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]
        constraints = [models.CheckConstraint(condition=_OPEN_OR_CLOSED, name="holiday_open_before_close")]

    def __str__(self) -> str:
        return f"{self.date:%d.%m.%Y} {self.name}".strip()


class SlaPolicy(models.Model):
    """How soon an operator must answer in a channel, in working minutes."""

    DEFAULT_CHANNEL = ""

    channel = models.CharField(
        _("channel"),
        max_length=32,
        choices=[(DEFAULT_CHANNEL, _("Any other channel")), *Channel.choices],
        blank=True,
        default=DEFAULT_CHANNEL,
        unique=True,
    )
    first_response_minutes = models.PositiveIntegerField(
        _("first response, minutes"),
        default=15,
        help_text=_("Working minutes from the hand-off to a person until an operator's first answer."),
    )
    next_response_minutes = models.PositiveIntegerField(
        _("next response, minutes"),
        default=30,
        help_text=_("Working minutes from a later customer message until an operator answers it."),
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["channel"]
        # Reports have no model of their own; their permission lives with the SLA they measure.
        permissions = [("view_reports", _("Can view inbox reports"))]

    def __str__(self) -> str:
        return str(self.get_channel_display())


class CannedReply(models.Model):
    """A ready answer operators insert into the reply box (a click, or its shortcut: «/доставка»)."""

    title = models.CharField(_("title"), max_length=120)
    # Typed in the reply box as "/<shortcut>" and replaced by the text.
    shortcut = models.SlugField(
        _("shortcut"),
        max_length=40,
        unique=True,
        allow_unicode=True,
        help_text=_("Typed as /shortcut in the reply box."),
    )
    text = models.TextField(_("text"))
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        ordering = ["sort_order", "title"]

    def __str__(self) -> str:
        return self.title
