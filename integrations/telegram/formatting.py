"""How a reply looks in a Telegram chat: HTML text, photo albums and inline
buttons for the Bot API's sendMessage, sendPhoto and sendMediaGroup.

Pure functions of a message's text and products, so the sender stays a thin
transport and the look can be tested without HTTP.

Formats (https://core.telegram.org/bots/api): "Formatting options" → HTML
style for parse_mode=HTML; sendMessage (text 1-4096 characters after entities
parsing), sendMediaGroup and InputMediaPhoto (an album of 2-10, caption 0-1024
characters after entities parsing); InlineKeyboardMarkup and
InlineKeyboardButton (callback_data 1-64 bytes). Telegram measures text in
UTF-16 code units, as it does entity offsets.
"""

import html
import re

from catalog.presentation import money, stock
from conversations.channels import OPERATOR_BUTTON, SHARE_PHONE_BUTTON  # labels every channel's buttons have
from integrations.reply_text import is_web_url, mark_products, short_url

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_BYTES = 64
ALBUM_MIN, ALBUM_MAX = 2, 10
MAX_URL_BUTTONS = 5
BUTTON_CHARS = 64  # clients cut a long label anyway; a shorter one reads whole
DESCRIPTION_CHARS = 200

# Callback data of our inline buttons: "<kind>:<value>", or "<kind>" alone.
ASK = "ask"  # the value is the text to treat as the customer's message
OPERATOR = "op"  # hand the dialog to a person

ELLIPSIS = "…"

# A product link stops where the URL does, not in the middle of a longer one.


# Text ----------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text for HTML mode: Telegram requires &, < and > as entities, nothing else."""
    return html.escape(text, quote=False)


def bold(text: str) -> str:
    return f"<b>{escape(text)}</b>"


def link(url: str, label: str) -> str:
    """A link to a web page; any other scheme (javascript:, tg:, a relative path) is the bare label."""
    if not is_web_url(url):
        return escape(label)
    return f'<a href="{_href(url)}">{escape(label)}</a>'


def message_html(text: str, products=()) -> str:
    """The reply in HTML: cited products' titles bold, their pages as links; the rest escaped."""
    return mark_products(text, products, escape=escape, bold=bold, link=link)


# Length and splitting ----------------------------------------------------------------

# A tag or an entity of the HTML we write; a "<" or "&" that starts neither is counted as text.
_TOKEN = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^<>]*>|&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
# The named entities Telegram reads (numeric ones it reads all).
_NAMED_ENTITIES = ("&lt;", "&gt;", "&amp;", "&quot;")


class _Token:
    __slots__ = ("close", "name", "raw", "units")

    def __init__(self, raw: str, units: int, name: str = "", close: bool = False):
        self.raw, self.units, self.name, self.close = raw, units, name, close

    @property
    def is_tag(self) -> bool:
        return bool(self.name)


def _units(text: str) -> int:
    """Length in UTF-16 code units: a character outside the BMP (most emoji) counts two."""
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def _tokens(html_text: str) -> list[_Token]:
    """Tags (no length), entities (the length of what they stand for) and single characters."""
    tokens, position = [], 0
    for match in _TOKEN.finditer(html_text):
        tokens.extend(_Token(c, _units(c)) for c in html_text[position : match.start()])
        raw = match.group(0)
        if match.group(2):
            tokens.append(_Token(raw, 0, name=match.group(2).lower(), close=bool(match.group(1))))
        elif raw.startswith("&#"):
            tokens.append(_Token(raw, _units(html.unescape(raw))))
        else:
            # Telegram reads four named entities; any other name is counted as typed, the most it can be.
            tokens.append(_Token(raw, 1 if raw in _NAMED_ENTITIES else _units(raw)))
        position = match.end()
    tokens.extend(_Token(c, _units(c)) for c in html_text[position:])
    return tokens


def visible_length(html_text: str) -> int:
    """How long Telegram counts the text after entities parsing: UTF-16 units of what shows.

    Conservative: Telegram trims whitespace around the text too, this counts it.
    """
    return sum(token.units for token in _tokens(html_text))


