"""An in-memory provider, like Django's locmem mail backend: it answers with
scripted results and records every request, for tests of the pipeline."""

from bots.llm.base import ChatResult, LLMError, LLMProvider

# Scripted answers, consumed in order; an LLMError instance is raised instead.
script: list[ChatResult | LLMError] = []
# Every request, as the keyword arguments of chat().
requests: list[dict] = []


class LocmemProvider(LLMProvider):
    name = "locmem"

    def chat(self, *, messages, tools, model, temperature, timeout) -> ChatResult:
        # Copies: the caller appends tool rounds to the same list afterwards.
        requests.append(
            {
                "messages": [dict(m) for m in messages],
                "tools": list(tools),
                "model": model,
                "temperature": temperature,
                "timeout": timeout,
            }
        )
        if not script:
            raise LLMError("locmem provider has no scripted answer left")
        answer = script.pop(0)
        if isinstance(answer, LLMError):
            raise answer
        return answer
