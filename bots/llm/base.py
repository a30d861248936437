"""What every LLM provider offers the assistant: one chat call with tools.

Messages and tools use the OpenAI chat format (roles system / user /
assistant / tool; JSON-schema function tools); a provider for another API
translates to and from it.
"""

from dataclasses import dataclass, field


class LLMError(Exception):
    """The model could not answer (timeout, HTTP error after the retry, bad answer)."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict  # decoded JSON; {} when the model sent something unreadable
    raw_arguments: str = ""


@dataclass
class ChatResult:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LLMProvider:
    name = ""

    def chat(
        self,
        *,
        messages: list[dict],
        tools: list[dict],
        model: str,
        temperature: float,
        timeout: float,
    ) -> ChatResult:
        raise NotImplementedError
