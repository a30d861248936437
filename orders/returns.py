"""Writes of return requests: opened from the dialog, the customer's photos kept, staff's decisions told.

A request is opened by one customer message and keyed on it
(ReturnRequest.opened_by, unique), and a photo on its message and attachment
(ReturnPhoto, unique): a retried task, or a second worker, finds what the
first one made instead of making it again. The photos are downloaded through
the channel's sender (`fetch_media`, at most RETURN_PHOTO_MAX_BYTES each),
checked to be pictures by their first bytes, and kept in Django's default
storage under a name made here: the customer's file name is never a path.

The dialog (bots.after_sale) decides when to open, wait and hand off; staff
change the state in admin, and each change is told to the customer in the
request's dialog.
"""

import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.urls import reverse

from conversations.channels import DeliveryError, sender_for
from conversations.models import Conversation, Message
from conversations.services import record_outgoing
from integrations.http import ApiError
from orders.models import Order, OrderLine, ReturnPhoto, ReturnRequest, ReturnState

logger = logging.getLogger(__name__)

# Pictures kept, by the type their first bytes show, and the extension each is stored with.
PICTURE_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
}
# Those a browser shows in admin; the rest are offered as a download.
SHOWN_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Photos kept from one message: a customer's album is a handful, not a hundred.
MAX_PHOTOS_PER_MESSAGE = 10
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")

# What the customer is told when staff set a state; {number} is the request's, {order} the order's.
STATE_TEXTS = {
    ReturnState.AWAITING_PHOTOS: (
        "По заявке на возврат №{number} (заказ №{order}) нужны фото товара и упаковки — пришлите их, "
        "пожалуйста, сюда в чат."
    ),
    ReturnState.NEW: "",
    ReturnState.APPROVED: (
        "Заявку на возврат №{number} по заказу №{order} одобрили. Менеджер свяжется с вами здесь, чтобы "
        "договориться о замене товара или возврате денег."
    ),
    ReturnState.REJECTED: (
        "По заявке на возврат №{number} (заказ №{order}) вернуть деньги не получится. Если остались вопросы, "
        "напишите «оператор»."
    ),
    ReturnState.REFUNDED: (
        "Деньги по заявке на возврат №{number} (заказ №{order}) вернули. Когда они поступят на счёт, "
        "зависит от вашего банка."
    ),
}


def is_photo(attachment) -> bool:
    """A picture the customer sent: a photo, or a file whose type is an image (not a sticker)."""
    if not isinstance(attachment, dict):
        return False
    if attachment.get("kind") == "photo":
        return True
    mime_type = str(attachment.get("mime_type") or "").lower()
    return attachment.get("kind") == "document" and mime_type.startswith("image/")


def photo_attachments(message: Message) -> list[tuple[int, dict]]:
    """(index, attachment) of the message's pictures, the index being the attachment's place in the message."""
    found = [(i, a) for i, a in enumerate(message.attachments or []) if is_photo(a)]
    return found[:MAX_PHOTOS_PER_MESSAGE]


def open_request(
    *,
    conversation: Conversation,
    message: Message,
    order: Order,
    lines: list[OrderLine],
    reason: str,
    has_photos: bool,
    without_photos: bool = False,
) -> ReturnRequest:
    """A return request of `order`'s `lines`, opened by the customer's `message`; the one it opened already
    when it did (a retry). It goes to staff at once when the customer sent photos (`has_photos`: the
    caller keeps them, keep_photos) or has none, else it waits for them."""
    existing = _opened_by(message)
    if existing is not None:
        return existing
    state = ReturnState.NEW if has_photos or without_photos else ReturnState.AWAITING_PHOTOS
    try:
        with transaction.atomic():
            request = ReturnRequest.objects.create(
                order=order,
                customer_id=order.customer_id,
                conversation=conversation,
                opened_by=message,
                submitted_by=message if state == ReturnState.NEW else None,
                reason=reason.strip()[:5000],
                state=state,
                without_photos=without_photos and not has_photos,
            )
            request.lines.set(lines)
    except IntegrityError:
        # Another worker opened it for the same message between our check and insert.
        existing = _opened_by(message)
        if existing is None:
            raise
        return existing
    logger.info("return request %s opened for order %s (%s)", request.pk, order.number, state)
    return request


def _opened_by(message: Message) -> ReturnRequest | None:
    return ReturnRequest.objects.select_related("order").filter(opened_by=message).first()


def submit(*, request: ReturnRequest, message: Message, without_photos: bool = False) -> ReturnRequest:
    """The photos asked for came in `message` (or the customer has none): the request goes to staff.

    Done once: the request, locked, is moved by the first message only; a
    second one (the next picture of an album, a retry) finds it moved and
    leaves it. The returned request says which message did it (submitted_by).
    """
    with transaction.atomic():
        locked = ReturnRequest.objects.select_for_update().select_related("order").get(pk=request.pk)
        if locked.state == ReturnState.AWAITING_PHOTOS:
            locked.state = ReturnState.NEW
            locked.submitted_by = message
            locked.without_photos = without_photos
            locked.save(update_fields=["state", "submitted_by", "without_photos", "updated_at"])
            logger.info("return request %s sent to staff (%s)", locked.pk, "no photos" if without_photos else "photos")
    return locked


