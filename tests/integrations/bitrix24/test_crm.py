"""Bitrix24 CRM calls (integrations/bitrix24/crm.py) against the recorded answers in fixtures/crm/ (see NOTES.md)."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from responses import matchers

from integrations.bitrix24 import crm
from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error

FIXTURES = Path(__file__).parent / "fixtures" / "crm"


def answer(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def roomy_rate_limit(settings):
    settings.B24_RATE_LIMIT_PER_S = 1000
    settings.B24_RATE_LIMIT_BURST = 1000


@pytest.fixture
def url():
    return f"https://t{uuid.uuid4().hex[:12]}.bitrix24.test/rest/1/s3cr3tw3bh00k/"


@pytest.fixture
def client(url):
    return Bitrix24Client.for_webhook(url, backoff=0, sleep=lambda s: None)


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


def sent(http) -> dict:
    return json.loads(http.calls[-1].request.body)


def test_a_contact_is_found_by_phone(http, client, url):
    http.post(f"{url}crm.duplicate.findbycomm.json", json=answer("duplicate_findbycomm.json"))

    assert crm.find_contact_by_phone(client, "+79123456789") == "275"


def test_the_contact_search_asks_for_contacts_by_the_phone_as_staff_type_it_too(http, client, url):
    http.post(
        f"{url}crm.duplicate.findbycomm.json",
        json=answer("duplicate_findbycomm.json"),
        match=[
            matchers.json_params_matcher(
                {"type": "PHONE", "values": ["+79123456789", "89123456789", "79123456789"], "entity_type": "CONTACT"}
            )
        ],
    )

    crm.find_contact_by_phone(client, "+79123456789")


def test_no_contact_with_the_phone_is_none(http, client, url):
    http.post(f"{url}crm.duplicate.findbycomm.json", json=answer("duplicate_findbycomm_none.json"))

    assert crm.find_contact_by_phone(client, "+79123456789") is None


def test_a_new_contact_gets_the_phone_and_our_origin(http, client, url):
    http.post(f"{url}crm.contact.add.json", json=answer("contact_add.json"))

    contact_id = crm.add_contact(client, name="Анна", phone="+79123456789", origin_id="customer-7")

    assert contact_id == "46"
    fields = sent(http)["fields"]
    assert fields["PHONE"] == [{"VALUE": "+79123456789", "VALUE_TYPE": "MOBILE"}]
    assert (fields["ORIGINATOR_ID"], fields["ORIGIN_ID"]) == ("storebot", "customer-7")


def test_a_new_deal_is_its_id(http, client, url):
    http.post(f"{url}crm.deal.add.json", json=answer("deal_add.json"))

    assert crm.add_deal(client, {"TITLE": "Заказ №1001"}) == "394"


def test_an_add_without_an_id_in_the_answer_is_an_error(http, client, url):
    http.post(f"{url}crm.deal.add.json", json={"result": False})

    with pytest.raises(Bitrix24Error):
        crm.add_deal(client, {"TITLE": "Заказ №1001"})


def test_a_deal_is_read_with_its_stage_and_origin(http, client, url):
    http.post(f"{url}crm.deal.get.json", json=answer("deal_get.json"))

    deal = crm.get_deal(client, "394")

    assert (deal.id, deal.stage_id, deal.semantic, deal.originator_id) == ("394", "PREPARATION", "P", "storebot")
    assert deal.modified_at == datetime(2026, 11, 30, 14, 20, 5, tzinfo=UTC)


def test_a_lost_deal_gives_its_comment_as_the_reason_without_bb_code(http, client, url):
    http.post(f"{url}crm.deal.get.json", json=answer("deal_get_lost.json"))

    deal = crm.get_deal(client, "394")

    assert (deal.stage_id, deal.semantic, deal.closed) == ("LOSE", "F", True)
    assert deal.reason == "Нет курьера на этот адрес"


def test_our_deal_is_looked_up_by_originator_and_origin(http, client, url):
    http.post(
        f"{url}crm.deal.list.json",
        json=answer("deal_list.json"),
        match=[
            matchers.json_params_matcher(
                {"filter": {"=ORIGINATOR_ID": "storebot", "=ORIGIN_ID": "5b0f6a3c"}}, strict_match=False
            )
        ],
    )

    assert crm.find_deal(client, "5b0f6a3c").id == "394"


def test_no_deal_of_that_origin_is_none(http, client, url):
    http.post(f"{url}crm.deal.list.json", json=answer("deal_list_empty.json"))

    assert crm.find_deal(client, "5b0f6a3c") is None


def test_deals_changed_since_follow_every_page(http, client, url):
    first = {**answer("deal_list.json"), "next": 50}
    http.post(f"{url}crm.deal.list.json", json=first)
    http.post(f"{url}crm.deal.list.json", json=answer("deal_list_empty.json"))

    deals = list(crm.deals_changed_since(client, datetime(2026, 11, 30, tzinfo=UTC)))

    assert [d.stage_id for d in deals] == ["PREPARATION", "C1:NEW"]
    assert json.loads(http.calls[0].request.body)["filter"][">DATE_MODIFY"] == "2026-11-30T00:00:00+00:00"


def test_product_rows_replace_the_deals_rows(http, client, url):
    http.post(f"{url}crm.item.productrow.set.json", json=answer("item_productrow_set.json"))

    crm.set_product_rows(client, "394", [{"productName": "Икра кеты (100 г)", "price": 590.0, "quantity": 2}])

    assert sent(http) == {
        "ownerType": "D",
        "ownerId": 394,
        "productRows": [{"productName": "Икра кеты (100 г)", "price": 590.0, "quantity": 2}],
    }


def test_rows_of_a_deal_that_is_gone_are_a_permanent_error(http, client, url):
    http.post(f"{url}crm.item.productrow.set.json", json=answer("item_productrow_set_owner_not_found.json"), status=400)

    with pytest.raises(Bitrix24Error) as failed:
        crm.set_product_rows(client, "394", [])

    assert (failed.value.code, failed.value.permanent) == ("OWNER_NOT_FOUND", True)


def test_a_comment_goes_to_the_deals_timeline_with_lower_case_fields(http, client, url):
    http.post(f"{url}crm.timeline.comment.add.json", json=answer("timeline_comment_add.json"))

    assert crm.add_deal_comment(client, "394", "Переписка") == "999"
    assert sent(http) == {"fields": {"ENTITY_ID": 394, "ENTITY_TYPE": "deal", "COMMENT": "Переписка"}}


def test_a_comment_is_found_by_its_marker(http, client, url):
    comments = [{"ID": "997", "COMMENT": "чужой"}, {"ID": "999", "COMMENT": "...\nstorebot order 5b0f"}]
    http.post(f"{url}crm.timeline.comment.list.json", json={"result": comments, "total": 2})

    assert crm.find_deal_comment(client, "394", "storebot order 5b0f") == "999"


def test_a_method_blocked_for_a_while_is_a_transient_error(http, client, url):
    http.post(f"{url}crm.deal.add.json", json=answer("operation_time_limit.json"), status=503)

    with pytest.raises(Bitrix24Error) as failed:
        crm.add_deal(client, {})

    assert (failed.value.code, failed.value.permanent) == ("OPERATION_TIME_LIMIT", False)


@pytest.mark.parametrize(
    ("value", "bindings"),
    [
        ("LEAD|0|COMPANY|0|CONTACT|5|DEAL|7", {"CONTACT": "5", "DEAL": "7"}),
        ("LEAD|12|COMPANY|0|CONTACT|0|DEAL|0", {"LEAD": "12"}),
        ("", {}),
        ("garbage", {}),
        ("DEAL|-3|CONTACT|x", {}),
    ],
)
def test_an_open_lines_chat_names_the_crm_items_it_is_linked_to(value, bindings):
    assert crm.chat_bindings(value) == bindings


def test_a_deal_link_is_on_the_portal():
    assert crm.deal_url("shop.bitrix24.ru", "394") == "https://shop.bitrix24.ru/crm/deal/details/394/"
