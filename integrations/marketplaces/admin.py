"""Marketplace accounts in admin: the account and its channel account in one form.

Keys are write-only, as the channel accounts' secrets are
(integrations.accounts_admin): the form takes a new key and never shows the
stored one (an empty field keeps it); the list says only whether each is
set. The push URL holds the account's secret, so it is shown on the account's
own page only, never in the list.
"""

import re

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.module_loading import import_string
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations.models import ChannelAccount
from integrations.marketplaces import services
from integrations.marketplaces.connectors import CONNECTORS
from integrations.marketplaces.models import (
    DEFAULT_BASE_URLS,
    WB_FEEDBACKS_BASE_URL,
    AnswerDeadline,
    Marketplace,
    MarketplaceAccount,
    Mode,
    Stream,
)
from integrations.marketplaces.tasks import ensure_poll_schedules

SECRET_FIELDS = ("api_key", "feedbacks_api_key")
CAMPAIGN_SEPARATORS = re.compile(r"[\s,;]+")

# The button posts a form of its own beside «История»: a form inside the change form could not nest.


def _secret_field(label) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Shown never again once saved; leave empty to keep the stored one."),
    )


def _hosts() -> str:
    return "; ".join(f"{Marketplace(value).label} — {url}" for value, url in DEFAULT_BASE_URLS.items())


