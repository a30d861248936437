from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations.encryption import EncryptedTextField


class Portal(models.Model):
    """A Bitrix24 portal the bot is installed on, with its OAuth tokens (encrypted)."""

    member_id = models.CharField(_("member id"), max_length=64, unique=True)
    domain = models.CharField(_("domain"), max_length=255)
    client_endpoint = models.URLField(_("REST endpoint"), max_length=500, blank=True, default="")
    application_token = EncryptedTextField(_("application token"), blank=True, default="")
    access_token = EncryptedTextField(_("access token"), blank=True, default="")
    refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="")
    token_expires_at = models.DateTimeField(_("token expires"), null=True, blank=True)
    scope = models.CharField(_("scope"), max_length=500, blank=True, default="")
    bot_id = models.CharField(_("bot id"), max_length=32, blank=True, default="")
    last_error = models.TextField(_("last error"), blank=True, default="")
    installed_at = models.DateTimeField(_("installed"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Bitrix24 portal")
        verbose_name_plural = _("Bitrix24 portals")
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class OAuthState(models.Model):
    """A `state` handed out by /b24/install; the callback accepts each one once."""

    value = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("OAuth state")
        verbose_name_plural = _("OAuth states")

    def __str__(self) -> str:
        return self.value
