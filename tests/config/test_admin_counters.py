"""Issue 14 §3: every admin list counts in Russian grammar («1 заказ», «3 заказа»), not «0 аккаунты каналов»."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.urls import reverse

from bots.models import AssistantSettings
from config.admin_site import COUNTED, CountedChangeList, counted_phrase
from conversations.models import Channel
from orders.models import Customer, Order

pytestmark = pytest.mark.django_db


def paginator(content: str) -> str:
    """The counter under a list, its whitespace squeezed: «3 заказа»."""
    match = re.search(r'<p class="paginator">(.*?)</p>', content, re.S)
    assert match, "no counter under the list"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def changelist(admin_client, model) -> str:
    response = admin_client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
    assert response.status_code == 200
    return response.content.decode()


def make_orders(count: int) -> None:
    customer = Customer.objects.create(name="Анна", phone="+79123456789")
    for number in range(1, count + 1):
        Order.objects.create(
            number=1000 + number,
            customer=customer,
            channel=Channel.TELEGRAM,
            address="Москва, ул. Лесная, 5",
            items_total=1480,
            total=1480,
            push_state=Order.PushState.choices[0][0],
        )


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 заказов"), (1, "1 заказ"), (3, "3 заказа"), (5, "5 заказов"), (11, "11 заказов"), (21, "21 заказ")],
)
def test_the_order_list_counts_in_russian_grammar(admin_client, count, expected):
    make_orders(count)

    assert paginator(changelist(admin_client, Order)) == expected


def test_select_all_across_pages_counts_in_russian_grammar(admin_client, monkeypatch):
    make_orders(3)
    monkeypatch.setattr(admin.site._registry[Order], "list_per_page", 2)

    content = changelist(admin_client, Order)

    assert "Выбрать все: 3 заказа" in content
    assert "Выбрать все 3 заказы" not in content


def test_no_channel_accounts_reads_zero_accounts(admin_client):
    from conversations.models import ChannelAccount

    ChannelAccount.objects.all().delete()

    assert paginator(changelist(admin_client, ChannelAccount)) == "0 аккаунтов каналов"


def test_the_canned_replies_seeded_by_a_migration_are_four_replies(admin_client):
    from inbox.models import CannedReply

    assert CannedReply.objects.count() == 4

    assert paginator(changelist(admin_client, CannedReply)) == "4 готовых ответа"


def test_djangos_own_users_and_groups_count_in_russian_grammar(admin_client):
    # admin_client's superuser is the first user.
    assert paginator(changelist(admin_client, User)) == "1 пользователь"
    User.objects.create_user("anna")
    User.objects.create_user("boris")
    assert paginator(changelist(admin_client, User)) == "3 пользователя"

    Group.objects.all().delete()  # the inbox's roles, seeded by a migration
    for name in ["Операторы", "Старшие", "Склад", "Доставка", "Бухгалтерия"]:
        Group.objects.create(name=name)
    assert paginator(changelist(admin_client, Group)) == "5 групп"


def test_a_model_without_a_phrase_of_its_own_reads_its_plural_name_and_the_number():
    assert "bots.assistantsettings" not in COUNTED

    assert counted_phrase(AssistantSettings, 1) == "настройки ассистента: 1"
    assert counted_phrase(AssistantSettings, 5) == "настройки ассистента: 5"


def test_every_registered_list_has_a_counter_in_russian_grammar(admin_client):
    """Each model on admin.site: its list opens, and its counter is its COUNTED phrase or «<plural name>: N»."""
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = admin_client.get(url)
        if response.status_code == 302 and model is AssistantSettings:
            continue  # a single row: its list opens its page, there is no counter to read
        assert response.status_code == 200, url

        cl = response.context["cl"]
        assert isinstance(cl, CountedChangeList), url
        counter = paginator(response.content.decode())
        assert counter == cl.result_count_text, url
        if model._meta.label_lower in COUNTED:
            assert counter == COUNTED[model._meta.label_lower](cl.result_count) % {"count": cl.result_count}, url
        else:
            assert counter == f"{model._meta.verbose_name_plural}: {cl.result_count}", url
