"""The LLM fields of the settings row fall back to the environment where blank.

Until now a new row copied LLM_ENABLED, LLM_PROVIDER, the provider's model and
LLM_TEMPERATURE from the environment, so a copied value cannot be told from
one staff chose. The existing row keeps only what differs from what the
environment gives now:

- provider: "" (no LLM) becomes blank, whatever the environment says: that is
  what a row created before the store set LLM_PROVIDER or a key holds (a store
  that wants the LLM off unticks «Использовать LLM» or chooses «Без LLM» again);
  a provider equal to the environment's becomes blank; any other is kept;
- model: the default model of the row's provider (OPENAI_MODEL, GIGACHAT_MODEL)
  becomes blank;
- use the LLM and temperature: equal to LLM_ENABLED / LLM_TEMPERATURE, blank.

Going back writes the values in use into the row.
"""

import django.core.validators
from django.conf import settings
from django.db import migrations, models


def _environment_provider() -> str:
    # bots.llm.configured_provider as of this migration.
    value = settings.LLM_PROVIDER
    if value is not None:
        name = value.strip().lower()
        return "" if name in ("", "none", "off") else name
    if settings.GIGACHAT_AUTH_KEY:
        return "gigachat"
    if settings.OPENAI_API_KEY:
        return "openai"
    return ""


def _default_model(provider: str) -> str:
    return {"openai": settings.OPENAI_MODEL, "gigachat": settings.GIGACHAT_MODEL}.get(provider, "")


def blank_what_the_environment_gives(apps, schema_editor):
    AssistantSettings = apps.get_model("bots", "AssistantSettings")
    for row in AssistantSettings.objects.all():
        if row.model and row.model == _default_model(row.provider or ""):
            row.model = ""
        if row.provider is not None and row.provider in ("", _environment_provider()):
            row.provider = None
        if row.use_llm == settings.LLM_ENABLED:
            row.use_llm = None
        if row.llm_temperature == settings.LLM_TEMPERATURE:
            row.llm_temperature = None
        row.save(update_fields=["model", "provider", "use_llm", "llm_temperature"])


def write_what_is_in_use(apps, schema_editor):
    AssistantSettings = apps.get_model("bots", "AssistantSettings")
    for row in AssistantSettings.objects.all():
        if row.provider is None:
            row.provider = _environment_provider()
        if row.use_llm is None:
            row.use_llm = settings.LLM_ENABLED
        if row.llm_temperature is None:
            row.llm_temperature = settings.LLM_TEMPERATURE
        row.save(update_fields=["provider", "use_llm", "llm_temperature"])


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0003_contacts_and_operator_hours"),
    ]

    operations = [
        migrations.RenameField(model_name="assistantsettings", old_name="llm_enabled", new_name="use_llm"),
        migrations.AlterField(
            model_name="assistantsettings",
            name="use_llm",
            field=models.BooleanField(blank=True, default=None, null=True, verbose_name="use the LLM"),
        ),
        migrations.AlterField(
            model_name="assistantsettings",
            name="provider",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "No LLM: answers from catalog and FAQ"),
                    ("openai", "OpenAI-compatible API"),
                    ("gigachat", "GigaChat"),
                    ("locmem", "In-memory (tests)"),
                ],
                default=None,
                max_length=16,
                null=True,
                verbose_name="LLM provider",
            ),
        ),
        migrations.AlterField(
            model_name="assistantsettings",
            name="model",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Empty: the provider's model from the environment (OPENAI_MODEL, GIGACHAT_MODEL).",
                max_length=128,
                verbose_name="model",
            ),
        ),
        migrations.RenameField(model_name="assistantsettings", old_name="temperature", new_name="llm_temperature"),
        migrations.AlterField(
            model_name="assistantsettings",
            name="llm_temperature",
            field=models.FloatField(
                blank=True,
                default=None,
                help_text="From 0 (the same answer every time) to 2; empty: LLM_TEMPERATURE from the environment.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(2.0),
                ],
                verbose_name="temperature",
            ),
        ),
        migrations.AlterField(
            model_name="assistantsettings",
            name="banned_phrases",
            field=models.TextField(
                blank=True,
                default="вернём деньги\nгарантируем возврат\nсделаем скидку\nдадим скидку\nпромокод",
                help_text=(
                    "One per line. A sentence of a bot reply containing one is removed before sending. "
                    "Capitals and ё/е are not told apart: “вернём деньги” also removes “вернем деньги”."
                ),
                verbose_name="banned phrases",
            ),
        ),
        migrations.RunPython(blank_what_the_environment_gives, write_what_is_in_use),
    ]
