from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0008_conversation_dialog_context"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="reply_kind",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "—"),
                    ("greeting", "Greeting"),
                    ("faq", "FAQ"),
                    ("catalog", "Catalog"),
                    ("llm", "LLM"),
                    ("fallback", "Fallback"),
                    ("handoff", "Handoff"),
                    ("clarify", "Clarifying question"),
                    ("order", "Order in the dialog"),
                ],
                default="",
                max_length=16,
                verbose_name="made by",
            ),
        ),
    ]
