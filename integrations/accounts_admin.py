"""Channel accounts in admin: the bots and connections of every channel.

Secrets are write-only: the form takes a new token or webhook secret and never
shows the stored one (a field left empty keeps it); the list says only
whether each is set.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from conversations.models import Channel, ChannelAccount

SECRET_FIELDS = ("token", "webhook_secret")


def _secret_field(label, help_text) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class ChannelAccountForm(forms.ModelForm):
    token = _secret_field(_("token"), _("Shown never again once saved; leave empty to keep the stored one."))
    webhook_secret = _secret_field(
        _("webhook secret"),
        _("Telegram sends it with every update (setWebhook secret_token): letters, digits, _ and -."),
    )

    class Meta:
        model = ChannelAccount
        fields = ["channel", "key", "name", "token", "webhook_secret", "operator_chat_id", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The stored values are never sent to the browser.
        for name in SECRET_FIELDS:
            self.initial[name] = ""

    def clean(self):
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(ChannelAccount.objects.get(pk=self.instance.pk), name)
        return cleaned


@admin.register(ChannelAccount)
class ChannelAccountAdmin(admin.ModelAdmin):
    form = ChannelAccountForm
    list_display = ["__str__", "channel", "key", "is_active", "has_token", "has_webhook_secret", "webhook_url"]
    list_filter = ["channel", "is_active"]
    search_fields = ["key", "name"]
    readonly_fields = ["webhook_url", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A key is part of the webhook URL the channel was given: fixed once saved.
        return [*self.readonly_fields, "channel", "key"] if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # Conversations keep their account (PROTECT); an unused account may go.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.conversations.exists())

    @admin.display(boolean=True, description=_("token set"))
    def has_token(self, account):
        return bool(account.token) or (account.key == ChannelAccount.DEFAULT_KEY and _env_token(account.channel))

    @admin.display(boolean=True, description=_("webhook secret set"))
    def has_webhook_secret(self, account):
        default = account.key == ChannelAccount.DEFAULT_KEY and account.channel == Channel.TELEGRAM
        return bool(account.webhook_secret) or (default and bool(settings.TELEGRAM_WEBHOOK_SECRET))

    @admin.display(description=_("webhook address"))
    def webhook_url(self, account):
        if account.channel != Channel.TELEGRAM or not account.key:
            return self.get_empty_value_display()
        try:
            if account.key == ChannelAccount.DEFAULT_KEY:
                path = reverse("telegram:webhook")
            else:
                path = reverse("telegram:account-webhook", args=[account.key])
        except NoReverseMatch:
            return self.get_empty_value_display()
        return settings.PUBLIC_URL.rstrip("/") + path


def _env_token(channel: str) -> bool:
    return channel == Channel.TELEGRAM and bool(settings.TELEGRAM_BOT_TOKEN)
