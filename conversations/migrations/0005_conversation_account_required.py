import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0004_accounts_for_existing_conversations"),
    ]

    operations = [
        migrations.AlterField(
            model_name="conversation",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="conversations",
                to="conversations.channelaccount",
                verbose_name="channel account",
            ),
        ),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.UniqueConstraint(
                fields=("account", "external_id"), name="conversation_unique_dialog_per_account"
            ),
        ),
        migrations.AddField(
            model_name="receivedevent",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="conversations.channelaccount"
            ),
        ),
        migrations.AddConstraint(
            model_name="receivedevent",
            constraint=models.UniqueConstraint(
                fields=("account", "event_id"), name="received_event_unique_per_account"
            ),
        ),
    ]
