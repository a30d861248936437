from django.db import migrations

EXAMPLES = [
    ("Приветствие", "привет", "Здравствуйте! Я помогу вам с заказом."),
    ("Доставка", "доставка", "Доставляем по Москве и области ежедневно с 10:00 до 22:00; заказ до 14:00 привезём в тот же день."),
    ("Уточню и вернусь", "уточню", "Сейчас уточню и вернусь к вам в течение нескольких минут."),
    ("Спасибо за заказ", "спасибо", "Спасибо за заказ! Если появятся вопросы — пишите сюда, мы на связи."),
]


def seed(apps, schema_editor):
    from inbox.roles import sync_roles

    CannedReply = apps.get_model("inbox", "CannedReply")
    if not CannedReply.objects.exists():
        CannedReply.objects.bulk_create(
            CannedReply(title=title, shortcut=shortcut, text=text, sort_order=n * 10)
            for n, (title, shortcut, text) in enumerate(EXAMPLES, 1)
        )
    # Managers edit canned replies; the roles take the new model's permissions.
    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [("inbox", "0004_canned_replies")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