@dataclass
class KeptPhotos:
    """What became of a message's pictures: how many are kept, and why the others are not."""

    kept: int = 0
    failed: list[str] = field(default_factory=list)


def keep_photos(request: ReturnRequest, message: Message) -> KeptPhotos:
    """Download the message's pictures from its channel and keep them with the request.

    Each is stored once (by message and attachment index): a retry finds the
    ones kept and fetches only the rest. A picture that cannot be had (too
    large, the channel failing, not a picture after all) is left out and its
    reason returned; nothing is raised, the customer's request stands.
    """
    result = KeptPhotos()
    kept = set(ReturnPhoto.objects.filter(message=message, request=request).values_list("attachment_index", flat=True))
    for index, attachment in photo_attachments(message):
        if index in kept:
            result.kept += 1
            continue
        try:
            photo = _download(request, message, index, attachment)
        except PhotoRefused as exc:
            logger.warning("return request %s: photo %s of message %s not kept: %s", request.pk, index, message.pk, exc)
            result.failed.append(str(exc))
            continue
        if photo is not None:
            result.kept += 1
    return result


class PhotoRefused(Exception):
    """A picture not kept; the message says why, without secrets (for the log and staff)."""


def _download(request: ReturnRequest, message: Message, index: int, attachment: dict) -> ReturnPhoto | None:
    limit = settings.RETURN_PHOTO_MAX_BYTES
    try:
        media = sender_for(message.conversation.channel).fetch_media(message, attachment, max_bytes=limit)
    except (DeliveryError, ApiError) as exc:
        # The messages of these are short and hold no secrets (see their classes).
        raise PhotoRefused(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        # Whatever else a channel's download raises: the request goes on without this photo.
        logger.exception("return request %s: photo download failed", request.pk)
        raise PhotoRefused(f"unexpected {type(exc).__name__}") from None
    content = media.content
    if len(content) > limit:
        raise PhotoRefused(f"larger than RETURN_PHOTO_MAX_BYTES ({limit})")
    mime_type = picture_type(content)
    if not mime_type:
        raise PhotoRefused("not a picture (JPEG, PNG, GIF, WebP or HEIC)")
    photo = ReturnPhoto(
        request=request, message=message, attachment_index=index, mime_type=mime_type, size=len(content)
    )
    # A name of ours: the customer's file name (media.filename) is never part of a path.
    photo.file.save(f"{uuid.uuid4().hex}{PICTURE_TYPES[mime_type]}", ContentFile(content), save=False)
    try:
        with transaction.atomic():
            photo.save()
    except IntegrityError:
        # Another worker kept this photo meanwhile: ours goes.
        photo.file.delete(save=False)
        return None
    return photo


def picture_type(content: bytes) -> str:
    """The picture type the bytes are, by their signature; "" for anything else (an SVG, a page, a program)."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[4:8] == b"ftyp" and content[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return ""


def admin_url(request: ReturnRequest) -> str:
    return settings.PUBLIC_URL.rstrip("/") + reverse("admin:orders_returnrequest_change", args=[request.pk])


# State and what the customer is told ------------------------------------------------


@dataclass
class StateChange:
    request: ReturnRequest
    message: Message | None  # what the customer was told; None: nothing (no text or no dialog)


def set_state(*, request: ReturnRequest, state: str, actor=None) -> StateChange | None:
    """Staff change a request's state (in admin); the customer is told it. None when unchanged."""
    if state not in ReturnState.values:
        raise ValueError(f"unknown return state {state!r}")
    with transaction.atomic():
        locked = ReturnRequest.objects.select_for_update().select_related("order").get(pk=request.pk)
        if locked.state == state:
            return None
        locked.state = state
        locked.save(update_fields=["state", "updated_at"])
        told = tell(locked, text_for_state(locked))
    request.state = state
    logger.info("return request %s set to %s by %s", locked.pk, state, actor or "staff")
    return StateChange(locked, told)


def text_for_state(request: ReturnRequest) -> str:
    """The state's text for the customer, with staff's note to the customer after it."""
    template = STATE_TEXTS.get(request.state, "")
    if not template:
        return ""
    text = template.format(number=request.pk, order=request.order.number)
    note = request.note.strip()
    return f"{text}\n{note}" if note else text


def tell(request: ReturnRequest, text: str) -> Message | None:
    """Record `text` for the customer in the request's dialog (else its order's) and send it once committed."""
    conversation = request.conversation or request.order.conversation
    if not text or conversation is None:
        return None
    from integrations import tasks

    message = record_outgoing(conversation=conversation, text=text, author=Message.Author.BOT)
    transaction.on_commit(lambda: tasks.enqueue_delivery(message))
    return message
