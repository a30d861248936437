"""Secrets stored encrypted at rest (Fernet from `cryptography`).

The keys are FIELD_ENCRYPTION_KEY: one Fernet key, or several separated by
commas, newest first. Values are encrypted with the first and read with any
(MultiFernet), so a new key goes in front, `manage.py rotate_encryption_keys`
re-encrypts what is stored, and the old key can then be dropped. Without a
key, one derived from SECRET_KEY, so the embedded setup works. Rotating
SECRET_KEY without setting FIELD_ENCRYPTION_KEY makes stored tokens
unreadable: portals then need to be installed again.
"""

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


def fernet() -> MultiFernet:
    """The keys every stored secret is encrypted with (also the webhook spool's, integrations.spool)."""
    return MultiFernet(_fernets_for(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY))


def newest_fernet() -> Fernet:
    """The key values are encrypted with: what a rotated value already reads with."""
    return _fernets_for(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)[0]


@functools.lru_cache(maxsize=4)
def _fernets_for(key: str, secret_key: str) -> tuple[Fernet, ...]:
    # Every portal token read and written goes through here (each webhook event):
    # parse and derive the keys once per setting, not per value.
    keys = [part.strip() for part in (key or "").split(",") if part.strip()]
    if not keys:
        digest = hashlib.sha256(f"storebot-field-encryption:{secret_key}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return tuple(Fernet(part) for part in keys)


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


def rotate(value: str) -> str:
    """A stored value encrypted again with the newest key; raises InvalidToken when no key reads it."""
    return fernet().rotate(value.encode()).decode() if value else ""


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted in the database and plain in Python."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else ""
