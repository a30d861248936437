# Django finds commands only in an installed app's management/commands; the
# command itself lives with the rest of the Bitrix24 code.
from integrations.bitrix24.management.commands.b24_import_catalog import Command

__all__ = ["Command"]
