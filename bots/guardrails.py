"""Checks every reply passes before it is sent, whichever mode made it."""

import re
import unicodedata

_SENTENCE_RE = re.compile(r"(?<=[.!?…])\s+|\n")
_MARKDOWN = [
    (re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)"), r"\1: \2"),  # [text](url)
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),  # italic
    (re.compile(r"`([^`]+)`"), r"\1"),  # code
    (re.compile(r"^#{1,6}\s*", re.MULTILINE), ""),  # headings
    (re.compile(r"^\s*[-*+]\s+", re.MULTILINE), "• "),  # bullets
    (re.compile(r"^\s*\|.*\|\s*$\n?", re.MULTILINE), ""),  # table rows
]


def strip_markdown(text: str) -> str:
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return text


_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Text as banned phrases are matched: composed Unicode (ё typed as е + U+0308 is ё), lower case,
    ё as е, and any run of spaces (a no-break space, a tab) as one space."""
    text = unicodedata.normalize("NFC", text).lower().replace("ё", "е")
    return _SPACES.sub(" ", text).strip()


def drop_banned(text: str, banned: list[str]) -> tuple[str, list[str]]:
    """The text without the lines or sentences that contain a banned phrase,
    and the phrases found, as staff wrote them ("вернём деньги" matches "Вернем деньги")."""
    hits = []
    folded = [(phrase, fold(phrase)) for phrase in banned if fold(phrase)]
    kept_lines = []
    for line in text.split("\n"):
        parts = re.split(r"(?<=[.!?…])\s+", line)
        kept = []
        for part in parts:
            normalized = fold(part)
            found = [phrase for phrase, key in folded if key in normalized]
            if found:
                hits += found
            else:
                kept.append(part)
        if kept or not line.strip():
            kept_lines.append(" ".join(kept))
    return "\n".join(kept_lines).strip(), hits


def limit_length(text: str, max_chars: int) -> str:
    """Cut a long reply at a line or sentence end, never mid-word."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    for separator in ("\n", ". ", "! ", "? "):
        position = cut.rfind(separator)
        if position > max_chars // 2:
            return cut[: position + 1].rstrip()
    return cut.rsplit(" ", 1)[0] + "…"


def apply_guardrails(text: str, *, banned: list[str], max_chars: int) -> tuple[str, list[str]]:
    """The reply as it may be sent, and what was removed from it (for the record)."""
    text = strip_markdown(text)
    text, hits = drop_banned(text, banned)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return limit_length(text, max_chars), hits
