"""manage.py rotate_encryption_keys: encrypt every stored secret again with the newest key.

After a new key is put first in FIELD_ENCRYPTION_KEY ("new,old"), values
written earlier still read with the old one; this re-encrypts each
EncryptedTextField value of every model with the new key, so the old key can
then be dropped. Safe to run again: values already under the newest key are
left as they are. Only counts are printed, never a value.
"""

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction
from django.db.models.functions import Cast

from conversations import encryption
from conversations.encryption import EncryptedTextField

# The stored ciphertext, not the field's decrypted value: a plain text column reads it as it is.
RAW = "_stored_ciphertext"


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field value with the newest FIELD_ENCRYPTION_KEY key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        totals = {"rotated": 0, "current": 0, "unreadable": 0}
        for model, field in encrypted_fields():
            counts = rotate_field(model, field, batch_size)
            for name, count in counts.items():
                totals[name] += count
            if any(counts.values()):
                self.stdout.write(
                    f"{model._meta.label}.{field.name}: {counts['rotated']} re-encrypted, "
                    f"{counts['current']} already current, {counts['unreadable']} unreadable"
                )
        self.stdout.write(
            f"total: {totals['rotated']} re-encrypted, {totals['current']} already current, "
            f"{totals['unreadable']} unreadable"
        )
        if totals["unreadable"]:
            # Left untouched: no key given reads them, and overwriting would lose them for good.
            self.stderr.write("some values read with none of the keys: they were left as they are")


def encrypted_fields():
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.local_concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


def rotate_field(model, field, batch_size: int) -> dict[str, int]:
    counts = {"rotated": 0, "current": 0, "unreadable": 0}
    newest = encryption.newest_fernet()
    last_pk = None
    while True:
        with transaction.atomic():
            rows = model._base_manager.exclude(**{field.attname: ""}).order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            # Locked, so a value saved meanwhile is not overwritten with the older one.
            batch = list(
                rows.select_for_update()
                .annotate(**{RAW: Cast(field.attname, models.TextField())})
                .values_list("pk", RAW)[:batch_size]
            )
            for pk, stored in batch:
                if not stored:
                    continue
                try:
                    newest.decrypt(stored.encode())
                except InvalidToken:
                    pass
                else:
                    counts["current"] += 1
                    continue
                try:
                    rotated = encryption.rotate(stored)
                except InvalidToken:
                    counts["unreadable"] += 1
                    continue
                # A plain expression, so the field does not encrypt the ciphertext once more.
                model._base_manager.filter(pk=pk).update(
                    **{field.attname: models.Value(rotated, output_field=models.TextField())}
                )
                counts["rotated"] += 1
        if len(batch) < batch_size:
            return counts
        last_pk = batch[-1][0]
