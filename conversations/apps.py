from django.apps import AppConfig
from django.db.models.signals import post_delete
from django.utils.translation import gettext_lazy as _


def _forget_deleted_account(sender, instance, **kwargs):
    from conversations.services import forget_account

    forget_account(instance.pk)


class ConversationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"
    verbose_name = _("Conversations")

    def ready(self):
        post_delete.connect(
            _forget_deleted_account, sender="conversations.ChannelAccount", dispatch_uid="forget-deleted-account"
        )
