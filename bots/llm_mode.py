"""The LLM answers with tools over the catalog and FAQ; its text is checked
against what the tools returned, and what earlier turns showed (bots.dialog),
before it reaches the customer."""

import json
import re
from decimal import Decimal, InvalidOperation

from django.conf import settings

from bots import dialog, ordering
from bots.dialog import DialogContext
from bots.llm import ChatResult, LLMError, LLMProvider
from bots.models import AssistantSettings
from bots.prompt import build_messages
from bots.replies import Kind, Reply
from bots.tools import HANDOFF_TOOL, SEARCH_TOOL, TOOLS, run_tool
from catalog.models import FAQEntry, Product
from catalog.presentation import product_line
from catalog.query import PriceLimit
from conversations.models import Conversation, Message

_MARKER_RE = re.compile(r"\[\[\s*(?:product\s*:\s*)?(\d+)\s*\]\]", re.IGNORECASE)
_PRICE_RE = re.compile(r"(\d[\d\s\u00a0]*(?:[.,]\d{1,2})?)\s*(?:₽|руб\w*\.?|р\.)", re.IGNORECASE)
_URL_RE = re.compile(r"https?://[^\s)\]>»\"']+")


def llm_reply(
    conversation: Conversation,
    message: Message,
    *,
    provider: LLMProvider,
    config: AssistantSettings,
    context: DialogContext | None = None,
) -> Reply:
    shown, focus = dialog.products_of(context)
    recent = dialog.prompt_lines(context, shown, focus)
    tool_list = TOOLS
    if ordering.may_order(conversation, message.text):
        recent = "\n".join(line for line in (recent, ordering.prompt_line(conversation)) if line)
        tool_list = [*TOOLS, *ordering.TOOLS]
    messages = build_messages(
        conversation, message, config, tools=tool_list, budget=settings.LLM_MAX_PROMPT_TOKENS, recent=recent
    )
    # What earlier turns showed counts as looked up: the model cites it by
    # marker, with its prices and links, without searching for it again.
    found: dict[int, Product] = {p.id: p for p in (*shown, *([focus] if focus else []))}
    searched: dict = {}
    usage = [0, 0]
    result = None
    for round_number in range(settings.LLM_MAX_TOOL_ROUNDS + 1):
        # After the last tool round the model must answer in words.
        tools = tool_list if round_number < settings.LLM_MAX_TOOL_ROUNDS else []
        result = provider.chat(
            messages=messages,
            tools=tools,
            model=config.model_name,
            temperature=config.temperature,
            timeout=settings.LLM_TIMEOUT_S,
        )
        usage[0] += result.prompt_tokens or 0
        usage[1] += result.completion_tokens or 0
        if not (result.tool_calls and tools):
            break
        handoff = next((c for c in result.tool_calls if c.name == HANDOFF_TOOL), None)
        if handoff is not None:
            return Reply(
                config.handoff_reply(),
                Kind.HANDOFF,
                handoff=True,
                handoff_reason=str(handoff.arguments.get("reason") or "the model asked for a person")[:500],
                **_meta(result, config, usage),
            )
        for call in result.tool_calls:
            if call.name in ordering.BASKET_TOOLS:
                # The basket changes by our code, which also says what changed.
                ordered = ordering.tool_reply(conversation, call.name, call.arguments)
                if ordered is not None:
                    for name, value in _meta(result, config, usage).items():
                        setattr(ordered, name, value)
                    return ordered
        messages.append(
            {
                "role": "assistant",
                "content": result.text or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False),
                        },
                    }
                    for call in result.tool_calls
                ],
            }
        )
        for call in result.tool_calls:
            if call.name == SEARCH_TOOL:
                searched = call.arguments
            content, products = run_tool(call.name, call.arguments)
            found.update((p.id, p) for p in products)
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(content, ensure_ascii=False)}
            )
    if result is None or not result.text.strip():
        raise LLMError("the model gave no answer")
    text, cited = check_facts(result.text, found=found, customer_text=message.text)
    if not text:
        raise LLMError("nothing of the model's answer could be checked against the catalog")
    return Reply(
        text, Kind.LLM, products=cited, context=_context_after(cited, searched, context), **_meta(result, config, usage)
    )


