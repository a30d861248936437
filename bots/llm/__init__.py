"""LLM providers, chosen by name (AssistantSettings.provider, default LLM_PROVIDER)."""

from django.utils.module_loading import import_string

from bots.llm.base import ChatResult, LLMError, LLMProvider, ToolCall

PROVIDERS = {
    "openai": "bots.llm.openai_compatible.OpenAICompatibleProvider",
    "gigachat": "bots.llm.gigachat.GigaChatProvider",
    "locmem": "bots.llm.locmem.LocmemProvider",
}

__all__ = ["PROVIDERS", "ChatResult", "LLMError", "LLMProvider", "ToolCall", "get_provider"]


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
