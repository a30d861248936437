"""Small factory functions for test data. Products go through the import
service, so their search fields are filled the way real imports fill them."""

from decimal import Decimal
from itertools import count

from catalog.importers.records import CategoryRecord, ProductRecord
from catalog.models import Category, FAQEntry, Product, SearchSynonym, Source
from catalog.services import import_products

_ids = count(1)


def make_category(title: str = "Икра", **fields) -> Category:
    return Category.objects.create(title=title, **fields)


def make_product(title: str = "Икра кеты, 100 г", *, category: str | None = None, **fields) -> Product:
    """A product stored through catalog.services.import_products (source "manual")."""
    n = next(_ids)
    fields.setdefault("external_id", f"test-{n}")
    fields.setdefault("sku", f"T-{n:05d}")
    if "price" in fields and fields["price"] is not None:
        fields["price"] = Decimal(str(fields["price"]))
    source = fields.pop("source", Source.MANUAL)
    categories = []
    if category:
        categories = [CategoryRecord(external_id=f"cat-{category}", title=category)]
        fields["category_external_ids"] = [f"cat-{category}"]
    record = ProductRecord(title=title, **fields)
    import_products(source=source, products=[record], categories=categories)
    return Product.objects.get(source=source, external_id=record.external_id)


def make_faq(question: str = "Как работает доставка?", answer: str = "Курьером.", **fields) -> FAQEntry:
    return FAQEntry.objects.create(question=question, answer=answer, **fields)


def make_synonym(phrase: str, meaning: str) -> SearchSynonym:
    return SearchSynonym.objects.create(phrase=phrase, meaning=meaning)


def make_conversation(
    channel: str = "telegram", *, external_id: str | None = None, customer_name: str = "Анна", **fields
):
    """A conversation opened the way a channel opens one (conversations.services)."""
    from conversations.services import get_or_create_conversation

    return get_or_create_conversation(
        channel=channel, external_id=external_id or f"dialog-{next(_ids)}", customer_name=customer_name, **fields
    )


def make_message(conversation, text: str = "Есть икра кеты?", *, author: str = "customer", **fields):
    """A customer's message recorded as incoming; anyone else's as an outgoing reply (not yet delivered)."""
    from conversations.models import Message
    from conversations.services import record_incoming, record_outgoing

    if author == Message.Author.CUSTOMER:
        message, _created = record_incoming(conversation=conversation, text=text, **fields)
        return message
    return record_outgoing(conversation=conversation, text=text, author=author, **fields)
