"""How every channel marks up a bot reply's text: the products it cites.

The assistant writes plain text naming products by title and page; each
channel shows them in its own markup (Bitrix24 BB-code, Telegram HTML) through
the `bold`, `link` and `escape` it passes here, so the matching is written
once.
"""

import re
from collections.abc import Callable

# A product link stops where the URL does, not in the middle of a longer one.
_URL_END = r"(?![\w\-/%?=&#~+]|\.\w)"
_WEB_URL = re.compile(r"https?://[^\s/?#]+", re.IGNORECASE)
ELLIPSIS = "…"


def is_web_url(url) -> bool:
    return isinstance(url, str) and _WEB_URL.match(url) is not None


def short_url(url: str, limit: int = 48) -> str:
    """How a link reads in the text: no scheme, no trailing slash, at most `limit` characters."""
    shown = re.sub(r"^https?://(www\.)?", "", url, flags=re.IGNORECASE).rstrip("/")
    return shown if len(shown) <= limit else shown[: limit - 1] + ELLIPSIS


def mark_products(
    text: str,
    products,
    *,
    escape: Callable[[str], str],
    bold: Callable[[str], str],
    link: Callable[[str, str], str],
) -> str:
    """The text escaped, with cited products' titles in `bold` and their pages as `link`s."""
    titles = {p.title for p in products if p.title}
    urls = {p.url for p in products if is_web_url(p.url)}
    if not titles and not urls:
        return escape(text)
    # One pass over the text with the longest names first, so a title inside
    # another title or a URL inside a longer URL is never wrapped twice.
    alternatives = [rf"(?<!\w){re.escape(t)}(?!\w)" for t in sorted(titles, key=len, reverse=True)]
    alternatives += [re.escape(u) + _URL_END for u in sorted(urls, key=len, reverse=True)]
    pattern = re.compile("|".join(alternatives), re.IGNORECASE)
    lowered_urls = {u.lower(): u for u in urls}

    parts, position = [], 0
    for match in pattern.finditer(text):
        parts.append(escape(text[position : match.start()]))
        found = match.group(0)
        url = lowered_urls.get(found.lower())
        parts.append(link(url, short_url(url)) if url else bold(found))
        position = match.end()
    parts.append(escape(text[position:]))
    return "".join(parts)


def order_as_in_text(products, text: str) -> list:
    """Products in the order the reply names them (a stored M2M keeps no order)."""
    lowered = text.lower()

    def position(product):
        places = [lowered.find(s.lower()) for s in (product.title, product.url) if s]
        places = [p for p in places if p >= 0]
        return min(places) if places else len(text)

    return sorted(products, key=position)
