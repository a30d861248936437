"""Return requests (orders.returns): opened once per customer message, photos kept once under names of ours,
staff's decisions in admin told to the customer."""

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from conversations.channels import MediaFile
from conversations.models import Message
from conversations.services import record_incoming
from orders import returns
from orders.models import Order, ReturnPhoto, ReturnRequest
from tests.orders.conftest import place_order
from tests.orders.returns_support import HTML, JPEG, PNG, photo

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path, locmem_channels):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RETURN_PHOTO_MAX_BYTES = 10_000
    locmem_channels.media.clear()
    yield locmem_channels.media
    locmem_channels.media.clear()


@pytest.fixture
def order(conversation, caviar):
    order = place_order(conversation, [(caviar, 2)])
    Order.objects.filter(pk=order.pk).update(state=Order.State.DELIVERED)
    order.refresh_from_db()
    return order


def customer_says(conversation, text="пришла испорченная икра", attachments=None) -> Message:
    message, _ = record_incoming(conversation=conversation, text=text, attachments=attachments)
    return message


def open_for(message, order, **options) -> ReturnRequest:
    options.setdefault("has_photos", bool(returns.photo_attachments(message)))
    return returns.open_request(
        conversation=message.conversation,
        message=message,
        order=order,
        lines=list(order.lines.all()),
        reason=message.text,
        **options,
    )


def told(conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, direction=Message.Direction.OUT).values_list(
            "text", flat=True
        )
    )


# Opening ------------------------------------------------------------------------


def test_a_request_without_photos_waits_for_them(conversation, order):
    request = open_for(customer_says(conversation), order)

    assert request.state == ReturnRequest.State.AWAITING_PHOTOS
    assert (request.order, request.customer, request.conversation) == (order, order.customer, conversation)
    assert [line.title for line in request.lines.all()] == ["Икра кеты"]


def test_a_request_with_photos_goes_to_staff_at_once(conversation, order, media):
    media["ph-1"] = MediaFile(JPEG, "x.jpg", "image/jpeg")

    request = open_for(customer_says(conversation, attachments=[photo("ph-1")]), order)

    assert request.state == ReturnRequest.State.NEW


def test_one_message_opens_one_request_however_often_it_is_handled(conversation, order):
    message = customer_says(conversation)

    first = open_for(message, order)
    again = open_for(message, order)

    assert first.pk == again.pk
    assert ReturnRequest.objects.count() == 1


def test_the_request_is_shown_by_its_number(conversation, order):
    request = open_for(customer_says(conversation), order)

    assert str(request) == f"Возврат №{request.pk}"


# Photos -------------------------------------------------------------------------


def test_a_photo_is_kept_under_a_name_of_ours_not_the_customers(conversation, order, media):
    media["ph-1"] = MediaFile(JPEG, "../../etc/passwd.jpg", "image/jpeg")
    message = customer_says(conversation, attachments=[photo("ph-1", file_name="../../etc/passwd.jpg")])
    request = open_for(message, order)

    kept = returns.keep_photos(request, message)

    stored = ReturnPhoto.objects.get()
    assert kept.kept == 1
    assert stored.file.name.startswith(f"returns/{request.pk}/")
    assert stored.file.name.endswith(".jpg")
    assert "passwd" not in stored.file.name and ".." not in stored.file.name
    assert default_storage.open(stored.file.name).read() == JPEG
    assert (stored.mime_type, stored.size, stored.message) == ("image/jpeg", len(JPEG), message)


def test_a_photo_kept_is_not_fetched_or_stored_again(conversation, order, media):
    media["ph-1"] = MediaFile(JPEG, "x.jpg", "image/jpeg")
    message = customer_says(conversation, attachments=[photo("ph-1")])
    request = open_for(message, order)
    returns.keep_photos(request, message)
    del media["ph-1"]  # a second download would fail

    again = returns.keep_photos(request, message)

    assert (again.kept, again.failed) == (1, [])
    assert ReturnPhoto.objects.count() == 1


def test_every_picture_of_a_message_is_kept(conversation, order, media):
    media["ph-1"] = MediaFile(JPEG, "a.jpg", "image/jpeg")
    media["ph-2"] = MediaFile(PNG, "b.png", "image/png")
    png_file = photo("ph-2", kind="document", mime_type="image/png")
    message = customer_says(conversation, attachments=[photo("ph-1"), png_file])

    returns.keep_photos(open_for(message, order), message)

    assert sorted(ReturnPhoto.objects.values_list("mime_type", flat=True)) == ["image/jpeg", "image/png"]


def test_a_photo_over_the_size_limit_is_not_kept(conversation, order, media, settings):
    settings.RETURN_PHOTO_MAX_BYTES = 100
    media["ph-1"] = MediaFile(JPEG, "x.jpg", "image/jpeg")
    message = customer_says(conversation, attachments=[photo("ph-1")])

    kept = returns.keep_photos(open_for(message, order), message)

    assert kept.kept == 0
    assert kept.failed == ["DeliveryError: the file is too large"]
    assert not ReturnPhoto.objects.exists()


def test_a_file_that_is_no_picture_is_not_kept(conversation, order, media):
    media["ph-1"] = MediaFile(HTML, "x.jpg", "image/jpeg")
    message = customer_says(conversation, attachments=[photo("ph-1")])

    kept = returns.keep_photos(open_for(message, order), message)

    assert kept.kept == 0
    assert "not a picture" in kept.failed[0]


def test_a_channel_that_cannot_give_the_file_leaves_the_request_standing(conversation, order):
    message = customer_says(conversation, attachments=[photo("gone")])
    request = open_for(message, order)

    kept = returns.keep_photos(request, message)

    assert kept.kept == 0 and kept.failed
    assert ReturnRequest.objects.filter(pk=request.pk).exists()