def _context_after(cited: list[Product], searched: dict, previous: DialogContext | None) -> dict | None:
    """The products the answer cited become what a follow-up refers to, with the search that found them."""
    if not cited:
        return None
    query = str(searched.get("query") or "") if searched else (previous.query if previous else "")
    try:
        high = Decimal(str(searched["max_price"])) if searched.get("max_price") not in (None, "") else None
    except (InvalidOperation, KeyError):
        high = None
    return dialog.shown(cited, query=query, price=PriceLimit(high=high) if high is not None else None)


def _meta(result: ChatResult, config: AssistantSettings, usage) -> dict:
    return {
        "llm_model": result.model or config.model_name,
        "prompt_tokens": usage[0] or None,
        "completion_tokens": usage[1] or None,
    }


def check_facts(text: str, *, found: dict[int, Product], customer_text: str = "") -> tuple[str, list[Product]]:
    """The model's text with facts only from the catalog.

    Product markers become lines rendered from the database (a marker for a
    product that does not exist is dropped); a sentence quoting a price no
    cited product or FAQ answer has, or a link that is no product's, is dropped.
    """
    cited: list[Product] = []
    missing = set()

    ids = {int(i) for i in _MARKER_RE.findall(text)}
    known = dict(found)
    unknown_ids = ids - known.keys()
    if unknown_ids:
        known.update(Product.objects.prefetch_related("categories").in_bulk(unknown_ids))

    def render(match: re.Match) -> str:
        product = known.get(int(match[1]))
        if product is None:
            missing.add(match[1])
            return "\u0000"  # marks the sentence for removal
        if product not in cited:
            cited.append(product)
        line = product_line(product)
        return f"{line} ({product.url})" if product.url else line

    rendered_lines = []
    for line in text.split("\n"):
        rendered_lines.append(_MARKER_RE.sub(render, line))
    allowed_prices, allowed_urls = _store_facts(cited, found, customer_text)

    kept_lines = []
    for original, line in zip(text.split("\n"), rendered_lines, strict=True):
        sentences = re.split(r"(?<=[.!?…])\s+", line)
        originals = re.split(r"(?<=[.!?…])\s+", original)
        kept = []
        for index, sentence in enumerate(sentences):
            if "\u0000" in sentence:
                continue
            source = originals[index] if len(originals) == len(sentences) else sentence
            source_without_markers = _MARKER_RE.sub("", source)
            if any(_amount(m) not in allowed_prices for m in _PRICE_RE.findall(source_without_markers)):
                continue
            if any(url.rstrip(".,;:!?") not in allowed_urls for url in _URL_RE.findall(source_without_markers)):
                continue
            kept.append(sentence)
        if kept or not line.strip():
            kept_lines.append(" ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip(), cited


def _amount(text: str) -> Decimal | None:
    try:
        return Decimal(re.sub(r"[\s\u00a0]", "", text).replace(",", "."))
    except InvalidOperation:
        return None


def _store_facts(cited, found, customer_text: str) -> tuple[set[Decimal], set[str]]:
    """Prices and links the reply may quote: the products', the FAQ's and the customer's own budget.

    Decimal equality is by value ("1690" == "1690.00"), so no normalising is needed.
    """
    prices = {v for p in (*cited, *found.values()) for v in (p.price, p.old_price) if v is not None}
    urls = {p.url for p in (*cited, *found.values()) if p.url}
    for answer in FAQEntry.objects.filter(is_active=True).values_list("answer", flat=True):
        prices |= {a for a in map(_amount, _PRICE_RE.findall(answer)) if a is not None}
        urls |= set(_URL_RE.findall(answer))
    prices |= {a for a in map(_amount, re.findall(r"\d[\d\s]*", customer_text)) if a is not None}
    return prices, urls
