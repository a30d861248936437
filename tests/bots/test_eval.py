"""manage.py eval: scenario files, scoring, the command, and its own check of LLM answers.

Scenario files here are small ones written into tmp_path: the starter set
(bots/evaluation/scenarios) changes as the bot does and is not tested.
"""

import io
import json
import re
import textwrap
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from bots.evaluation.facts import CatalogFacts
from bots.evaluation.scenarios import Expect, ScenarioError, load_file, load_scenarios
from bots.evaluation.scoring import Observed, Shown, judge
from bots.models import AssistantSettings
from catalog.models import Product
from conversations.models import Conversation, Message


def write(tmp_path, text: str, name: str = "cases.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run_eval(*args):
    out = io.StringIO()
    call_command("eval", *map(str, args), stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- the loader ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # A misspelt expectation would otherwise check nothing.
        ("- id: a\n  category: c\n  turns:\n    - say: икра\n      expect: {product: [MR-00001]}\n", "expect.product"),
        ("- id: a\n  category: c\n  turns:\n    - say: икра\n      expect: {products: 5}\n", "expect.products"),
        ("- id: a\n  category: c\n  turns:\n    - say: икра\n      expect: {facts: ['(икр']}\n", "expect.facts"),
        ("- id: a\n  category: c\n  turns:\n    - say: икра\n      expect: {handoff: 'нет'}\n", "expect.handoff"),
        ("- id: a\n  category: c\n  turns:\n    - expect: {handoff: true}\n", "say"),
        ("- id: a\n  category: c\n  turns: []\n", "turns"),
        ("- category: c\n  turns:\n    - say: икра\n", "id"),
        ("- id: a\n  turns:\n    - say: икра\n", "category"),
        ("- id: a\n  category: c\n  setup: {settings: {colour: red}}\n  turns: [x]\n", "setup.settings.colour"),
        ("- id: a\n  category: c\n  setup: {out_of_stock: MR 1}\n  turns: [x]\n", "setup.out_of_stock"),
        ("- id: a\n  category: c\n  turns: [{say: x, expect: {previous_product: 1}}]\n", "expect.previous_product"),
    ],
)
def test_a_malformed_scenario_is_rejected_naming_the_file_and_the_field(tmp_path, body, field):
    path = write(tmp_path, body, "broken.yaml")

    with pytest.raises(ScenarioError) as error:
        load_file(path)

    assert str(path) in str(error.value)
    assert f"'{field}'" in str(error.value)


def test_a_file_that_is_not_yaml_is_rejected_naming_the_file(tmp_path):
    path = write(tmp_path, "- id: a\n  turns: [\n", "bad.yaml")

    with pytest.raises(ScenarioError, match=r"bad\.yaml: not valid YAML"):
        load_file(path)


def test_ids_are_unique_across_files(tmp_path):
    write(tmp_path, "- {id: same, category: c, turns: [икра]}\n", "one.yaml")
    write(tmp_path, "- {id: same, category: c, turns: [мидии]}\n", "two.yaml")

    with pytest.raises(ScenarioError, match=r"two\.yaml: scenario 'same': field 'id': also used in .*one\.yaml"):
        load_scenarios([tmp_path])


def test_a_well_formed_file_reads_with_its_defaults(tmp_path):
    path = write(
        tmp_path,
        """
        category: search
        scenarios:
          - id: caviar
            setup:
              settings: {contacts: "+7 495 000-00-00", max_reply_chars: 900}
              out_of_stock: [MR-00007]
            turns:
              - say: Есть икра?
                expect:
                  facts: ['икр[аы]']
                  products_any: [MR-00001]
              - а подешевле?
        """,
    )

    [scenario] = load_file(path)

    assert scenario.category == "search"
    assert scenario.setup.settings["max_reply_chars"] == 900
    assert scenario.setup.out_of_stock == ("MR-00007",)
    first, second = scenario.turns
    assert first.expect.facts[0].search("ИКРЫ")
    assert first.expect.handoff is False  # no hand-off unless the scenario asks for one
    assert second.say == "а подешевле?"
    assert second.expect == Expect()


# --- the scorer ---------------------------------------------------------------


