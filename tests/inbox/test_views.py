"""The operator inbox's pages through Django's test client: the list, a dialog, its live updates and actions."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from conversations.models import Conversation, Message
from conversations.services import hand_off, take_over
from inbox import roles
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_channels")]

LIST = reverse("inbox:list")
ROWS = reverse("inbox:rows")


def with_role(user, role=roles.OPERATORS):
    user.groups.add(Group.objects.get(name=roles.GROUP_NAMES[role]))
    return user


@pytest.fixture
def operator(db):
    return with_role(get_user_model().objects.create_user("olga", password="pw", is_staff=True))


@pytest.fixture
def staff(client, operator):
    client.force_login(operator)
    return client


def waiting(name="Анна", text="Позовите менеджера"):
    conversation = make_conversation("telegram", customer_name=name)
    make_message(conversation, text)
    hand_off(conversation=conversation, reason="asked for a person")
    return conversation


def with_bot(name="Борис", text="Есть икра кеты?"):
    conversation = make_conversation("telegram", customer_name=name)
    make_message(conversation, text)
    make_message(conversation, "Вот что есть", author=Message.Author.BOT)
    return conversation


def page(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_inbox_is_for_staff_only(client, db):
    response = client.get(LIST)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_a_customer_account_without_staff_rights_is_sent_to_log_in(client, db):
    client.force_login(get_user_model().objects.create_user("buyer", password="pw"))

    assert client.get(LIST).status_code == 302


def test_staff_without_an_inbox_role_are_refused(client, db):
    client.force_login(get_user_model().objects.create_user("intern", password="pw", is_staff=True))

    assert client.get(LIST).status_code == 403


def test_reports_are_for_managers(staff):
    assert staff.get(reverse("inbox:reports")).status_code == 403


def test_dialogs_waiting_for_an_operator_come_first(staff):
    with_bot("Борис")
    waiting("Анна")

    html = page(staff, LIST)

    assert html.index("Анна") < html.index("Борис")
    assert "Ждёт оператора" in html


def test_the_longest_waiting_dialog_is_first_of_the_waiting(staff):
    first = waiting("Первая")
    second = waiting("Вторая")
    Conversation.objects.filter(pk=second.pk).update(handed_off_at=first.handed_off_at.replace(year=2020))

    html = page(staff, ROWS)

    assert html.index("Вторая") < html.index("Первая")


def test_a_row_counts_the_customer_messages_since_the_last_answer(staff):
    conversation = with_bot()
    make_message(conversation, "Алло?")
    make_message(conversation, "Вы тут?")

    html = page(staff, ROWS)

    assert '<span class="unread">2</span>' in html


def test_mine_shows_only_the_dialogs_taken_by_me(staff, operator):
    mine = waiting("Моя")
    waiting("Чужая")
    take_over(conversation=mine, operator=operator)

    html = page(staff, ROWS, show="mine")

    assert "Моя" in html and "Чужая" not in html


def test_the_search_finds_a_dialog_by_its_message_text(staff):
    with_bot("Борис", "Есть ли угорь копчёный?")
    with_bot("Вера", "Сколько стоит доставка?")

    html = page(staff, ROWS, q="угорь")

    assert "Борис" in html and "Вера" not in html


def test_an_unknown_filter_shows_everything(staff):
    with_bot("Борис")

    assert "Борис" in page(staff, ROWS, show="drop table", channel="nowhere")


def test_the_dialog_shows_how_each_bot_reply_was_made(staff):
    conversation = with_bot()

    html = page(staff, reverse("inbox:dialog", args=[conversation.pk]))

    assert "Есть икра кеты?" in html
    assert "Вот что есть" in html


def test_the_live_update_brings_only_the_messages_after_the_last_one_shown(staff):
    conversation = with_bot()
    last = conversation.messages.order_by("-id").first()
    make_message(conversation, "А с доставкой?")

    html = page(staff, reverse("inbox:updates", args=[conversation.pk]), after=last.pk)

    assert "А с доставкой?" in html
    assert "Есть икра кеты?" not in html
    new = conversation.messages.order_by("-id").first()
    assert f"after={new.pk}" in html


def test_the_live_update_carries_the_dialogs_state(staff, operator):
    conversation = waiting()
    take_over(conversation=conversation, operator=operator)

    html = page(staff, reverse("inbox:updates", args=[conversation.pk]), after=0)

    assert 'id="state"' in html and "olga" in html


def test_a_bad_message_id_in_the_update_is_a_400(staff):
    conversation = with_bot()

    response = staff.get(reverse("inbox:updates", args=[conversation.pk]), {"after": "x"})

    assert response.status_code == 400


def test_take_assigns_the_dialog_to_me(staff, operator):
    conversation = waiting()

    staff.post(reverse("inbox:action", args=[conversation.pk, "take"]))

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.OPERATOR, operator)


def test_a_reply_goes_to_the_customers_channel(staff, locmem_channels):
    conversation = waiting()

    staff.post(reverse("inbox:action", args=[conversation.pk, "reply"]), {"text": "Здравствуйте, я Ольга"})

    assert [m.text for m in locmem_channels.outbox] == ["Здравствуйте, я Ольга"]
    assert conversation.messages.filter(author=Message.Author.OPERATOR).count() == 1


def test_a_reply_box_submitted_twice_sends_once(staff, locmem_channels):
    conversation = waiting()
    page = staff.get(reverse("inbox:dialog", args=[conversation.pk])).content.decode()
    token = re.search(r'name="client_token" value="(\w+)"', page).group(1)
    form = {"text": "Здравствуйте, я Ольга", "client_token": token}

    staff.post(reverse("inbox:action", args=[conversation.pk, "reply"]), form)
    staff.post(reverse("inbox:action", args=[conversation.pk, "reply"]), form)

    assert [m.text for m in locmem_channels.outbox] == ["Здравствуйте, я Ольга"]


def test_an_empty_reply_sends_nothing(staff, locmem_channels):
    conversation = waiting()

    staff.post(reverse("inbox:action", args=[conversation.pk, "reply"]), {"text": "   "})

    assert locmem_channels.outbox == []


def test_return_to_the_bot_frees_the_dialog(staff, operator):
    conversation = waiting()
    take_over(conversation=conversation, operator=operator)

    staff.post(reverse("inbox:action", args=[conversation.pk, "return"]))

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assigned_operator) == (Conversation.State.BOT, None)


def test_an_action_is_a_post(staff):
    conversation = waiting()

    assert staff.get(reverse("inbox:action", args=[conversation.pk, "take"])).status_code == 405


def test_an_unknown_action_is_a_400(staff):
    conversation = waiting()

    assert staff.post(reverse("inbox:action", args=[conversation.pk, "explode"])).status_code == 400


def test_a_draft_is_the_assistants_answer_to_the_last_customer_message(staff, demo_store):
    conversation = waiting(text="Сколько стоит доставка?")

    html = page_post(staff, reverse("inbox:draft", args=[conversation.pk]))

    assert "390" in html  # the FAQ's delivery answer, from the catalog mode
    assert "Черновик ИИ" in html


def test_a_draft_is_never_sent_nor_recorded(staff, demo_store, locmem_channels):
    conversation = waiting(text="Сколько стоит доставка?")
    before = conversation.messages.count()
    locmem_channels.outbox.clear()

    page_post(staff, reverse("inbox:draft", args=[conversation.pk]))

    assert conversation.messages.count() == before
    assert locmem_channels.outbox == []


def test_a_draft_of_a_confirmation_makes_no_order(staff, demo_store):
    from catalog.models import Product
    from orders.basket import Basket, Step
    from orders.models import Order
    from orders.services import customer_for, set_phone

    conversation = waiting(text="подтверждаю")
    basket = Basket(fulfilment="pickup", desired_time="завтра", payment="cash", comment_asked=True)
    basket.add(Product.objects.get(title="Икра кеты зернистая, 500 г"), 1)
    basket.step = Step.CONFIRM
    Conversation.objects.filter(pk=conversation.pk).update(dialog_context={"basket": basket.as_json()})
    set_phone(customer_for(conversation), "+79161234567")

    page_post(staff, reverse("inbox:draft", args=[conversation.pk]))

    assert not Order.objects.exists()


def page_post(client, url) -> str:
    response = client.post(url)
    assert response.status_code == 200
    return response.content.decode()


def test_an_overdue_dialog_is_highlighted_and_first(staff):
    from datetime import timedelta

    from django.utils import timezone

    from inbox.models import WorkingHours

    WorkingHours.objects.update(opens_at="00:00", closes_at="23:59", is_closed=False)  # every minute counts
    with_bot("Борис")
    waiting("Свежая")
    late = waiting("Давняя")
    Conversation.objects.filter(pk=late.pk).update(handed_off_at=timezone.now() - timedelta(hours=3))

    html = page(staff, ROWS)

    assert html.index("Давняя") < html.index("Свежая") < html.index("Борис")
    assert 'class="waiting overdue"' in html
    assert html.count("просрочен") == 1


def test_the_overdue_filter_shows_only_overdue_dialogs(staff):
    from datetime import timedelta

    from django.utils import timezone

    from inbox.models import WorkingHours

    WorkingHours.objects.update(opens_at="00:00", closes_at="23:59", is_closed=False)
    waiting("Свежая")
    late = waiting("Давняя")
    Conversation.objects.filter(pk=late.pk).update(handed_off_at=timezone.now() - timedelta(hours=3))

    html = page(staff, ROWS, show="overdue")

    assert "Давняя" in html and "Свежая" not in html


def test_the_reply_box_offers_the_active_canned_replies(staff):
    from inbox.models import CannedReply

    CannedReply.objects.update(is_active=False)
    CannedReply.objects.create(title="Скидка", shortcut="скидка", text="Скидка 10% на первый заказ")
    conversation = waiting()

    html = page(staff, reverse("inbox:dialog", args=[conversation.pk]))

    assert 'data-shortcut="скидка"' in html and "Скидка 10% на первый заказ" in html
    assert "Уточню и вернусь" not in html


@pytest.mark.parametrize("query", ["8 (912) 345-67-89", "+79123456789"])
def test_the_search_finds_a_dialog_by_the_customers_phone_however_written(staff, query):
    from catalog.models import Product
    from tests.orders.conftest import place_order

    conversation = with_bot("Борис")
    with_bot("Вера")
    place_order(conversation, [(Product.objects.create(title="Икра", price=1500, quantity=5), 1)])

    html = page(staff, ROWS, q=query)

    assert "Борис" in html and "Вера" not in html


def test_the_search_finds_a_dialog_by_an_order_number(staff, settings):
    from catalog.models import Product
    from tests.orders.conftest import place_order

    settings.ORDER_MIN_TOTAL = 0
    conversation = with_bot("Борис")
    with_bot("Вера")
    order = place_order(conversation, [(Product.objects.create(title="Икра", price=100, quantity=5), 1)])

    html = page(staff, ROWS, q=f"№{order.number}")

    assert "Борис" in html and "Вера" not in html


def test_a_dialog_is_given_to_a_colleague(staff):
    colleague = with_role(get_user_model().objects.create_user("pavel", password="pw", is_staff=True))
    conversation = waiting()

    staff.post(reverse("inbox:action", args=[conversation.pk, "assign"]), {"operator": colleague.pk})

    conversation.refresh_from_db()
    assert conversation.assigned_operator == colleague


def test_a_dialog_cannot_be_given_to_someone_without_an_inbox_role(staff):
    outsider = get_user_model().objects.create_user("buyer", password="pw")
    conversation = waiting()

    response = staff.post(reverse("inbox:action", args=[conversation.pk, "assign"]), {"operator": outsider.pk})

    assert response.status_code == 400
    conversation.refresh_from_db()
    assert conversation.assigned_operator is None