def split_message(html_text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The text as messages of at most `limit` visible units each.

    Cuts fall at a blank line where one fits, else at a line break, else at a
    space, else between two characters — never inside a tag or an entity. A
    tag open at a cut is closed at the end of one part and opened again at the
    start of the next, so every part parses on its own.
    """
    tokens = _tokens(html_text)
    parts, start, opened = [], 0, []
    while start < len(tokens):
        start = _skip_space(tokens, start)
        if start >= len(tokens):
            break
        end = _fit(tokens, start, limit)
        if end < len(tokens):
            end = _cut(tokens, start, end)
        part, opened = _render(tokens, start, end, opened)
        if part:
            parts.append(part)
        start = end
    return parts


def caption(text: str, limit: int = CAPTION_LIMIT) -> str:
    """HTML text as a media caption: whole when it fits, else cut at a boundary with "…".

    A boundary that would keep less than half the caption is passed over for
    a finer one: what is cut from a caption is not sent at all.
    """
    tokens = _tokens(text)
    start = _skip_space(tokens, 0)
    end = _fit(tokens, start, limit)
    if end >= len(tokens):
        return _render(tokens, start, end, [])[0]
    end = _fit(tokens, start, limit - _units(ELLIPSIS))
    end = _cut(tokens, start, end, keep=(limit - _units(ELLIPSIS)) // 2)
    return _render(tokens, start, end, [])[0] + ELLIPSIS


def _skip_space(tokens: list[_Token], index: int) -> int:
    while index < len(tokens) and not tokens[index].is_tag and tokens[index].raw.isspace():
        index += 1
    return index


def _fit(tokens: list[_Token], start: int, limit: int) -> int:
    """The end of the longest run from `start` within `limit` units (at least one token)."""
    used, index = 0, start
    while index < len(tokens) and used + tokens[index].units <= limit:
        used += tokens[index].units
        index += 1
    return max(index, start + 1)


def _cut(tokens: list[_Token], start: int, end: int, keep: int = 0) -> int:
    """Where in tokens[start:end] to end a part: the last blank line, line break or space.

    `keep` is the fewest units a cut must leave in the part to count.
    """
    kept, total = [], 0
    for token in tokens[start:end]:
        kept.append(total)
        total += token.units
    kept.append(total)

    def text_at(i: int) -> str:
        return "" if tokens[i].is_tag else tokens[i].raw

    blank_line = lambda i: text_at(i) == "\n" and i + 1 < len(tokens) and text_at(i + 1) == "\n"  # noqa: E731
    line_break = lambda i: text_at(i) == "\n"  # noqa: E731
    space = lambda i: text_at(i).isspace()  # noqa: E731
    for boundary in (blank_line, line_break, space):
        # A boundary at `end` itself still fits: the space is dropped, not sent.
        for i in range(end, start, -1):
            if i < len(tokens) and kept[i - start] >= keep and kept[i - start] > 0 and boundary(i):
                return i
    # No boundary: between two characters, but not just after an opening tag.
    while end - 1 > start and tokens[end - 1].is_tag and not tokens[end - 1].close:
        end -= 1
    return end


def _render(tokens: list[_Token], start: int, end: int, opened: list[_Token]) -> tuple[str, list[_Token]]:
    """tokens[start:end] as balanced HTML, given the tags open before it; and the tags open after it."""
    stack = list(opened)
    body = []
    for token in tokens[start:end]:
        if token.is_tag and token.close:
            # Close the innermost matching tag (and any left open inside it); a stray closing tag is dropped.
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth].name == token.name:
                    body.extend(f"</{t.name}>" for t in reversed(stack[depth + 1 :]))
                    del stack[depth:]
                    break
            else:
                continue
        elif token.is_tag:
            stack.append(token)
        body.append(token.raw)
    # Trailing whitespace, before the closing tags too, is cut off; Telegram would trim it anyway.
    index = len(body) - 1
    while index >= 0 and (body[index].startswith("</") or body[index].isspace()):
        if body[index].isspace():
            del body[index]
        index -= 1
    if not any(not t.is_tag and not t.raw.isspace() for t in tokens[start:end]):
        return "", stack
    text = "".join(t.raw for t in opened) + "".join(body) + "".join(f"</{t.name}>" for t in reversed(stack))
    return text, stack


# Products ---------------------------------------------------------------------------


def product_caption(product) -> str:
    """One product as a photo caption: name, price and stock, a short description, its page."""
    lines = [bold(product.title), escape(f"{_price(product)} · {stock(product)}")]
    description = _description(product)
    if description:
        lines.append(escape(description))
    if is_web_url(product.url):
        lines.append(link(product.url, short_url(product.url)))
    return caption("\n".join(lines))


def album(products, text: str = "") -> list[dict] | None:
    """InputMediaPhoto items for sendMediaGroup: the products' pictures, `text` under the first.

    `text` is HTML (message_html); it is cut to a caption's length, so a
    longer reply is better sent as its own message after an album without
    text. None when fewer than two products have a picture: Telegram
    refuses an album of one, and the caller sends one photo or text instead.
    """
    pictured = [p for p in products if is_web_url(p.image_url)][:ALBUM_MAX]
    if len(pictured) < ALBUM_MIN:
        return None
    media = [{"type": "photo", "media": p.image_url} for p in pictured]
    shown = caption(text) if text else ""
    if shown:
        # Clients show the album's caption only when just one item has one.
        media[0].update(caption=shown, parse_mode="HTML")
    return media


def _price(product) -> str:
    price = money(product.price, product.currency)
    if product.old_price and product.price is not None and product.old_price > product.price:
        price += f" (было {money(product.old_price, product.currency)})"
    return price


def _description(product) -> str:
    text = " ".join((product.short_description or product.description or "").split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1].rstrip() + ELLIPSIS


# Buttons ----------------------------------------------------------------------------


def callback_data(kind: str, value: str = "") -> str:
    """A button's callback data, "<kind>:<value>", within Telegram's 64 bytes of UTF-8.

    A longer value is cut on a character boundary, at a space where that
    keeps most of it: the press then sends the start of the text, never a
    broken character. Cyrillic takes two bytes a letter, so about 30 letters fit.
    """
    if not re.fullmatch(r"[a-z]{1,16}", kind):
        raise ValueError(f"callback kind must be a short lowercase word, not {kind!r}")
    value = value.strip()
    prefix = f"{kind}:"
    room = CALLBACK_DATA_BYTES - len(prefix)
    cut = value.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    if cut != value and not value[len(cut)].isspace():
        # The cut is inside a word: back to the word's start.
        space = cut.rfind(" ")
        if space >= len(cut) // 2:
            cut = cut[:space]
    cut = cut.rstrip()
    return prefix + cut if cut else kind


def read_callback(data: str) -> tuple[str, str]:
    """(kind, value) of callback data made by callback_data(); ("", "") for anything else.

    The data comes back from the customer's client, which may send any bytes
    in it: the caller checks the kind.
    """
    kind, _, value = (data or "").partition(":")
    if not re.fullmatch(r"[a-z]{1,16}", kind):
        return "", ""
    return kind, value


def inline_keyboard(*, products=(), suggestions=(), operator_button: str | None = OPERATOR_BUTTON) -> dict | None:
    """InlineKeyboardMarkup under a reply: product pages, follow-up questions, the operator last.

    A product button opens its page (only http(s) pages: Telegram refuses the
    whole message for a button with a bad URL). A suggestion button sends the
    question back as callback data ("ask:<text>"), without posting it in the
    chat. None when there is no button.
    """
    rows = []
    for product in products:
        if len(rows) == MAX_URL_BUTTONS:
            break
        if is_web_url(product.url):
            label = _label(product.title or short_url(product.url))
            rows.append([{"text": label, "url": _button_url(product.url)}])
    seen = set()
    for suggestion in suggestions:
        suggestion = (suggestion or "").strip()
        if not suggestion or suggestion == operator_button or suggestion in seen:
            continue
        seen.add(suggestion)
        rows.append([{"text": _label(suggestion), "callback_data": callback_data(ASK, suggestion)}])
    if operator_button:
        rows.append([{"text": _label(operator_button), "callback_data": callback_data(OPERATOR)}])
    return {"inline_keyboard": rows} if rows else None


def contact_keyboard() -> dict:
    """ReplyKeyboardMarkup with the one button that shares the customer's phone (Bot API KeyboardButton
    request_contact); hidden again once pressed."""
    return {
        "keyboard": [[{"text": SHARE_PHONE_BUTTON, "request_contact": True}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
        "input_field_placeholder": "+7 900 123-45-67",
    }


def asks_for_phone(suggestions) -> bool:
    return SHARE_PHONE_BUTTON in (suggestions or ())


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BUTTON_CHARS else text[: BUTTON_CHARS - 1].rstrip() + ELLIPSIS


# URLs -------------------------------------------------------------------------------


def _button_url(url: str) -> str:
    # Whitespace is not a URL's; Telegram refuses a button URL with it.
    return re.sub(r"\s", lambda m: f"%{ord(m.group(0)):02X}", url)


def _href(url: str) -> str:
    # In a double-quoted attribute: the three HTML characters and the quote.
    return escape(_button_url(url)).replace('"', "&quot;")
