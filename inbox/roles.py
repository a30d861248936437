"""Staff roles: the groups «Операторы», «Менеджеры», «Администраторы» and what each may do.

Code names the roles by the constants below, never by the group names, which
are for people. The groups and their permissions are created by a data
migration (inbox/migrations/0003_staff_roles.py) through sync_roles, which a
later migration adding models (canned replies, say) calls again: it keeps the
groups and adds what is missing, and never takes a permission away.
"""

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS

OPERATORS = "operators"
MANAGERS = "managers"
ADMINISTRATORS = "administrators"

GROUP_NAMES = {
    OPERATORS: "Операторы",
    MANAGERS: "Менеджеры",
    ADMINISTRATORS: "Администраторы",
}


def _manage(app_label: str, *models: str) -> tuple[str, ...]:
    return tuple(f"{app_label}.{action}_{model}" for model in models for action in ("add", "change", "delete", "view"))


OPERATOR_PERMISSIONS = (
    "conversations.view_conversation",
    "conversations.change_conversation",
    "conversations.view_message",
    "conversations.change_message",
    "orders.view_customer",
    "orders.view_customeridentity",
    "orders.view_order",
    "orders.view_orderline",
    "orders.view_orderchange",
    "orders.view_returnrequest",
    "orders.view_returnphoto",
    "catalog.view_category",
    "catalog.view_product",
    "catalog.view_faqentry",
    "inbox.view_cannedreply",
)

MANAGER_PERMISSIONS = (
    *OPERATOR_PERMISSIONS,
    *_manage("catalog", "category", "product", "faqentry", "searchsynonym"),
    *_manage("orders", "order", "orderline", "orderstagetext", "returnrequest", "returnphoto"),
    # Canned replies have no model yet: granted once their migration calls sync_roles.
    *_manage("inbox", "cannedreply"),
    "inbox.view_reports",
)

# Every permission there is.
ALL = "__all__"

ROLE_PERMISSIONS = {
    OPERATORS: OPERATOR_PERMISSIONS,
    MANAGERS: MANAGER_PERMISSIONS,
    ADMINISTRATORS: ALL,
}


def sync_roles(apps=global_apps, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Create the role groups and give them their permissions, creating the permissions first.

    Django creates permissions after all migrations (post_migrate), so in a
    migration those of models made in the same run do not exist yet. `apps`
    is a migration's historical registry or the global one.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        if apps is not global_apps:
            # A historical app has no models module, and create_permissions skips such apps.
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=using)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.using(using).values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.using(using).get_or_create(name=GROUP_NAMES[role])
        ids = permissions.values() if wanted == ALL else [permissions[name] for name in wanted if name in permissions]
        group.permissions.add(*ids)


def _roles(user) -> frozenset[str]:
    # Read once per user object (a request's user): views ask several times.
    roles = getattr(user, "_inbox_roles", None)
    if roles is None:
        names = set(user.groups.values_list("name", flat=True))
        roles = frozenset(role for role, name in GROUP_NAMES.items() if name in names)
        user._inbox_roles = roles
    return roles


def _staff(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def is_operator(user) -> bool:
    """May work in the inbox: any of the three roles (managers and administrators answer chats too), or a superuser."""
    return _staff(user) and (user.is_superuser or bool(_roles(user)))


def is_manager(user) -> bool:
    return _staff(user) and (user.is_superuser or bool(_roles(user) & {MANAGERS, ADMINISTRATORS}))


def is_administrator(user) -> bool:
    return _staff(user) and (user.is_superuser or ADMINISTRATORS in _roles(user))


def inbox_staff():
    """The people a dialog can be given to: active staff with an inbox role, and superusers."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    names = list(GROUP_NAMES.values())
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=names))
        .distinct()
        .order_by("username")
    )