def caviar(sku="MR-00001", price="1290", title="Икра горбуши зернистая, 100 г", in_stock=True):
    return Shown(sku=sku, title=title, price=Decimal(price), in_stock=in_stock, categories=["Икра"])


def expect(**fields):
    for name in ("facts", "forbidden"):
        if name in fields:
            fields[name] = tuple(re.compile(p, re.IGNORECASE) for p in fields[name])
    return Expect(**fields)


def test_a_reply_that_meets_every_expectation_passes():
    got = Observed(text="Вот икра:\n1. Икра горбуши зернистая, 100 г — 1\u00a0290\u00a0₽", kind="catalog")
    got.products = [caviar()]

    assert judge(expect(facts=[r"1 290 ₽"], products=("MR-00001",), forbidden=["нет в наличии"]), got) == []


def test_a_fact_that_does_not_match_fails_the_turn():
    got = Observed(text="Доставляем ежедневно.", kind="faq")

    [failure] = judge(expect(facts=["390"]), got)

    assert "expected fact /390/" in failure


def test_a_missing_product_fails_the_turn():
    got = Observed(text="Вот что есть", kind="catalog", products=[caviar()])

    [failure] = judge(expect(products=("MR-00004",)), got)

    assert failure == "expected products MR-00004 among those shown, got MR-00001"


def test_an_unexpected_handoff_fails_the_turn():
    got = Observed(text="Передаю диалог оператору", kind="handoff", handoff=True)

    assert judge(expect(), got) == ["expected no hand-off, got a hand-off to a person"]
    assert judge(expect(handoff=True), got) == []
    assert judge(expect(handoff=None), got) == []


def test_a_missing_handoff_fails_the_turn():
    got = Observed(text="Вот что есть", kind="catalog")

    [failure] = judge(expect(handoff=True), got)

    assert "expected a hand-off" in failure


def test_a_forbidden_phrase_fails_the_turn():
    got = Observed(text="Сделаем скидку 10%!", kind="llm")

    [failure] = judge(expect(forbidden=["скидк"]), got)

    assert "forbidden /скидк/" in failure and "«скидк»" in failure


def test_prices_categories_and_order_are_judged_on_the_products_shown():
    dear = caviar(sku="MR-00016", price="11210", title="Икра осетровая чёрная (аквакультура), 100 г")
    out = caviar(sku="MR-00005", price="4014", title="Икра кеты зернистая, 250 г", in_stock=False)
    got = Observed(text="…", kind="catalog", products=[out, dear, caviar()])

    failures = judge(expect(max_price=Decimal(5000), first_in_stock=("MR-00001",), products_none=("MR-00005",)), got)

    assert failures == [
        "expected none of MR-00005, got them among MR-00005, MR-00016, MR-00001",
        "expected MR-00001 as the first product in stock, got MR-00016 Икра осетровая чёрная (аквакультура), 100 г",
        "expected prices up to 5000 ₽, got MR-00016 (11210 ₽)",
    ]


def test_follow_ups_are_judged_against_the_previous_reply():
    before = Observed(text="…", kind="catalog", products=[caviar(sku="MR-00004", price="1690"), caviar()])
    cheaper = Observed(text="…", kind="catalog", products=[caviar(sku="MR-00014", price="390")])

    assert judge(expect(cheaper_than_previous=True), cheaper, before) == []
    assert judge(expect(previous_product=2), Observed(text="…", products=[caviar()]), before) == []
    assert judge(expect(cheaper_than_previous=True), before, before) == [
        "expected products cheaper than MR-00004 (1690 ₽), got MR-00004 (1690 ₽)"
    ]
    assert judge(expect(previous_product=1), cheaper, before) == [
        "expected product #1 of the previous reply (MR-00004) among those shown, got MR-00014"
    ]


def test_no_reply_fails_unless_silence_is_expected():
    assert judge(expect(), Observed(text=None)) == ["expected a reply, got none (the bot stayed silent)"]
    assert judge(expect(silent=True, handoff=None), Observed(text=None)) == []


# --- the command ----------------------------------------------------------------

