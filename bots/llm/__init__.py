"""LLM providers, chosen by name: the settings row's provider, or the environment's (configured_provider)."""

from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

from bots.llm.base import ChatResult, LLMError, LLMProvider, ToolCall

PROVIDERS = {
    "openai": "bots.llm.openai_compatible.OpenAICompatibleProvider",
    "gigachat": "bots.llm.gigachat.GigaChatProvider",
    "locmem": "bots.llm.locmem.LocmemProvider",
}
# Values of LLM_PROVIDER (and of the settings row) that mean "no LLM".
OFF = ("", "none", "off")
# The environment variable each provider cannot work without.
REQUIRED_KEYS = {"openai": "OPENAI_API_KEY", "gigachat": "GIGACHAT_AUTH_KEY"}

__all__ = [
    "OFF",
    "PROVIDERS",
    "REQUIRED_KEYS",
    "ChatResult",
    "EnvironmentProvider",
    "LLMError",
    "LLMProvider",
    "ToolCall",
    "configured_provider",
    "default_model",
    "environment_provider",
    "get_provider",
    "missing_key",
]


def get_provider(name: str) -> LLMProvider | None:
    """The provider of that name, configured from settings; None for "" (no LLM)."""
    if not name:
        return None
    try:
        path = PROVIDERS[name]
    except KeyError:
        raise LLMError(f"unknown LLM provider {name!r}") from None
    return (
        import_string(path).from_settings() if hasattr(import_string(path), "from_settings") else import_string(path)()
    )


@dataclass(frozen=True)
class EnvironmentProvider:
    """The provider the environment asks for, and why.

    `how` is "set" (LLM_PROVIDER names it), "off" (LLM_PROVIDER is empty or
    "none"), "key" (LLM_PROVIDER unset, chosen by the key in `variable`) or
    "none" (LLM_PROVIDER unset and no key).
    """

    name: str
    how: str
    variable: str = "LLM_PROVIDER"


def environment_provider() -> EnvironmentProvider:
    """What the environment says: LLM_PROVIDER when it is present (empty or "none" is off);
    unset, a key is enough: GIGACHAT_AUTH_KEY selects GigaChat, else OPENAI_API_KEY the
    OpenAI-compatible API; neither, no LLM."""
    value = settings.LLM_PROVIDER
    if value is not None:
        name = value.strip().lower()
        return EnvironmentProvider("", "off") if name in OFF else EnvironmentProvider(name, "set")
    if settings.GIGACHAT_AUTH_KEY:
        return EnvironmentProvider("gigachat", "key", "GIGACHAT_AUTH_KEY")
    if settings.OPENAI_API_KEY:
        return EnvironmentProvider("openai", "key", "OPENAI_API_KEY")
    return EnvironmentProvider("", "none")


def configured_provider() -> str:
    """The provider's name by the environment alone; "" for no LLM."""
    return environment_provider().name


def default_model(name: str) -> str:
    """The model a provider uses when the settings row names none (OPENAI_MODEL, GIGACHAT_MODEL)."""
    return {"openai": settings.OPENAI_MODEL, "gigachat": settings.GIGACHAT_MODEL}.get(name, "")


def missing_key(name: str) -> str:
    """The environment variable the provider needs and lacks, e.g. "OPENAI_API_KEY"; "" when nothing is missing."""
    variable = REQUIRED_KEYS.get(name, "")
    return variable if variable and not getattr(settings, variable) else ""
