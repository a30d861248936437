"""What the tests of order status and returns share: a picture's bytes and a photo as channels record one."""

from decimal import Decimal

# The first bytes of a JPEG (SOI, an APP0/JFIF segment) and its end: what orders.returns checks.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
HTML = b"<!doctype html><html><body>login</body></html>"


def photo(file_id: str = "ph-1", **fields) -> dict:
    """A photo attachment in IncomingMessage's shape, as integrations/telegram/updates.py gives one."""
    return {
        "kind": "photo",
        "file_id": file_id,
        "file_unique_id": f"u-{file_id}",
        "mime_type": "image/jpeg",
        "duration": None,
        "file_size": len(JPEG),
        "file_name": "",
        "telegram_field": "photo",
        **fields,
    }


def order_settings(settings) -> None:
    """Orders as tests/orders/conftest.py sets them up, for test modules outside tests/orders."""
    settings.ORDER_MIN_TOTAL = Decimal("1000")
    settings.ORDER_DELIVERY_COST = Decimal("300")
    settings.ORDER_FREE_DELIVERY_FROM = Decimal("5000")
    settings.B24_CRM_ORDERS = False
