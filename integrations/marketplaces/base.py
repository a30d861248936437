"""What every marketplace connector (Ozon, Wildberries, Yandex Market) is to the shared poller and sender.

A connector is a marketplace's API in our terms, and nothing else: it reads
pages of buyer messages, questions and reviews from a stored cursor, sends a
seller's answer, and checks a key. It never touches the database; the poller
(integrations.marketplaces.polling) records what it yields, advances the
cursor only after the commit, and matches our own sent messages when they
come back; the sender (integrations.marketplaces.sender) delivers the
recorded answers. Everything goes through the connector's `MarketplaceHttp`
(the shared HTTP seam with one rate limiter per account).

Streams: "chat" (buyer chats), "questions" (questions on product pages),
"reviews". A connector lists the streams it has in `streams`.

Ids: every id a marketplace gives is turned into `str` here (Ozon and Market
send message ids as numbers or strings), so "123" and 123 are one message.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field

from integrations.http import ApiError, OutboundHttp

CHAT = "chat"
QUESTIONS = "questions"
REVIEWS = "reviews"
STREAMS = (CHAT, QUESTIONS, REVIEWS)

CUSTOMER = "customer"
SELLER = "seller"  # the store: us, or a person answering in the seller's cabinet
SYSTEM = "system"  # the marketplace itself (WB `sender: "wb"`, Ozon's support and notifications)


class MarketplaceApiError(ApiError):
    """A marketplace call that failed. `stops_account`: the key is wrong or lacks rights (401/403).

    `capabilities` is what the refusal showed about the account, for the
    poller and sender to merge into the account's (e.g. {"chat_send": False}
    when Ozon refuses a send for want of Premium, {"reviews": False}).
    """

    def __init__(
        self,
        code: str,
        description: str = "",
        *,
        stops_account: bool = False,
        capabilities: dict | None = None,
        **kwargs,
    ):
        super().__init__(code, description, **kwargs)
        self.stops_account = stops_account
        self.capabilities = dict(capabilities or {})


class SendOutcomeUnknown(Exception):
    """The send left and no answer came back (a timeout, a lost connection after the request).

    The message may be in the chat or not: it is never sent again blindly;
    the next poll finds it (a seller message with the same text) or not.
    """


@dataclass
class PolledItem:
    """One message, question or review a poll found.

    `thread_id` is the dialog it belongs to, unique within the account and
    stream: the chat id; a question's or review's own id. The poller stores
    it as the conversation's id (prefixed by stream for questions and
    reviews), and `message_id` as the message's: the pair is the dedupe key.
    """

    thread_id: str
    message_id: str
    text: str
    author: str = CUSTOMER  # CUSTOMER, SELLER or SYSTEM
    created_at: datetime.datetime | None = None
    customer_name: str = ""
    customer_id: str = ""
    # What the marketplace tells about the product and order, in shared keys
    # where there is one: "sku", "offer_id" (the seller's article),
    # "nm_id" (WB), "product_name", "order_number", "rating" (1-5, reviews),
    # "pros", "cons" (reviews), "reply_sign" (WB chat), "is_new_chat" (WB).
    context: dict = field(default_factory=dict)
    # conversations.incoming.IncomingMessage.attachments' shape.
    attachments: list[dict] = field(default_factory=list)
    # The item as the marketplace sent it (the poller strips secrets).
    raw: dict = field(default_factory=dict)
    # A review or question already answered in the cabinet, a read receipt: recorded, not answered.
    needs_reply: bool = True


@dataclass
class Page:
    """What one request (or one chat's history) gave, and the cursor to store once it is recorded.

    `cursor` is the whole stream's cursor after this page (a JSON-able dict),
    `more` is True when the next page should be read right away.
    """

    items: list[PolledItem]
    cursor: dict
    more: bool = False


@dataclass
class Thread:
    """Where an answer goes: what the poller stored about the dialog."""

    stream: str
    thread_id: str
    # Everything PolledItem.context gave for it (the WB chat's reply_sign...).
    context: dict = field(default_factory=dict)


@dataclass
class KeyCheck:
    """The answer to «Проверить ключ»: `detail` is Russian, for staff.

    `capabilities` is what the answer showed, merged into the account's
    (e.g. {"chat_send": False} when Ozon answers 403 for want of Premium).
    """

    ok: bool
    detail: str
    capabilities: dict = field(default_factory=dict)


class MarketplaceHttp(OutboundHttp):
    """The shared seam for marketplace APIs: errors are MarketplaceApiError."""

    def __init__(self, system: str, **kwargs):
        kwargs.setdefault("error_class", MarketplaceApiError)
        super().__init__(system=system, **kwargs)


class Connector:
    """One marketplace's API. Built with the account (integrations.marketplaces.models.MarketplaceAccount).

    The account gives: `base_url` (and WB's `feedbacks_base_url`), the
    decrypted keys (`api_key`, WB's `feedbacks_api_key`), `client_id`
    (Ozon), `business_id` and `campaign_ids` (Market), `capabilities`, `pk`.
    """

    marketplace: str = ""
    streams: tuple[str, ...] = ()
    # Longest text the marketplace takes in one answer.
    max_text_chars: int = 1000

    def __init__(self, account, http: MarketplaceHttp | None = None):
        self.account = account
        self.http = http or MarketplaceHttp(self.marketplace)

    def pages(self, stream: str, cursor: dict) -> Iterator[Page]:
        """Pages of new items from `cursor` ({} the first time) to the end of what there is now."""
        raise NotImplementedError

    def send(self, thread: Thread, text: str) -> str:
        """Post a seller's answer; the marketplace's id for it ("" when it gives none).

        Raises MarketplaceApiError when the marketplace refused it, and
        SendOutcomeUnknown when the request left and no answer came back.
        """
        raise NotImplementedError

    def check_key(self) -> KeyCheck:
        raise NotImplementedError

    def poll_hint(self, payload: dict) -> list[str]:
        """A push notification (Ozon's, Market's) as the streams to poll now; [] for none (a ping)."""
        return []
