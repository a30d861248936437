"""The staff roles «Операторы», «Менеджеры», «Администраторы» with their permissions (inbox.roles).

Depends on the latest migration of every app whose permissions it grants, so
that their models are in the historical state create_permissions reads.
"""

from django.db import migrations


def create_roles(apps, schema_editor):
    from inbox.roles import sync_roles

    sync_roles(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0002_seed_hours_and_sla"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("sessions", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("catalog", "0006_product_source_bitrix24"),
        ("conversations", "0009_reply_kind_order"),
        ("orders", "0004_returns"),
        ("bots", "0004_llm_settings_fall_back_to_environment"),
        ("integrations", "0001_bitrix24_portal"),
    ]

    # Reversing keeps the groups: staff may have been put in them.
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
