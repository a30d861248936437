"""What the customer is told at each stage of Bitrix24's general deal pipeline, and the first order number.

Stages are Bitrix24's defaults (NEW, PREPARATION, EXECUTING, WON, LOSE,
APOLOGY); "paid" and "delivered" have no default stage, so their rows have
none until staff give them the stages they add for it (the texts are used
when staff set those states in admin meanwhile). All editable in admin.
"""

from django.db import migrations

STAGE_TEXTS = [
    ("NEW", "new", "Заказ принят, ждём оплату"),
    ("", "paid", "Оплата получена"),
    ("PREPARATION", "preparing", "Собираем заказ"),
    ("EXECUTING", "shipped", "Курьер уже в пути"),
    ("", "delivered", "Заказ доставлен"),
    ("WON", "won", "Заказ закрыт, спасибо!"),
    ("LOSE", "cancelled", "Заказ отменён.\nПричина: {reason}"),
    ("APOLOGY", "cancelled", "Заказ отменён.\nПричина: {reason}"),
]

FIRST_NUMBER = 1001


def seed(apps, schema_editor):
    OrderStageText = apps.get_model("orders", "OrderStageText")
    for stage_id, state, text in STAGE_TEXTS:
        if stage_id and OrderStageText.objects.filter(stage_id=stage_id).exists():
            continue
        if not stage_id and OrderStageText.objects.filter(stage_id="", state=state).exists():
            continue
        OrderStageText.objects.create(stage_id=stage_id, state=state, text=text)
    NumberSequence = apps.get_model("orders", "NumberSequence")
    NumberSequence.objects.get_or_create(name="order", defaults={"last_value": FIRST_NUMBER - 1})


def unseed(apps, schema_editor):
    OrderStageText = apps.get_model("orders", "OrderStageText")
    for stage_id, state, text in STAGE_TEXTS:
        OrderStageText.objects.filter(stage_id=stage_id, state=state, text=text).delete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
