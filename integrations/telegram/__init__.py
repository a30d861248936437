"""Telegram: the Bot API channel (private chats with the store's bot)."""
