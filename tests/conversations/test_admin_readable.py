"""Issue 14 §3: the conversations admin as a store owner reads it (rendered pages)."""

import re

import pytest
from django.utils.text import Truncator

from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db


def test_the_reply_box_heading_is_a_plain_heading_not_a_grey_label(admin_client):
    conversation = make_conversation()
    make_message(conversation)

    content = admin_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()

    heading = re.search(r'<h2 id="reply-heading">(.*?)</h2>', content, re.S).group(1)
    assert heading.strip() == "Ответ покупателю"
    assert 'aria-labelledby="reply-heading"' in content
    assert '<label for="reply-text">' not in content


def test_a_long_customer_name_and_last_message_are_cut_short_in_the_list(admin_client):
    name = "Анна-Мария Константинопольская-Верхнеудинская, ООО «Рыба»"
    conversation = make_conversation(customer_name=name)
    make_message(conversation, "Здравствуйте! " * 10)

    content = admin_client.get("/admin/conversations/conversation/").content.decode()

    assert f'<td class="field-customer">{Truncator(name).chars(40)}</td>' in content
    assert ("Здравствуйте! " * 10).strip() not in content


@pytest.mark.parametrize(
    ("count", "expected"), [(0, "0 диалогов"), (1, "1 диалог"), (3, "3 диалога"), (5, "5 диалогов")]
)
def test_the_conversation_list_counts_in_russian_grammar(admin_client, count, expected):
    for _ in range(count):
        make_conversation()

    content = admin_client.get("/admin/conversations/conversation/").content.decode()

    assert " ".join(re.search(r'<p class="paginator">(.*?)</p>', content, re.S).group(1).split()) == expected


def test_the_channel_accounts_list_keeps_djangos_counter(admin_client):
    content = admin_client.get("/admin/conversations/channelaccount/").content.decode()

    assert '<p class="paginator">' in content
