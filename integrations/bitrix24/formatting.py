"""How a reply looks in a Bitrix24 chat: BB-code text, product cards (ATTACH)
and reply buttons (KEYBOARD) for imbot.message.add.

Pure functions of a message's text and products, so the sender stays a thin
transport and the look can be tested without HTTP.

Formats: https://apidocs.bitrix24.com/api-reference/chats/messages/formatting.html,
.../attachments/index.html and .../keyboards.html.
"""

import json
import re
from urllib.parse import quote

from catalog.presentation import money, stock
from conversations.channels import OPERATOR_BUTTON, SHARE_PHONE_BUTTON
from integrations.reply_text import mark_products

# Keyboard commands; the bot's event handler receives them in ONIMCOMMANDADD
# (data[COMMAND][*][COMMAND], COMMAND_PARAMS), and b24_register_bot registers them.
OPERATOR_COMMAND = "operator"  # hand the dialog to a person
ASK_COMMAND = "ask"  # COMMAND_PARAMS is the text to treat as the customer's message

# Bitrix24 refuses an ATTACH over 30 KB (ATTACH_OVERSIZE) and with it the
# whole message. The size is taken the way PHP's json_encode writes it by
# default — non-ASCII as \uXXXX, "/" as "\/" — the largest form the portal may
# count, so a card set that passes here passes there.
ATTACH_LIMIT = 30_000
MAX_CARDS = 10
DESCRIPTION_CHARS = 200
CARD_COLOR = "#29619b"

# Tags Bitrix24 turns into markup, links or actions ([send=...] posts a
# command as the reader). The text is the model's or an operator's: a tag in
# it must show as typed, so a zero-width space after "[" keeps it from parsing.
_TAG = re.compile(
    r"\[(?=/?(?:b|i|u|s|url|send|put|call|user|chat|context|img|icon|disk|code|color|size|br|timestamp|quote)\b)",
    re.IGNORECASE,
)
_ZWSP = "\u200b"


def escape(text: str) -> str:
    return _TAG.sub("[" + _ZWSP, text)


def message_text(text: str, products=()) -> str:
    """The reply in BB-code: cited products' titles bold, their pages as links; line breaks kept."""
    return mark_products(text, products, escape=escape, bold=lambda t: f"[b]{escape(t)}[/b]", link=link)


def link(url: str, label: str) -> str:
    return f"[url={_safe_url(url)}]{escape(label)}[/url]"


def operator_text(text: str, operator) -> str:
    """An operator's reply goes out as the bot, so it is signed: the customer sees a person answers."""
    name = getattr(operator, "first_name", "") or "Оператор"
    return f"[b]{escape(name)}[/b]: {escape(text)}"


# Product cards -------------------------------------------------------------------


def product_cards(products, *, limit: int = ATTACH_LIMIT) -> dict | None:
    """One card per product — picture, name linked to its page, price and stock — or None.

    Over the size limit cards go from the end first (the text still names
    every product), then pictures, then descriptions.
    """
    products = list(products)[:MAX_CARDS]
    if not products:
        return None
    for images, descriptions in ((True, True), (False, True), (False, False)):
        for count in range(len(products), 0, -1):
            attach = _attach(products[:count], images=images, descriptions=descriptions)
            if attach_size(attach) <= limit:
                return attach
    return None


def attach_size(attach) -> int:
    encoded = json.dumps(attach, ensure_ascii=True, separators=(",", ":"))
    return len(encoded) + encoded.count("/")


def _attach(products, *, images: bool, descriptions: bool) -> dict:
    blocks = []
    for product in products:
        if blocks:
            blocks.append({"DELIMITER": {"SIZE": 200, "COLOR": "#c6c6c6"}})
        blocks.extend(_card(product, images=images, descriptions=descriptions))
    return {"ID": 1, "COLOR_TOKEN": "primary", "COLOR": CARD_COLOR, "BLOCKS": blocks}


def _card(product, *, images: bool, descriptions: bool) -> list[dict]:
    image = product.image_url if images and _is_web_url(product.image_url) else ""
    description = _description(product) if descriptions else ""
    blocks = []
    if _is_web_url(product.url):
        # A LINK block is the card's head: the name opens the product page,
        # the picture shows as its preview.
        head = {"NAME": product.title, "LINK": product.url}
        if description:
            head["DESC"] = escape(description)
        if image:
            head["PREVIEW"] = image
        blocks.append({"LINK": head})
    else:
        blocks.append({"MESSAGE": f"[b]{escape(product.title)}[/b]"})
        if image:
            blocks.append({"IMAGE": [{"NAME": product.title, "LINK": image, "PREVIEW": image}]})
        if description:
            blocks.append({"MESSAGE": escape(description)})
    blocks.append(
        {
            "GRID": [
                {"NAME": "Цена", "VALUE": _price(product), "DISPLAY": "LINE"},
                {"NAME": "Наличие", "VALUE": stock(product), "DISPLAY": "LINE"},
            ]
        }
    )
    return blocks


def _price(product) -> str:
    price = money(product.price, product.currency)
    if product.old_price and product.price is not None and product.old_price > product.price:
        price += f" [s]{money(product.old_price, product.currency)}[/s]"
    return price


def _description(product) -> str:
    text = " ".join((product.short_description or product.description or "").split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1].rstrip() + "…"


# Keyboard ------------------------------------------------------------------------


def reply_keyboard(suggestions=()) -> dict:
    """The assistant's suggested follow-ups and «Позвать оператора» under a bot reply.

    Buttons send commands rather than text: a press reaches the bot as its
    own event (ONIMCOMMANDADD) without being posted in the chat. BLOCK stops
    a second press while the first is being answered.
    """
    buttons = [
        {"TEXT": s, "COMMAND": ASK_COMMAND, "COMMAND_PARAMS": s, "DISPLAY": "LINE", "BLOCK": "Y"}
        for s in suggestions
        # Bitrix24 has no button that shares a phone: the text asks for it.
        if s and s not in (OPERATOR_BUTTON, SHARE_PHONE_BUTTON)
    ]
    if buttons:
        buttons.append({"TYPE": "NEWLINE"})
    buttons.append(
        {
            "TEXT": OPERATOR_BUTTON,
            "COMMAND": OPERATOR_COMMAND,
            "DISPLAY": "LINE",
            "BLOCK": "Y",
            "BG_COLOR_TOKEN": "primary",
            # Open Lines chats still read the older colour keys.
            "BG_COLOR": CARD_COLOR,
            "TEXT_COLOR": "#ffffff",
        }
    )
    return {"BUTTONS": buttons}


def _is_web_url(url: str) -> bool:
    # Anything else in ATTACH (a relative or odd link) fails the whole message with ATTACH_ERROR.
    return bool(url) and url.lower().startswith(("https://", "http://"))


def _safe_url(url: str) -> str:
    # "]" would end the [url=...] tag early; brackets and spaces are percent-encoded.
    return quote(url, safe=":/?#@!$&'()*+,;=%~-._")
