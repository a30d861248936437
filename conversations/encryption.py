"""Secrets stored encrypted at rest (Fernet from `cryptography`).

The key is FIELD_ENCRYPTION_KEY (a Fernet key); without one, a key derived
from SECRET_KEY, so the embedded setup works. Rotating SECRET_KEY without
setting FIELD_ENCRYPTION_KEY makes stored tokens unreadable: portals then
need to be installed again.
"""

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


def fernet() -> Fernet:
    """The key every stored secret is encrypted with (also the webhook spool's, integrations.spool)."""
    return _fernet_for(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _fernet_for(key: str, secret_key: str) -> Fernet:
    # Every portal token read and written goes through here (each webhook event):
    # derive the key once per setting, not per value.
    if not key:
        digest = hashlib.sha256(f"storebot-field-encryption:{secret_key}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(value: str) -> str:
    if not value:
        return ""
    try:
        return fernet().decrypt(value.encode()).decode()
    except InvalidToken:
        # A changed key: treat the secret as missing rather than crash a request.
        return ""


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted in the database and plain in Python."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else ""
