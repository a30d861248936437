"""The one edge every channel's webhook stands behind.

`@webhook` makes a view POST-only, refuses a body over
WEBHOOK_MAX_BODY_BYTES with 413 before reading it, and turns exceptions into
statuses with one table, so every channel answers alike:

| raised                               | status |
|--------------------------------------|--------|
| BadPayload (and a channel's subclass) | 400    |
| Unauthorized                          | 401    |
| NotFound                              | 404    |
| body too large                        | 413    |
| NotConfigured                         | 503    |
| a database that cannot be reached     | 200: the request is kept in the spool and replayed (integrations.spool) |
| ... and a spool that cannot keep it   | 503 with Retry-After: the sender retries (Telegram does) |

Every answer is JSON; an error is {"error": "..."} with a reason a
developer on the other side can act on and no secret in it. `same_secret`
compares secrets in constant time; `read_json` refuses what the database
cannot store (NUL, lone surrogates, NaN) as a 400 rather than a 500 later.
"""

import functools
import hmac
import json
import logging
import math
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from conversations.services import DATABASE_DOWN
from integrations import recovery, spool

logger = logging.getLogger(__name__)

# Seconds a sender is asked to wait before retrying after a 503.
RETRY_AFTER_S = 5
MAX_JSON_DEPTH = 32
# Keys and list items in a body; no channel's event has more than a few hundred.
MAX_JSON_ITEMS = 5000
NUL_REFUSED = "NUL characters are not allowed"


class WebhookError(Exception):
    status = 400


class BadPayload(WebhookError, ValueError):
    """A body we cannot read as the channel's event; the message says what is wrong."""

    status = 400


class Unauthorized(WebhookError):
    """The caller did not prove it is the channel (a wrong or missing secret); nothing was stored."""

    status = 401


class NotFound(WebhookError):
    """No such account (an unknown key in the webhook's URL)."""

    status = 404


class NotConfigured(WebhookError):
    status = 503


def webhook(view):
    """POST only, a body size limit, and the exception → status table of the module docstring."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST":
            response = error("method not allowed", 405)
            response["Allow"] = "POST"
            return response
        if _declared_length(request) > settings.WEBHOOK_MAX_BODY_BYTES:
            return error("body too large", 413)
        try:
            if len(request.body) > settings.WEBHOOK_MAX_BODY_BYTES:
                return error("body too large", 413)
            return view(request, *args, **kwargs)
        except RequestDataTooBig:
            return error("body too large", 413)
        except WebhookError as exc:
            return error(str(exc), exc.status)
        except DATABASE_DOWN as exc:
            if request.META.get(spool.REPLAY_KEY):
                raise  # a replay: its file stays for the next one
            return _database_down(request, exc)

    return wrapper


def _database_down(request, exc) -> JsonResponse:
    """The event is kept in the spool and replayed once the database is back; 503 only when it cannot be kept."""
    if spool.keep(request):
        logger.warning("webhook %s: database unavailable (%s), event spooled", request.path, type(exc).__name__)
        recovery.catch_up_soon()
        return JsonResponse({"status": "accepted"})
    # Nothing was taken in: the sender must try again (Telegram retries any
    # answer that is not 2xx; Bitrix24 does not, which is why the spool is there).
    logger.warning("webhook %s: database unavailable (%s), answered 503", request.path, type(exc).__name__)
    response = error("temporarily unavailable, retry later", 503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison; an unset secret matches nothing."""
    if not expected or not given:
        return False
    # Bytes: compare_digest refuses non-ASCII str, and a caller controls `given`.
    return hmac.compare_digest(given.encode(), expected.encode())


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


# --- JSON bodies -------------------------------------------------------------


def read_json(
    body: bytes,
    *,
    error_class: type[BadPayload] = BadPayload,
    max_depth: int = MAX_JSON_DEPTH,
    max_items: int = MAX_JSON_ITEMS,
) -> dict:
    """A JSON object body, or `error_class` for anything the database could not store."""
    try:
        # Strict UTF-8 first: json.loads(bytes) lets encoded surrogates
        # through, which no database column can store.
        text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise error_class("body is not valid UTF-8") from None
    try:
        payload = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise error_class("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise error_class("body must be a JSON object")
    depth, items = _shape(payload, max_depth, max_items)
    if depth > max_depth:
        raise error_class("body is nested too deep")
    if items > max_items:
        raise error_class(f"body has more than {max_items} fields")
    # JSON spells NUL and lone UTF-16 surrogates only as escapes, and neither
    # can be stored (PostgreSQL text and jsonb, UTF-8): the walk runs only for
    # a body that has such an escape.
    if _RISKY_ESCAPE.search(text):
        _check_strings(payload, error_class)
    return payload


# NaN and Infinity: Python reads them, jsonb refuses them.
def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _check_strings(payload, error_class) -> None:
    stack = [payload]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise error_class(NUL_REFUSED)
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise error_class("body has an unpaired UTF-16 surrogate") from None
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _shape(payload, max_depth: int, max_items: int) -> tuple[int, int]:
    """(depth, keys and items) of a parsed body, the walk stopping past either limit."""
    deepest, items, stack = 0, 0, [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        items += len(children)
        if deepest > max_depth or items > max_items:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest, items
