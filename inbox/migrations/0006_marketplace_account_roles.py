from django.db import migrations


def sync(apps, schema_editor):
    from inbox.roles import sync_roles

    # Marketplace accounts hold seller keys: administrators' alone, like channel accounts.
    sync_roles(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("inbox", "0005_canned_reply_roles_and_examples"), ("integrations", "0003_answer_deadlines")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