PASSING_AND_FAILING = """
category: search
scenarios:
  - id: caviar-found
    turns:
      - say: есть икра кеты?
        expect:
          products_any: [MR-00004, MR-00006]
  - id: delivery-wrong-fact
    category: faq
    turns:
      - say: сколько стоит доставка?
        expect:
          facts: ['бесплатно всегда']
"""


@pytest.mark.django_db
def test_the_command_exits_non_zero_under_min_score(tmp_path):
    path = write(tmp_path, PASSING_AND_FAILING)

    with pytest.raises(CommandError) as error:
        run_eval(path, "--min-score", "0.9")

    assert error.value.returncode == 1
    assert "overall score 0.50 is under --min-score 0.90" in str(error.value)
    run_eval(path, "--min-score", "0.5")  # at the gate: passes


@pytest.mark.django_db
def test_the_command_exits_non_zero_under_min_category_score(tmp_path):
    path = write(tmp_path, PASSING_AND_FAILING)

    with pytest.raises(CommandError, match=re.escape("faq score 0.00 is under --min-category-score 0.50")) as error:
        run_eval(path, "--min-category-score", "0.5")

    assert error.value.returncode == 1


@pytest.mark.django_db
def test_the_table_scores_by_category_and_a_failure_shows_expected_and_got(tmp_path):
    output = run_eval(write(tmp_path, PASSING_AND_FAILING))

    assert "FAIL faq/delivery-wrong-fact" in output
    assert "expected fact /бесплатно всегда/: not in the reply" in output
    assert "reply: «Доставляем по Москве" in output
    assert "demo catalog loaded for the run" in output
    rows = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line.split()}
    assert rows["faq"] == ["1", "0", "0.00"]
    assert rows["search"] == ["1", "1", "1.00"]
    assert rows["overall"] == ["2", "1", "0.50"]


@pytest.mark.django_db
def test_the_json_is_written_with_every_reply(tmp_path):
    out = tmp_path / "runs" / "now.json"

    run_eval(write(tmp_path, PASSING_AND_FAILING), "--json", out)

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["mode"] == "retrieval"
    assert (data["score"], data["cases"], data["passed"]) == (0.5, 2, 1)
    assert data["categories"]["faq"] == {"cases": 1, "passed": 0, "score": 0.0}
    found, delivery = data["results"]
    assert found["passed"] is True
    assert {p["sku"] for p in found["turns"][0]["products"]} & {"MR-00004", "MR-00006"}
    assert delivery["turns"][0]["kind"] == "faq"
    assert "390" in delivery["turns"][0]["reply"]
    assert delivery["turns"][0]["failures"] == ["expected fact /бесплатно всегда/: not in the reply"]


@pytest.mark.django_db
def test_compare_shows_the_cases_that_changed(tmp_path):
    before = tmp_path / "before.json"
    run_eval(write(tmp_path, PASSING_AND_FAILING), "--json", before)
    fixed = PASSING_AND_FAILING.replace("бесплатно всегда", "390")

    output = run_eval(write(tmp_path, fixed, "fixed.yaml"), "--compare", before)

    assert "overall 0.50 → 1.00" in output
    assert "faq: 0.00 → 1.00" in output
    assert "now pass (1): delivery-wrong-fact" in output


@pytest.mark.django_db
def test_a_sku_the_catalog_lacks_stops_the_run(tmp_path):
    path = write(tmp_path, "- {id: a, category: c, turns: [{say: икра, expect: {products: [MR-99999]}}]}\n")

    with pytest.raises(CommandError, match="scenario 'a': SKU MR-99999 is not in the catalog") as error:
        run_eval(path)

    assert error.value.returncode == 2


@pytest.mark.django_db(transaction=True)
def test_eval_leaves_nothing_behind(tmp_path):
    config = AssistantSettings.load()
    config.contacts = "the store's own contacts"
    config.save()
    path = write(
        tmp_path,
        """
        - id: handed-off
          category: handoff
          setup:
            settings: {contacts: "+7 495 000-00-00"}
            out_of_stock: [MR-00018]
          turns:
            - say: есть креветки тигровые?
            - say: позовите менеджера
              expect: {handoff: true}
            - say: алло?
              expect: {silent: true, handoff: null}
        """,
    )

    output = run_eval(path, "--min-score", "1")

    assert ["overall", "1", "1", "1.00"] in [line.split() for line in output.splitlines()]
    # The demo catalog was loaded for the run only, like the dialog and the setup.
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0
    assert Product.objects.count() == 0
    config = AssistantSettings.load()
    assert config.contacts == "the store's own contacts"


