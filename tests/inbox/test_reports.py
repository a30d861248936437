"""The inbox's reports: each table on seeded data, the page, and its CSV."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from conversations.models import Message
from conversations.services import hand_off
from inbox import reports, roles
from tests.factories import make_conversation, make_message, make_product

pytestmark = pytest.mark.django_db

REPORTS = reverse("inbox:reports")


@pytest.fixture
def staff(client, db):
    manager = get_user_model().objects.create_user("olga", password="pw", is_staff=True)
    manager.groups.add(Group.objects.get(name=roles.GROUP_NAMES[roles.MANAGERS]))
    client.force_login(manager)
    return client


def period():
    return reports.Period.last_days(7)


def answered(conversation, text="Есть икра?", *, after_s=2, kind=Message.ReplyKind.CATALOG, **fields):
    question = make_message(conversation, text)
    reply = make_message(
        conversation, "Вот", author=Message.Author.BOT, in_reply_to=question, reply_kind=kind, **fields
    )
    Message.objects.filter(pk=reply.pk).update(created_at=question.created_at + timedelta(seconds=after_s))
    return question, reply


def test_customer_messages_are_counted_per_day_and_channel():
    make_message(make_conversation("telegram"), "раз")
    make_message(make_conversation("bitrix24"), "два")
    make_message(make_conversation("telegram"), "три")

    table = reports.messages_per_day(period())

    today = next(row for row in table.rows if row[0] == timezone.localdate().isoformat())
    assert dict(zip(table.headings[1:], today[1:], strict=True)) == {"Bitrix24": 1, "Telegram": 2}


def test_the_bots_response_time_is_its_median_and_p90():
    conversation = make_conversation()
    for seconds in (1, 2, 3, 4, 10):
        answered(conversation, after_s=seconds)

    table = reports.response_times(period())

    assert table.rows[0][:3] == ["бот", 5, 3]


def test_the_operators_first_response_counts_from_the_hand_off():
    conversation = make_conversation()
    make_message(conversation, "Позовите человека")
    hand_off(conversation=conversation, reason="the customer asked for a person")
    reply = make_message(conversation, "Здравствуйте", author=Message.Author.OPERATOR)
    Message.objects.filter(pk=reply.pk).update(created_at=conversation.handed_off_at + timedelta(seconds=90))

    table = reports.response_times(period())

    assert table.rows[1][:3] == ["оператор", 1, 90]


def test_hand_offs_are_grouped_by_their_reason():
    for reason in ("the customer asked for a person", "the customer asked for a person", "жалоба"):
        conversation = make_conversation()
        make_message(conversation, "?")
        hand_off(conversation=conversation, reason=reason)

    table = reports.handoffs(period())

    assert table.rows == [["the customer asked for a person", 2], ["жалоба", 1]]


def test_questions_the_bot_could_not_answer_are_listed_most_often_first():
    conversation = make_conversation()
    answered(conversation, "абракадабра", kind=Message.ReplyKind.CLARIFY)
    answered(conversation, "абракадабра", kind=Message.ReplyKind.CLARIFY)
    answered(conversation, "есть икра?", kind=Message.ReplyKind.CATALOG)

    assert reports.unanswered(period()).rows == [["абракадабра", 2]]


def test_the_products_shown_most_come_first():
    caviar, crab = make_product("Икра кеты"), make_product("Краб")
    conversation = make_conversation()
    make_message(conversation, "икра", author=Message.Author.BOT, products=[caviar, crab])
    make_message(conversation, "икра", author=Message.Author.BOT, products=[caviar])

    assert reports.asked_products(period()).rows == [["Икра кеты", 2], ["Краб", 1]]


def test_llm_tokens_are_priced_per_thousand(settings):
    settings.LLM_PRICE_PER_1K_PROMPT_TOKENS = Decimal("0.5")
    settings.LLM_PRICE_PER_1K_COMPLETION_TOKENS = Decimal("1.5")
    answered(make_conversation(), llm_model="m", prompt_tokens=2000, completion_tokens=1000, kind=Message.ReplyKind.LLM)

    today = next(row for row in reports.llm_usage(period()).rows if row[0] == timezone.localdate().isoformat())

    assert today == [timezone.localdate().isoformat(), 2000, 1000, Decimal("2.50")]


def test_the_page_shows_every_report_with_its_chart_data(staff):
    answered(make_conversation())

    response = staff.get(REPORTS)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Время первого ответа" in html
    assert 'id="charts"' in html and "chart-4.4.7.umd.js" in html
    assert "cdn" not in html.lower()


def test_a_report_exports_as_csv(staff):
    make_message(make_conversation("telegram"), "раз")

    response = staff.get(REPORTS, {"export": "messages"})

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[0] == ["день", "Telegram"]
    assert [timezone.localdate().isoformat(), "1"] in rows


def test_a_customers_text_does_not_run_as_a_formula_in_the_csv(staff):
    answered(make_conversation(), '=HYPERLINK("http://evil")', kind=Message.ReplyKind.CLARIFY)

    response = staff.get(REPORTS, {"export": "unanswered"})

    assert "'=HYPERLINK" in response.content.decode("utf-8-sig")


@pytest.mark.parametrize("params", [{"start": "вчера"}, {"start": "2026-12-10", "end": "2026-12-01"}, {"export": "x"}])
def test_a_bad_period_or_report_is_a_400(staff, params):
    assert staff.get(REPORTS, params).status_code == 400


def test_reports_are_for_staff_only(client):
    assert client.get(REPORTS).status_code == 302


def test_a_search_that_found_nothing_is_counted_as_typed(demo_store, locmem_channels):
    from catalog.models import SearchMiss
    from conversations.services import record_incoming
    from integrations.answering import respond

    conversation = make_conversation()
    for _ in range(2):
        message, _created = record_incoming(conversation=conversation, text="есть ли у вас вонголе")
        respond(message)

    miss = SearchMiss.objects.get()
    assert (miss.query, miss.times) == ("вонголе", 2)


def test_searches_with_no_results_are_listed_with_a_synonym_to_add(staff):
    from catalog.services import record_search_miss

    record_search_miss("шримп")
    record_search_miss("шримп")
    record_search_miss("вонгole")

    table = reports.search_misses(period())

    assert table.rows[0] == ["шримп", 2]
    label, url = table.actions[0]
    assert label == "добавить синоним" and "phrase=%D1%88%D1%80%D0%B8%D0%BC%D0%BF" in url


def test_the_synonym_form_opens_with_the_query_filled_in(admin_client):
    from catalog.services import record_search_miss

    record_search_miss("шримп")
    _label, url = reports.search_misses(period()).actions[0]

    html = admin_client.get(url).content.decode()

    assert 'value="шримп"' in html
