"""OpenAI and the APIs that copy its chat completions endpoint (OpenRouter,
vLLM, Ollama, YandexGPT's compatible mode...), through the official client."""

import json
import logging

import openai
from django.conf import settings

from bots.llm.base import ChatResult, LLMError, LLMProvider, ToolCall

logger = logging.getLogger(__name__)


class OpenAICompatibleProvider(LLMProvider):
    name = "openai"

    def __init__(self, api_key: str, base_url: str | None = None, timeout: float = 30.0, max_retries: int = 1):
        self._api_key = api_key
        try:
            # The one retry on 429 / 5xx / timeouts is the client's own max_retries=1:
            # it backs off (honouring Retry-After) and gives up after the second try.
            self._client = openai.OpenAI(
                api_key=api_key, base_url=base_url or None, timeout=timeout, max_retries=max_retries
            )
        except openai.OpenAIError:
            # The client refuses to start without a key; say so without echoing anything.
            raise LLMError("OpenAI-compatible provider is not configured (OPENAI_API_KEY)") from None

    @classmethod
    def from_settings(cls) -> "OpenAICompatibleProvider":
        return cls(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL or None,
            timeout=settings.LLM_TIMEOUT_S,
        )

    def chat(self, *, messages, tools, model, temperature, timeout) -> ChatResult:
        kwargs = {"model": model, "messages": messages, "temperature": temperature, "timeout": timeout}
        if tools:
            # Some compatible servers reject an empty tools list, so none is sent at all.
            kwargs["tools"] = tools
        try:
            completion = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise LLMError("LLM API timed out") from None
        except openai.APIStatusError as exc:
            raise LLMError(self._scrub(_status_message(exc))) from None
        except openai.APIConnectionError:
            raise LLMError("could not connect to the LLM API") from None
        except openai.OpenAIError as exc:
            # The exception text may quote the answer; the class name is enough to act on.
            raise LLMError(f"LLM API error: {type(exc).__name__}") from None
        return _chat_result(completion, model)

    def _scrub(self, message: str) -> str:
        # Error codes come from the server; make sure a key it echoes never reaches logs.
        return message.replace(self._api_key, "***") if self._api_key else message


def _status_message(exc: openai.APIStatusError) -> str:
    # Only the status and the error's code/type: the server's free-text message can
    # quote the (partly masked) key or the prompt.
    detail = exc.code or exc.type
    return f"LLM API answered HTTP {exc.status_code}" + (f" ({detail})" if detail else "")


def _chat_result(completion, model: str) -> ChatResult:
    try:
        message = completion.choices[0].message
        text = message.content or ""
        tool_calls = [_tool_call(call) for call in message.tool_calls or [] if getattr(call, "function", None)]
        usage = completion.usage
        return ChatResult(
            text=text,
            tool_calls=tool_calls,
            model=completion.model or model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )
    except (AttributeError, IndexError, KeyError, TypeError):
        # The client does not validate answers strictly, so a broken one surfaces here.
        raise LLMError("LLM API sent a malformed answer") from None


def _tool_call(call) -> ToolCall:
    raw = call.function.arguments or ""
    try:
        arguments = json.loads(raw) if raw else {}
    except ValueError:
        logger.warning("tool call %s had unreadable arguments", call.function.name)
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {}
    return ToolCall(id=call.id, name=call.function.name, arguments=arguments, raw_arguments=raw)
