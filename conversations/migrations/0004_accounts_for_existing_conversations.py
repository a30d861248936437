from django.db import migrations


def accounts_for_existing_conversations(apps, schema_editor):
    # A Bitrix24 dialog id is "<member_id>:<DIALOG_ID>": its account is the
    # portal; every other channel had one bot, now its "default" account.
    ChannelAccount = apps.get_model("conversations", "ChannelAccount")
    Conversation = apps.get_model("conversations", "Conversation")
    accounts = {}
    for conversation in Conversation.objects.all().only("pk", "channel", "external_id").iterator():
        key = "default"
        if conversation.channel == "bitrix24" and ":" in conversation.external_id:
            key = conversation.external_id.partition(":")[0][:64] or "default"
        if (conversation.channel, key) not in accounts:
            accounts[conversation.channel, key] = ChannelAccount.objects.get_or_create(
                channel=conversation.channel, key=key
            )[0].pk
        Conversation.objects.filter(pk=conversation.pk).update(account_id=accounts[conversation.channel, key])


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0003_channel_accounts"),
    ]

    operations = [
        migrations.RunPython(accounts_for_existing_conversations, migrations.RunPython.noop),
    ]