class MarketplaceAccountForm(forms.ModelForm):
    name = forms.CharField(label=capfirst(_("name")), max_length=200)
    key = forms.SlugField(
        label=capfirst(_("key")),
        max_length=64,
        required=False,
        help_text=_("Names the account among the channel's accounts; empty: made from the name."),
    )
    campaign_ids = forms.CharField(
        label=capfirst(_("campaign ids")),
        required=False,
        help_text=_("Yandex Market: the campaign (shop) ids, separated by commas."),
    )
    # An address typed without a scheme is the marketplace's HTTPS API, never plain HTTP.
    base_url = forms.URLField(label=capfirst(_("API address")), max_length=300, required=False, assume_scheme="https")
    feedbacks_base_url = forms.URLField(
        label=capfirst(_("questions and reviews API address")), max_length=300, required=False, assume_scheme="https"
    )
    api_key = _secret_field(capfirst(_("API key")))
    feedbacks_api_key = _secret_field(capfirst(_("questions and reviews key")))

    class Meta:
        model = MarketplaceAccount
        fields = [
            "marketplace",
            "client_id",
            "token_type",
            "business_id",
            "campaign_ids",
            "api_key",
            "feedbacks_api_key",
            "base_url",
            "feedbacks_base_url",
            "chat_mode",
            "questions_mode",
            "reviews_mode",
            "poll_interval_s",
        ]
        help_texts = {
            "client_id": _("Ozon: the Client-Id shown with the seller's API key."),
            "token_type": _("Wildberries: the token's type as the cabinet names it (personal, service, base)."),
            "business_id": _("Yandex Market: the cabinet's businessId (chats belong to it)."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The stored keys are never sent to the browser.
        for name in SECRET_FIELDS:
            self.initial[name] = ""
        self.initial["campaign_ids"] = ", ".join(str(i) for i in self.instance.campaign_ids or [])
        if self.instance.pk:
            self.initial["name"] = self.instance.channel_account.name
        self._describe_hosts()

    def _describe_hosts(self):
        marketplace = self.instance.marketplace if self.instance.pk else ""
        if "base_url" in self.fields:
            field = self.fields["base_url"]
            if marketplace:
                field.widget.attrs["placeholder"] = DEFAULT_BASE_URLS[marketplace]
            field.help_text = gettext("Empty: the marketplace's own address (%(hosts)s).") % {"hosts": _hosts()}
        if "feedbacks_base_url" in self.fields:
            field = self.fields["feedbacks_base_url"]
            field.widget.attrs["placeholder"] = WB_FEEDBACKS_BASE_URL
            field.help_text = gettext("Wildberries only. Empty: %(url)s.") % {"url": WB_FEEDBACKS_BASE_URL}

    def clean_campaign_ids(self):
        ids = [part for part in CAMPAIGN_SEPARATORS.split(self.cleaned_data.get("campaign_ids") or "") if part]
        if any(not part.isdigit() for part in ids):
            raise forms.ValidationError(_("Campaign ids are numbers, separated by commas."))
        return ids

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            stored = MarketplaceAccount.objects.get(pk=self.instance.pk)
            for name in SECRET_FIELDS:
                if not cleaned.get(name):
                    cleaned[name] = getattr(stored, name)
        marketplace = cleaned.get("marketplace") or self.instance.marketplace
        missing = services.REQUIRED_IDS.get(marketplace)
        if missing and missing in self.fields and not cleaned.get(missing):
            self.add_error(missing, _("Required for this marketplace."))
        key = cleaned.get("key")
        if not self.instance.pk and marketplace and key:
            if ChannelAccount.objects.filter(channel=marketplace, key=key).exists():
                self.add_error("key", _("This marketplace already has an account with this key."))
        return cleaned


class AnswerDeadlineInline(admin.TabularInline):
    """The account's answer rules, seeded from the marketplace's own: staff tune them here."""

    model = AnswerDeadline
    extra = 0
    fields = ["stream", "max_rating", "minutes", "in_working_hours", "warn_before_minutes", "note"]


@admin.register(MarketplaceAccount)
class MarketplaceAccountAdmin(admin.ModelAdmin):
    inlines = [AnswerDeadlineInline]
    form = MarketplaceAccountForm
    list_display = [
        "account_name",
        "marketplace",
        "modes",
        "state",
        "api_key_set",
        "feedbacks_key_set",
        "key_checked_at",
    ]
    list_filter = ["marketplace"]
    search_fields = ["channel_account__name", "channel_account__key", "client_id", "business_id"]
    list_select_related = ["channel_account"]
    actions = ["resume_accounts"]
    readonly_fields = [
        "channel_key",
        "state",
        "stop_reason",
        "read_only_reason",
        "capabilities",
        "key_checked_at",
        "key_check_result",
        "push_url",
        "created_at",
    ]
    ids_fieldset = (_("Marketplace ids"), {"fields": ["client_id", "token_type", "business_id", "campaign_ids"]})
    keys_fieldset = (_("Keys"), {"fields": list(SECRET_FIELDS)})
    hosts_fieldset = (_("API addresses"), {"fields": ["base_url", "feedbacks_base_url"], "classes": ["collapse"]})
    answering_fieldset = (
        _("Answering"),
        {"fields": ["chat_mode", "questions_mode", "reviews_mode", "poll_interval_s"]},
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            head = (None, {"fields": ["name", "key", "marketplace"]})
            return [head, self.ids_fieldset, self.keys_fieldset, self.hosts_fieldset, self.answering_fieldset]
        head = (None, {"fields": ["name", "channel_key", "marketplace"]})
        state = (
            _("State"),
            {
                "fields": [
                    "state",
                    "stop_reason",
                    "read_only_reason",
                    "capabilities",
                    "key_checked_at",
                    "key_check_result",
                    "push_url",
                    "created_at",
                ]
            },
        )
        return [head, state, self.ids_fieldset, self.keys_fieldset, self.hosts_fieldset, self.answering_fieldset]

    def get_readonly_fields(self, request, obj=None):
        # The marketplace decides the channel account's channel: fixed once saved.
        return [*self.readonly_fields, "marketplace"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        name = form.cleaned_data["name"]
        if change:
            # Only what the form edits: the poller may have stopped the account or learned capabilities meanwhile.
            edited = [field for field in MarketplaceAccountForm.Meta.fields if field in form.fields]
            obj.save(update_fields=[*edited, "updated_at"])
            if obj.channel_account.name != name:
                obj.channel_account.name = name
                obj.channel_account.save(update_fields=["name"])
            # A stream switched on or off, a new interval: the polls follow.
            ensure_poll_schedules()
        else:
            services.create_account(obj, name=name, key=form.cleaned_data.get("key") or "")

    def get_urls(self):
        check = path(
            "<path:object_id>/check-key/",
            self.admin_site.admin_view(self.check_key_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_check_key",
        )
        return [check, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self.has_change_permission(request, obj):
            context["check_key_url"] = self._url("check_key", obj)
            context["check_key_label"] = gettext("Check the key")
        return super().change_view(request, object_id, form_url, context)

    def check_key_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        account = self.get_object(request, unquote(object_id))
        if account is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        result = services.check_key(account)
        self.message_user(request, result.detail, messages.SUCCESS if result.ok else messages.ERROR)
        return HttpResponseRedirect(self._url("change", account))

    @admin.action(description=_("Resume"), permissions=["change"])
    def resume_accounts(self, request, queryset):
        count = 0
        for account in queryset:
            services.resume(account)
            count += 1
        self.message_user(request, gettext("Resumed: %(count)s.") % {"count": count}, messages.SUCCESS)

    def _url(self, view: str, account) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{view}", args=[quote(account.pk)]
        )

    @admin.display(description=_("name"), ordering="channel_account__name")
    def account_name(self, account):
        return account.channel_account.name or account.channel_account.key

    @admin.display(description=_("key"))
    def channel_key(self, account):
        return account.channel_account.key

    @admin.display(description=_("modes"))
    def modes(self, account):
        return "; ".join(
            f"{Stream(stream).label}: {Mode(account.mode_for(stream)).label}"
            for stream in _streams(account.marketplace)
        )

    @admin.display(description=_("state"))
    def state(self, account):
        if account.stopped_at:
            return gettext("Stopped: %(reason)s") % {"reason": account.stop_reason or "—"}
        if account.read_only_reason:
            return gettext("Read-only: %(reason)s") % {"reason": account.read_only_reason}
        return gettext("Working")

    @admin.display(description=_("API key"))
    def api_key_set(self, account):
        return _is_set(account.api_key)

    @admin.display(description=_("questions and reviews key"))
    def feedbacks_key_set(self, account):
        return _is_set(account.feedbacks_api_key)

    @admin.display(description=_("notification address"))
    def push_url(self, account):
        if not account.pk or not account.push_secret:
            return self.get_empty_value_display()
        try:
            route = reverse("marketplaces:push", args=[account.pk, account.push_secret])
        except NoReverseMatch:
            # Where the marketplaces' webhook routes mount (integrations.registry) when they are not loaded.
            route = f"/mp/{account.pk}/{account.push_secret}/"
        return settings.PUBLIC_URL.rstrip("/") + route


def _streams(marketplace: str) -> tuple[str, ...]:
    # Market has buyer chats only, Ozon no questions: a mode of a stream it lacks says nothing.
    return import_string(CONNECTORS[marketplace]).streams


def _is_set(value: str) -> str:
    return gettext("set") if value else gettext("not set")
