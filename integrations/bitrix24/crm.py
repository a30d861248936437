"""Bitrix24 CRM calls the orders need: contacts, deals, product rows, timeline comments.

Only Bitrix24's side lives here: method names, parameter shapes, and reading
the answers into small records. What an order does with them, and the rule
that makes a deal exactly once, is orders/push.py.

Shapes as documented in Bitrix24's REST docs (apidocs.bitrix24.com, source
github.com/bitrix-tools/b24-rest-docs, api-reference/crm/...): recorded answers
are in tests/integrations/bitrix24/fixtures/crm/ with a note of each page.

- crm.duplicate.findbycomm {type: PHONE, values: [..20], entity_type: CONTACT}
  -> {"CONTACT": [275, 2297]}, or [] when nothing matches (PHP's empty array);
- crm.contact.add / crm.deal.add {fields} -> the new id (an integer);
- crm.deal.get {id} -> the deal, every value a string ("ID": "410", "STAGE_ID": "PREPARATION");
- crm.deal.list {filter, select, order, start} -> a page of deals, `next` for the next one;
- crm.item.productrow.set {ownerType: "D", ownerId, productRows} replaces every row of the deal;
- crm.timeline.comment.add {fields: {ENTITY_ID, ENTITY_TYPE: "deal", COMMENT}} -> the comment's id
  (lower-case `fields` only, since crm 23.100.0).

Every write here may be repeated by a caller that does not know whether the
first one arrived: `add_*` go through a client that makes one request and no
retry of its own (see orders.push), everything else is safe to repeat.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.utils.dateparse import parse_datetime

from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error

# Who made the deal, for Bitrix24 (ORIGINATOR_ID); ORIGIN_ID is our id of the order.
ORIGINATOR_ID = "storebot"
DEAL_OWNER_TYPE = "D"  # the short code of a deal for crm.item.productrow.*
DEAL_SELECT = ["ID", "TITLE", "STAGE_ID", "STAGE_SEMANTIC_ID", "CATEGORY_ID", "CLOSED", "COMMENTS", "DATE_MODIFY"]
DEAL_SELECT += ["ORIGINATOR_ID", "ORIGIN_ID", "CONTACT_ID"]
# Bitrix24 keeps a comment's text up to 64 KB; a transcript is cut well before.
MAX_COMMENT_CHARS = 30_000

_ID = re.compile(r"^[1-9][0-9]{0,18}$")
_BB_TAG = re.compile(r"\[/?[a-zA-Z*]+(=[^\]]*)?\]")


@dataclass(frozen=True)
class Deal:
    id: str
    stage_id: str = ""
    semantic: str = ""  # STAGE_SEMANTIC_ID: "P" in progress, "S" won, "F" lost
    category_id: str = ""
    closed: bool = False
    comments: str = ""
    originator_id: str = ""
    origin_id: str = ""
    contact_id: str = ""
    modified_at: datetime | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def reason(self) -> str:
        """The deal's comment as plain text: why it was lost, when staff wrote it there."""
        return " ".join(_BB_TAG.sub("", self.comments).split())[:500]


def deal_from(result) -> Deal:
    if not isinstance(result, dict) or not is_id(result.get("ID")):
        raise Bitrix24Error("BAD_RESPONSE", "not a deal", permanent=True)
    text = {key: _text(value) for key, value in result.items()}
    return Deal(
        id=text["ID"],
        stage_id=text.get("STAGE_ID", ""),
        semantic=text.get("STAGE_SEMANTIC_ID", ""),
        category_id=text.get("CATEGORY_ID", ""),
        closed=text.get("CLOSED") == "Y",
        comments=text.get("COMMENTS", ""),
        originator_id=text.get("ORIGINATOR_ID", ""),
        origin_id=text.get("ORIGIN_ID", ""),
        contact_id=text.get("CONTACT_ID", ""),
        modified_at=parse_datetime(text.get("DATE_MODIFY", "")) if text.get("DATE_MODIFY") else None,
        raw=result,
    )


# Contacts ---------------------------------------------------------------------


def find_contact_by_phone(client: Bitrix24Client, phone: str) -> str | None:
    """The oldest contact with this phone (E.164), or None.

    Staff type a Russian number as 8 912... as often as +7 912...: both are asked for.
    """
    values = [phone]
    if phone.startswith("+7") and len(phone) == 12:
        values += ["8" + phone[2:], phone[1:]]
    result = client.call("crm.duplicate.findbycomm", {"type": "PHONE", "values": values, "entity_type": "CONTACT"})
    found = result.get("CONTACT") if isinstance(result, dict) else None
    ids = sorted(int(i) for i in found if is_id(i)) if isinstance(found, list) else []
    return str(ids[0]) if ids else None


