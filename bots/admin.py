"""The assistant settings page: one row, opened directly from the list.

The LLM fields say what the environment would give when left blank, the
page shows what is in use and where each value comes from, and a button
asks the provider one short question («Проверить подключение»). Keys stay
in the environment: the page says only whether each is set.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from bots.intents import HANDOFF_PHRASES
from bots.llm import PROVIDERS, REQUIRED_KEYS, default_model, environment_provider, missing_key
from bots.llm.check import check_connection
from bots.models import AssistantSettings, unique_phrases

# The provider select's values: "" keeps the environment's choice (stored as None), OFF_CHOICE is "no LLM" ("").
OFF_CHOICE = "none"


def provider_label(name: str) -> str:
    """ "OpenAI-compatible API (openai)", for a name from the row or the environment."""
    if not name:
        return str(AssistantSettings.Provider.NONE.label)
    if name in AssistantSettings.Provider.values:
        return f"{AssistantSettings.Provider(name).label} ({name})"
    return gettext("unknown provider “%(name)s”") % {"name": name}


def _yes_no(value: bool) -> str:
    return gettext("yes") if value else gettext("no")


class EnvironmentNullBooleanSelect(forms.NullBooleanSelect):
    """Yes / No / as the environment says, the last one naming the environment's value."""

    def __init__(self, environment_label, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", environment_label), ("true", _("Yes")), ("false", _("No"))]


class AssistantSettingsForm(forms.ModelForm):
    provider = forms.ChoiceField(label=_("LLM provider"), required=False)

    class Meta:
        model = AssistantSettings
        fields = [
            "use_llm",
            "provider",
            "model",
            "llm_temperature",
            "store_name",
            "tone",
            "policies",
            "handoff_words",
            "handoff_text",
            "waiting_text",
            "contacts",
            "welcome_text",
            "media_text",
            "voice_failed_text",
            "voice_too_long_text",
            "banned_phrases",
            "max_reply_chars",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        environment = environment_provider()
        self.fields["provider"].label = capfirst(AssistantSettings._meta.get_field("provider").verbose_name)
        self.fields["provider"].choices = [
            ("", gettext("As the environment says: %(provider)s") % {"provider": provider_label(environment.name)}),
            (OFF_CHOICE, AssistantSettings.Provider.NONE.label),
            *((value, label) for value, label in AssistantSettings.Provider.choices if value),
        ]
        stored = self.instance.provider
        self.initial["provider"] = "" if stored is None else (stored or OFF_CHOICE)
        if "use_llm" in self.fields:
            self.fields["use_llm"].widget = EnvironmentNullBooleanSelect(
                gettext("As the environment says (LLM_ENABLED): %(value)s") % {"value": _yes_no(settings.LLM_ENABLED)}
            )
        if "model" in self.fields:
            model = default_model(self.instance.effective_provider())
            if model:
                self.fields["model"].widget.attrs["placeholder"] = model
        if "llm_temperature" in self.fields:
            self.fields["llm_temperature"].widget.attrs["placeholder"] = str(settings.LLM_TEMPERATURE)

    def clean_provider(self):
        value = self.cleaned_data.get("provider") or ""
        if value == "":
            return None  # as the environment says
        return "" if value == OFF_CHOICE else value

    def clean_banned_phrases(self):
        # "вернем деньги" under "вернём деньги" is the same phrase to the guardrails: one line is enough.
        return "\n".join(unique_phrases(self.cleaned_data.get("banned_phrases", "").splitlines()))

    def clean(self):
        cleaned = super().clean()
        if "use_llm" not in cleaned or "provider" not in cleaned:
            return cleaned
        use_llm, provider = cleaned["use_llm"], cleaned["provider"]
        enabled = settings.LLM_ENABLED if use_llm is None else use_llm
        name = environment_provider().name if provider is None else provider
        # Only what staff set here is refused: the environment is fixed outside this page.
        if not enabled or (use_llm is None and provider is None):
            return cleaned
        field = "provider" if provider is not None else "use_llm"
        if not name:
            if use_llm:
                self.add_error(
                    "use_llm",
                    _(
                        "The LLM cannot be on without a provider: choose one below, or set LLM_PROVIDER "
                        "or a key (GIGACHAT_AUTH_KEY, OPENAI_API_KEY) in the environment."
                    ),
                )
        elif name not in PROVIDERS:
            self.add_error(field, _("Unknown LLM provider “%(name)s” (LLM_PROVIDER).") % {"name": name})
        elif key := missing_key(name):
            self.add_error(
                field,
                _("%(provider)s needs %(key)s in the environment; without it the assistant answers without the LLM.")
                % {"provider": provider_label(name), "key": key},
            )
        return cleaned


@admin.register(AssistantSettings)
class AssistantSettingsAdmin(admin.ModelAdmin):
    """One row: the list page opens it directly."""

    form = AssistantSettingsForm
    change_form_template = "admin/bots/assistantsettings/change_form.html"
    readonly_fields = ["llm_status", "builtin_handoff_words"]
    fieldsets = [
        (
            _("LLM"),
            {
                "fields": ["llm_status", "use_llm", "provider", "model", "llm_temperature"],
                "description": _(
                    "A field left as the environment says follows the server's environment (.env) after a restart; "
                    "a value chosen here wins over it. Keys stay in the environment."
                ),
            },
        ),
        (_("Store and tone"), {"fields": ["store_name", "tone", "policies"]}),
        (
            _("Operator handoff"),
            {
                "fields": [
                    "builtin_handoff_words",
                    "handoff_words",
                    "handoff_text",
                    "waiting_text",
                    "contacts",
                ]
            },
        ),
        (_("Channel texts"), {"fields": ["welcome_text", "media_text", "voice_failed_text", "voice_too_long_text"]}),
        (_("Guardrails"), {"fields": ["banned_phrases", "max_reply_chars"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        # Operators' hours are the inbox's working hours (one schedule for the SLA
        # and for the off-duty note): the handoff section links to them.
        fieldsets = [(name, dict(options)) for name, options in super().get_fieldsets(request, obj)]
        for _name, options in fieldsets:
            if "handoff_text" in options.get("fields", ()):
                options["description"] = format_html(
                    '{} <a href="{}">{}</a>.',
                    _("While operators are off duty the handoff reply says when they work:"),
                    reverse("admin:inbox_workinghours_changelist"),
                    _("working hours"),
                )
        return fieldsets

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:bots_assistantsettings_change", AssistantSettings.load().pk)

    def get_urls(self):
        check = self.admin_site.admin_view(require_POST(self.check_connection_view))
        return [path("check-connection/", check, name="bots_assistantsettings_check"), *super().get_urls()]

    def check_connection_view(self, request):
        """«Проверить подключение»: one short call to the provider the saved settings use."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        config = AssistantSettings.load()
        name = config.effective_provider()
        if not name:
            messages.error(request, gettext("Nothing to check: no LLM provider is chosen here or in the environment."))
        else:
            result = check_connection(name, model=config.model_name, temperature=config.temperature)
            values = {"provider": provider_label(name), "model": result.model or "—", "text": result.text}
            if result.ok:
                messages.success(
                    request,
                    gettext("The connection works: %(provider)s, model %(model)s answered “%(text)s”.") % values,
                )
            else:
                messages.error(
                    request, gettext("The connection failed (%(provider)s, model %(model)s): %(text)s") % values
                )
        return redirect("admin:bots_assistantsettings_change", config.pk)

    @admin.display(description=_("in use now"))
    def llm_status(self, config):
        rows = [(gettext("use the LLM"), _yes_no(config.llm_enabled), _source(config.use_llm is None, "LLM_ENABLED"))]
        name = config.effective_provider()
        rows.append((gettext("LLM provider"), provider_label(name), _provider_source(config)))
        if name:
            model_variable = {"openai": "OPENAI_MODEL", "gigachat": "GIGACHAT_MODEL"}.get(name, "")
            rows.append((gettext("model"), config.model_name or "—", _source(not config.model, model_variable)))
        rows.append(
            (
                gettext("temperature"),
                str(config.temperature),
                _source(config.llm_temperature is None, "LLM_TEMPERATURE"),
            )
        )
        keys = "; ".join(
            gettext("%(key)s is set") % {"key": key}
            if getattr(settings, key)
            else gettext("%(key)s is not set") % {"key": key}
            for key in REQUIRED_KEYS.values()
        )
        rows.append((gettext("keys in the environment"), keys, ""))
        table = format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", ((capfirst(a), b, c) for a, b, c in rows)
        )
        return format_html('<p><strong>{}</strong></p><table class="llm-status">{}</table>', _verdict(config), table)

    @admin.display(description=_("built-in handoff words"))
    def builtin_handoff_words(self, config):
        return format_html(
            '{}<br><span class="help">{}</span>',
            ", ".join(HANDOFF_PHRASES),
            gettext(
                "Always on, with requests in plain words (“позовите менеджера”, “хочу поговорить с человеком”); "
                "the field below adds more."
            ),
        )


def _source(from_environment: bool, variable: str) -> str:
    if not from_environment:
        return gettext("set here")
    return gettext("from the environment: %(variable)s") % {"variable": variable} if variable else gettext("default")


def _provider_source(config: AssistantSettings) -> str:
    if config.provider is not None:
        return gettext("set here")
    environment = environment_provider()
    if environment.how == "set":
        return gettext("from the environment: LLM_PROVIDER=%(name)s") % {"name": environment.name}
    if environment.how == "off":
        return gettext("from the environment: LLM_PROVIDER is empty or “none”")
    if environment.how == "key":
        return gettext("from the environment: %(key)s is set") % {"key": environment.variable}
    return gettext("from the environment: no LLM_PROVIDER and no key")


def _verdict(config: AssistantSettings) -> str:
    """One line on whether replies are written by the model, and if not, why."""
    name = config.effective_provider()
    if not config.llm_enabled:
        return gettext("The LLM is off: replies come from the catalog and FAQ.")
    if not name:
        return gettext("No LLM provider is chosen: replies come from the catalog and FAQ.")
    if name not in PROVIDERS:
        return gettext("Unknown LLM provider “%(name)s”: replies come from the catalog and FAQ.") % {"name": name}
    if key := missing_key(name):
        return gettext("%(key)s is not set in the environment: replies come from the catalog and FAQ.") % {"key": key}
    return gettext("Replies are written by the LLM: %(provider)s, model %(model)s.") % {
        "provider": provider_label(name),
        "model": config.model_name or "—",
    }
