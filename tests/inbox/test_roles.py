"""Staff roles (inbox.roles): the groups the migrations create and the checks views use."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.models import User as UserModel
from rest_framework.test import APIRequestFactory

from inbox import roles
from inbox.permissions import IsOperator

pytestmark = pytest.mark.django_db


def staff(*role_names: str, **fields):
    user = UserModel.objects.create_user(username=f"u{UserModel.objects.count()}", is_staff=True, **fields)
    user.groups.add(*Group.objects.filter(name__in=[roles.GROUP_NAMES[r] for r in role_names]))
    return UserModel.objects.get(pk=user.pk)  # a fresh object: permissions are cached per user object


def test_the_migrations_create_the_three_groups_in_russian():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Операторы", "Менеджеры", "Администраторы"}


def test_every_role_permission_exists():
    existing = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
    named = set(roles.OPERATOR_PERMISSIONS) | set(roles.MANAGER_PERMISSIONS)

    assert named - existing == set()


def test_a_manager_edits_canned_replies_and_an_operator_reads_them():
    manager, operator = staff(roles.MANAGERS), staff(roles.OPERATORS)

    assert manager.has_perm("inbox.change_cannedreply") and operator.has_perm("inbox.view_cannedreply")
    assert not operator.has_perm("inbox.change_cannedreply")


def test_an_operator_can_view_and_change_conversations():
    operator = staff(roles.OPERATORS)

    assert operator.has_perms(["conversations.view_conversation", "conversations.change_conversation"])


def test_an_operator_can_view_products_but_not_change_them():
    operator = staff(roles.OPERATORS)

    assert operator.has_perm("catalog.view_product")
    assert not operator.has_perm("catalog.change_product")


def test_an_operator_cannot_see_the_assistant_settings():
    assert not staff(roles.OPERATORS).has_perm("bots.view_assistantsettings")


def test_a_manager_can_change_products():
    assert staff(roles.MANAGERS).has_perm("catalog.change_product")


def test_a_manager_can_view_reports():
    assert staff(roles.MANAGERS).has_perm("inbox.view_reports")


def test_a_manager_cannot_change_users():
    assert not staff(roles.MANAGERS).has_perm("auth.change_user")


def test_administrators_have_every_permission():
    group = Group.objects.get(name=roles.GROUP_NAMES[roles.ADMINISTRATORS])

    assert group.permissions.count() == Permission.objects.count()


def test_syncing_again_keeps_the_groups_and_gives_back_a_removed_permission():
    operators = Group.objects.get(name=roles.GROUP_NAMES[roles.OPERATORS])
    operators.permissions.remove(Permission.objects.get(codename="view_conversation"))

    roles.sync_roles()

    assert Group.objects.filter(name__in=roles.GROUP_NAMES.values()).count() == 3
    assert operators.permissions.filter(codename="view_conversation").exists()


def test_a_member_of_the_operators_is_an_operator():
    assert roles.is_operator(staff(roles.OPERATORS))


def test_a_member_of_the_operators_is_not_a_manager():
    assert not roles.is_manager(staff(roles.OPERATORS))


def test_a_manager_is_an_operator_too():
    assert roles.is_operator(staff(roles.MANAGERS))


def test_staff_without_a_role_is_not_an_operator():
    assert not roles.is_operator(staff())


def test_a_superuser_is_a_manager_without_a_group():
    assert roles.is_manager(staff(is_superuser=True))


def test_an_inactive_operator_is_not_an_operator():
    assert not roles.is_operator(staff(roles.OPERATORS, is_active=False))


def _request(user):
    request = APIRequestFactory().get("/")
    request.user = user
    return request


def test_the_api_permission_lets_an_operator_in():
    assert IsOperator().has_permission(_request(staff(roles.OPERATORS)), view=None)


def test_the_api_permission_keeps_an_anonymous_caller_out():
    # UNAUTHENTICATED_USER is None in REST_FRAMEWORK settings.
    assert not IsOperator().has_permission(_request(None), view=None)