def add_contact(client: Bitrix24Client, *, name: str, phone: str, origin_id: str) -> str:
    fields = {
        "NAME": name or phone,
        "PHONE": [{"VALUE": phone, "VALUE_TYPE": "MOBILE"}],
        "SOURCE_DESCRIPTION": "storebot",
        "ORIGINATOR_ID": ORIGINATOR_ID,
        "ORIGIN_ID": origin_id,
    }
    return _new_id(client.call("crm.contact.add", {"fields": fields}), "crm.contact.add")


# Deals ------------------------------------------------------------------------


def find_deal(client: Bitrix24Client, origin_id: str) -> Deal | None:
    """Our deal of this ORIGIN_ID (the oldest, should there be two), or None."""
    result = client.call(
        "crm.deal.list",
        {
            "filter": {"=ORIGINATOR_ID": ORIGINATOR_ID, "=ORIGIN_ID": origin_id},
            "select": DEAL_SELECT,
            "order": {"ID": "ASC"},
        },
    )
    deals = [deal_from(item) for item in result or [] if isinstance(item, dict)] if isinstance(result, list) else []
    return deals[0] if deals else None


def add_deal(client: Bitrix24Client, fields: dict) -> str:
    return _new_id(client.call("crm.deal.add", {"fields": fields}), "crm.deal.add")


def get_deal(client: Bitrix24Client, deal_id: str) -> Deal:
    return deal_from(client.call("crm.deal.get", {"id": int(deal_id)}))


def update_deal(client: Bitrix24Client, deal_id: str, fields: dict) -> None:
    client.call("crm.deal.update", {"id": int(deal_id), "fields": fields})


def deals_changed_since(client: Bitrix24Client, since: datetime) -> Iterator[Deal]:
    """Our deals changed after `since`, page by page."""
    params = {
        "filter": {"=ORIGINATOR_ID": ORIGINATOR_ID, ">DATE_MODIFY": since.isoformat(timespec="seconds")},
        "select": DEAL_SELECT,
        "order": {"ID": "ASC"},
    }
    for item in client.iter_list("crm.deal.list", params):
        if isinstance(item, dict) and is_id(item.get("ID")):
            yield deal_from(item)


def set_product_rows(client: Bitrix24Client, deal_id: str, rows: list[dict]) -> None:
    """Replace the deal's product rows with `rows` ({productName, price, quantity, ...}): safe to repeat."""
    client.call("crm.item.productrow.set", {"ownerType": DEAL_OWNER_TYPE, "ownerId": int(deal_id), "productRows": rows})


# Timeline ---------------------------------------------------------------------


def add_deal_comment(client: Bitrix24Client, deal_id: str, text: str) -> str:
    fields = {"ENTITY_ID": int(deal_id), "ENTITY_TYPE": "deal", "COMMENT": text[:MAX_COMMENT_CHARS]}
    return _new_id(client.call("crm.timeline.comment.add", {"fields": fields}), "crm.timeline.comment.add")


def find_deal_comment(client: Bitrix24Client, deal_id: str, marker: str) -> str | None:
    """The id of a comment of the deal that contains `marker`, or None."""
    params = {"filter": {"ENTITY_ID": int(deal_id), "ENTITY_TYPE": "deal"}, "select": ["ID", "COMMENT"]}
    for item in client.iter_list("crm.timeline.comment.list", params):
        if isinstance(item, dict) and marker in _text(item.get("COMMENT")) and is_id(item.get("ID")):
            return _text(item["ID"])
    return None


# An Open Lines chat already linked to CRM -----------------------------------------


def chat_bindings(value: str) -> dict[str, str]:
    """CHAT_ENTITY_DATA_2 of an Open Lines chat, "LEAD|0|COMPANY|0|CONTACT|5|DEAL|7", as {"CONTACT": "5", "DEAL": "7"}.

    The CRM items Open Lines linked the chat to; a 0 is no item.
    """
    parts = str(value or "").split("|")
    bindings = {}
    for name, item_id in zip(parts[::2], parts[1::2], strict=False):
        if name.isalpha() and is_id(item_id):
            bindings[name.upper()] = item_id
    return bindings


def deal_url(domain: str, deal_id: str) -> str:
    return f"https://{domain}/crm/deal/details/{deal_id}/" if domain and deal_id else ""


def domain_of(client: Bitrix24Client) -> str:
    """The portal's host, for links to its deals."""
    if client.portal is not None:
        return client.portal.domain
    return urlsplit(client.endpoint).hostname or ""


# Helpers ----------------------------------------------------------------------


def is_id(value) -> bool:
    return _ID.match(_text(value)) is not None


def _new_id(result, method: str) -> str:
    if not is_id(result):
        raise Bitrix24Error("BAD_RESPONSE", f"{method} gave no id", permanent=True)
    return _text(result)


def _text(value) -> str:
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float | str):
        return str(value)
    return ""
