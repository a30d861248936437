from dataclasses import dataclass, field

from catalog.models import Product
from conversations.models import Message

Kind = Message.ReplyKind


@dataclass
class Reply:
    """What the assistant would say; the caller records and sends it."""

    text: str
    kind: str
    products: list[Product] = field(default_factory=list)
    handoff: bool = False
    handoff_reason: str = ""
    # Follow-up suggestions a channel may show as buttons.
    suggestions: list[str] = field(default_factory=list)
    llm_model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    llm_error: str = ""
