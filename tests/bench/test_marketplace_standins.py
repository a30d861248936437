"""The marketplace stand-ins of bench/marketplaces.py stay in step with the connectors that read them.

Each connector reads a stand-in's ~50 buyer messages through `pages("chat", {})`,
every one once, in the chats they were written to; an answer sent through the
connector is recorded by the stand-in and comes back in the next read as the
seller's message, never as a buyer's.
"""

from collections import Counter

import pytest
from django.core.cache import cache

from bench.marketplace_standins import MARKETPLACES, OZON, WB, YM, YM_BUSINESS_ID, StandIns, buyer_text
from integrations.marketplaces.base import CUSTOMER, SELLER, MarketplaceHttp, Thread
from integrations.marketplaces.connectors import connector_for
from integrations.marketplaces.models import MarketplaceAccount

MESSAGES = 50
CHATS = 12
PREFIX = {OZON: "/ozon", WB: "/wb", YM: "/ym"}


class UnlimitedHttp(MarketplaceHttp):
    """The seam without the marketplaces' own request rates: a test should not wait seconds for a bucket."""

    def limiter(self, identity, *, rate, burst=1):
        return super().limiter(f"test-standins:{identity}", rate=1e6, burst=10**6)


@pytest.fixture
def standins(settings):
    settings.YANDEX_MARKET_RATE_PER_S = 1e6
    cache.clear()
    # A WB events page smaller than the messages, so the feed is read over several pages.
    server = StandIns(messages=MESSAGES, chats=CHATS, events_page=20)
    server.serve_in_thread()
    yield server
    server.stop()
    cache.clear()


def connector(standins, marketplace):
    account = MarketplaceAccount(
        pk=9000 + MARKETPLACES.index(marketplace),
        marketplace=marketplace,
        client_id="123456",
        business_id=YM_BUSINESS_ID,
        api_key="bench-key-0123456789",
        base_url=standins.url + PREFIX[marketplace],
        feedbacks_base_url=standins.url + PREFIX[WB],
    )
    return connector_for(account, UnlimitedHttp(marketplace, backoff=0, timeout=5))


def read_all(connector, cursor=None):
    cursor = dict(cursor or {})
    items = []
    for _ in range(20):  # polls: WB reads at most max_event_pages a poll
        pages = list(connector.pages("chat", cursor))
        for page in pages:
            items += page.items
            cursor = page.cursor
        if not any(page.items for page in pages) and not any(page.more for page in pages):
            break
    return items, cursor


@pytest.mark.parametrize("marketplace", MARKETPLACES)
def test_each_connector_reads_every_buyer_message_once_and_our_answers_come_back_as_ours(standins, marketplace):
    reader = connector(standins, marketplace)
    items, cursor = read_all(reader)

    buyers = [item for item in items if item.author == CUSTOMER]
    assert len(buyers) == MESSAGES
    assert len({(item.thread_id, item.message_id) for item in buyers}) == MESSAGES
    assert all(item.needs_reply for item in buyers)
    market = standins.markets[marketplace]
    expected = Counter((market.chat_id(i % CHATS), buyer_text(i)) for i in range(MESSAGES))
    assert Counter((item.thread_id, item.text) for item in buyers) == expected
    assert "Есть ли икра горбуши 250 г?" in {item.text for item in buyers}
    if marketplace == WB:
        # The sign of every chat, from its first event or the chat list.
        assert all(item.context.get("reply_sign") for item in buyers)

    # Nothing new: a second read gives nothing.
    again, cursor = read_all(reader, cursor)
    assert [item for item in again if item.author == CUSTOMER] == []

    # An answer per chat goes out once and comes back as the seller's.
    signs = {item.thread_id: item.context for item in buyers}
    for chat in sorted(signs):
        reader.send(Thread("chat", chat, signs[chat]), f"Ответ в чат {chat[-4:]}: да, есть.")
    sent = standins.sends()[marketplace]
    assert sorted(sent) == sorted((chat, f"Ответ в чат {chat[-4:]}: да, есть.") for chat in signs)

    after, cursor = read_all(reader, cursor)
    assert [item for item in after if item.author == CUSTOMER] == []
    if marketplace == YM:
        # Answered chats wait for the buyer: Market no longer lists them.
        assert after == []
    else:
        assert sorted((item.thread_id, item.text) for item in after if item.author == SELLER) == sorted(sent)

    # A buyer's follow-up after our answer is new, and only it.
    standins.add_followups(3)
    followups, _cursor = read_all(reader, cursor)
    assert len([item for item in followups if item.author == CUSTOMER]) == 3
    assert all(item.text.startswith("Спасибо! И ещё вопрос") for item in followups if item.author == CUSTOMER)