# --- the evaluator's own check of an LLM's answers --------------------------------


@pytest.fixture
def openai_settings(settings, openai_server):
    settings.OPENAI_BASE_URL = openai_server.url
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.OPENAI_MODEL = "model-eval"
    settings.LLM_TIMEOUT_S = 2.0


LLM_CASES = """
category: llm
scenarios:
  - id: truthful
    turns:
      - say: есть икра кеты?
        expect: {products: [MR-00004]}
  - id: wrong-price
    turns:
      - say: есть икра кеты?
        expect: {products: [MR-00004]}
  - id: invented-product
    turns:
      - say: какая икра есть?
        expect: {products: [MR-00004]}
"""


@pytest.mark.usefixtures("demo_store", "openai_settings")
def test_an_llm_reply_with_an_invented_price_or_product_fails(tmp_path, openai_server):
    keta = Product.objects.get(sku="MR-00004")
    # 1. The truth: the product cited by its marker, rendered from the catalog.
    openai_server.reply_text(f"Есть! [[product:{keta.id}]]")
    # 2. The catalog's 1290 ₽ (pink salmon caviar, which the search returned) given as the keta's price:
    #    a price the guard lets through, since some product found has it.
    openai_server.reply_tool_call("search_catalog", {"query": "икра"})
    openai_server.reply_text(f"Рекомендую [[product:{keta.id}]]. Сегодня она стоит всего 1290 ₽ за банку.")
    # 3. A product the store does not sell.
    openai_server.reply_text(f"Есть [[product:{keta.id}]], а ещё икра белуги — очень нежная.")
    out = tmp_path / "llm.json"

    output = run_eval(write(tmp_path, LLM_CASES), "--provider", "openai", "--json", out)

    assert "LLM openai model-eval" in output
    results = {case["id"]: case for case in json.loads(out.read_text(encoding="utf-8"))["results"]}
    replies = {case_id: case["turns"][0]["reply"] for case_id, case in results.items()}
    assert all(case["turns"][0]["kind"] == "llm" for case in results.values()), replies
    assert "1290 ₽" in replies["wrong-price"], "the guard now drops this price: script another one it lets through"
    assert "белуги" in replies["invented-product"]
    assert results["truthful"]["passed"] is True
    assert results["wrong-price"]["turns"][0]["failures"] == [
        "not in the catalog: price 1290 ₽ is not a price of the products shown or of the FAQ"
    ]
    assert results["invented-product"]["turns"][0]["failures"] == [
        "not in the catalog: «белуги»: the catalog has no such fish or seafood"
    ]
    assert "model-eval" in {r["body"]["model"] for r in openai_server.requests}


@pytest.mark.usefixtures("demo_store")
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Икра белуги, 100 г — 9 990 ₽", "price 9990 ₽"),
        ("• Креветки камчатские — 990 ₽", "product line «Креветки камчатские»"),
        ("Советую омуль копчёный.", "«омуль»"),
        ("Есть стейк горбуши.", "«стейк горбуши»"),
    ],
)
def test_the_catalog_check_names_what_is_invented(text, problem):
    assert any(problem in p for p in CatalogFacts().problems(text, skus=[]))


@pytest.mark.usefixtures("demo_store")
@pytest.mark.parametrize(
    ("text", "skus"),
    [
        ("1. Икра нерки, 100 г — 1\u00a0890\u00a0₽, в наличии: 35 шт.", ["MR-00009"]),
        ("Две банки икры кеты — 3 380 ₽.", ["MR-00004"]),
        ("Доставка по Москве — 390 ₽, бесплатно от 5000 ₽.", []),
        ("Икры белуги у нас нет, есть осетровая.", []),
        ("Филе трески, стейк тунца и мясо мидий в наличии.", []),
    ],
)
def test_the_catalog_check_accepts_what_the_catalog_says(text, skus):
    assert CatalogFacts().problems(text, skus=skus) == []
