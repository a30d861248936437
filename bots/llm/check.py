"""«Проверить подключение»: one short call to a provider, as the assistant would make it."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from bots.llm import LLMError, get_provider

logger = logging.getLogger(__name__)

CHECK_PROMPT = "Ответь одним словом: работает?"
# A check waits less than a reply may: staff are looking at the page.
CHECK_TIMEOUT_S = 10.0
# The answer shown is cut to this many characters.
MAX_ANSWER_CHARS = 200
# Settings whose values must never reach the page, whatever a server echoes.
SECRET_SETTINGS = ("OPENAI_API_KEY", "GIGACHAT_AUTH_KEY", "STT_API_KEY", "SECRET_KEY", "FIELD_ENCRYPTION_KEY")


@dataclass
class CheckResult:
    ok: bool
    text: str  # the model's answer, or what went wrong
    model: str = ""


def check_connection(name: str, *, model: str, temperature: float) -> CheckResult:
    """Ask the provider `name` one short question; never raises, never shows a secret."""
    try:
        provider = get_provider(name)
        if provider is None:
            return CheckResult(False, _("No LLM provider is chosen."))
        result = provider.chat(
            messages=[{"role": "user", "content": CHECK_PROMPT}],
            tools=[],
            model=model,
            temperature=temperature,
            timeout=min(settings.LLM_TIMEOUT_S, CHECK_TIMEOUT_S),
        )
    except LLMError as exc:
        return CheckResult(False, scrub(str(exc)), model)
    except Exception as exc:  # the check reports every failure rather than give staff a server error
        logger.exception("LLM connection check failed")
        return CheckResult(False, _("unexpected error: %(error)s") % {"error": type(exc).__name__}, model)
    answer = scrub(result.text.strip())
    if not answer:
        return CheckResult(False, _("the model answered with no text"), result.model or model)
    if len(answer) > MAX_ANSWER_CHARS:
        answer = answer[:MAX_ANSWER_CHARS].rstrip() + "…"
    return CheckResult(True, answer, result.model or model)


def scrub(text: str) -> str:
    """The text with every configured secret replaced by ***."""
    for name in SECRET_SETTINGS:
        secret = getattr(settings, name, "")
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