# Going to staff ---------------------------------------------------------------------


def test_the_first_message_with_photos_sends_the_request_to_staff(conversation, order):
    request = open_for(customer_says(conversation), order)
    with_photo = customer_says(conversation, text="", attachments=[photo("ph-1")])
    next_one = customer_says(conversation, text="", attachments=[photo("ph-2")])

    returns.submit(request=request, message=with_photo)
    again = returns.submit(request=request, message=next_one)

    assert again.state == ReturnRequest.State.NEW
    assert again.submitted_by == with_photo


# Staff's decisions --------------------------------------------------------------------


def test_a_decision_is_told_to_the_customer_with_staffs_note(conversation, order):
    request = open_for(customer_says(conversation), order)
    ReturnRequest.objects.filter(pk=request.pk).update(note="Вернём 1 180 ₽ на карту.")
    request.refresh_from_db()

    change = returns.set_state(request=request, state=ReturnRequest.State.APPROVED)

    assert change.message.text.startswith(f"Заявку на возврат №{request.pk} по заказу №{order.number} одобрили.")
    assert told(conversation) == [change.message.text]
    assert change.message.text.endswith("\nВернём 1 180 ₽ на карту.")


def test_an_unchanged_state_tells_nothing(conversation, order):
    request = open_for(customer_says(conversation), order)

    assert returns.set_state(request=request, state=ReturnRequest.State.AWAITING_PHOTOS) is None
    assert told(conversation) == []


def test_the_decision_goes_out_in_the_requests_channel(
    conversation, order, locmem_channels, worker, django_capture_on_commit_callbacks
):
    request = open_for(customer_says(conversation), order)

    with django_capture_on_commit_callbacks(execute=True):
        returns.set_state(request=request, state=ReturnRequest.State.REFUNDED)

    [sent] = locmem_channels.outbox
    assert sent.dialog == conversation.external_id
    assert "Деньги по заявке на возврат" in sent.text


# Admin ------------------------------------------------------------------------------


def admin_page(admin_client, url) -> str:
    response = admin_client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def request_with_photo(conversation, order, media):
    media["ph-1"] = MediaFile(JPEG, "x.jpg", "image/jpeg")
    message = customer_says(conversation, attachments=[photo("ph-1")])
    request = open_for(message, order)
    returns.keep_photos(request, message)
    return request


def test_the_list_shows_the_request_its_order_and_state_in_russian(admin_client, request_with_photo, order):
    html = admin_page(admin_client, reverse("admin:orders_returnrequest_changelist"))

    assert f"Возврат №{request_with_photo.pk}" in html
    assert f"№{order.number}" in html
    assert "Новая" in html
    assert "Заявки на возврат" in html


def test_the_request_page_shows_its_photo_as_a_thumbnail(admin_client, request_with_photo):
    photo_url = reverse("admin:orders_returnrequest_photo", args=[request_with_photo.photos.get().pk])

    html = admin_page(admin_client, reverse("admin:orders_returnrequest_change", args=[request_with_photo.pk]))

    assert f'<img src="{photo_url}"' in html
    assert "Икра кеты × 2" in html


def test_staff_get_the_photo_as_a_picture_and_nothing_else(admin_client, request_with_photo):
    url = reverse("admin:orders_returnrequest_photo", args=[request_with_photo.photos.get().pk])

    response = admin_client.get(url)

    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == JPEG


def test_the_photo_is_not_shown_to_anyone_signed_out(client, request_with_photo):
    url = reverse("admin:orders_returnrequest_photo", args=[request_with_photo.photos.get().pk])

    response = client.get(url)

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_staff_change_the_state_and_the_customer_is_told(admin_client, request_with_photo, conversation):
    url = reverse("admin:orders_returnrequest_change", args=[request_with_photo.pk])
    data = {
        "state": ReturnRequest.State.REJECTED,
        "note": "Срок в 24 часа прошёл.",
        "_save": "1",
        "photos-TOTAL_FORMS": "1",
        "photos-INITIAL_FORMS": "1",
        "photos-MAX_NUM_FORMS": "0",
        "photos-0-id": str(request_with_photo.photos.get().pk),
        "photos-0-request": str(request_with_photo.pk),
    }

    response = admin_client.post(url, data, follow=True)

    assert response.status_code == 200
    request_with_photo.refresh_from_db()
    assert request_with_photo.state == ReturnRequest.State.REJECTED
    [text] = told(conversation)
    assert "вернуть деньги не получится" in text
    assert text.endswith("Срок в 24 часа прошёл.")
    assert "вернуть деньги не получится" in response.content.decode()


def test_requests_are_not_made_or_deleted_in_admin(admin_client, request_with_photo):
    assert admin_client.get(reverse("admin:orders_returnrequest_add")).status_code == 403
    delete = reverse("admin:orders_returnrequest_delete", args=[request_with_photo.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ReturnRequest.objects.filter(pk=request_with_photo.pk).exists()


def test_a_request_is_found_by_its_orders_number(admin_client, request_with_photo, order):
    html = admin_page(admin_client, reverse("admin:orders_returnrequest_changelist") + f"?q={order.number}")

    assert f"Возврат №{request_with_photo.pk}" in html


def test_a_photo_missing_from_this_servers_storage_is_not_found(admin_client, request_with_photo):
    stored = request_with_photo.photos.get()
    default_storage.delete(stored.file.name)

    response = admin_client.get(reverse("admin:orders_returnrequest_photo", args=[stored.pk]))

    assert response.status_code == 404
