"""Playing scenarios through the pipeline a channel uses, on a database state of their own.

Everything happens inside one transaction that is rolled back at the end:
the demo catalog when it is loaded, the assistant settings of the run, each
scenario's setup, conversations and messages. Each scenario also runs in a
savepoint of its own, rolled back after it, so no scenario sees another's
setup or dialog. The store's database is left as it was (sequences aside:
PostgreSQL does not roll back the ids it handed out).

A scenario is a fresh command-line conversation; each customer turn is
recorded (record_incoming) and answered (integrations.answering.respond),
exactly as `manage.py chat` does. Replies are "sent" through the
command-line channel's null sender, whatever CHANNEL_SENDERS says, so an
evaluation never reaches a customer or staff.
"""

import time
import uuid
from dataclasses import dataclass, field
from datetime import time as dt_time
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.test.utils import override_settings

from bots.evaluation.facts import CatalogFacts
from bots.evaluation.scenarios import Scenario
from bots.evaluation.scoring import Observed, Shown, judge
from bots.llm import LLMError, get_provider
from bots.models import AssistantSettings
from catalog.demo import load_demo_store
from catalog.models import Category, FAQEntry, Product
from conversations.models import Channel, Conversation, Message
from conversations.services import account_for, get_or_create_conversation, record_incoming
from inbox.models import Holiday, WorkingHours
from integrations.answering import respond
from orders.models import Order

RETRIEVAL = "retrieval"
CONFIGURED = "configured"
NULL_SENDER = "conversations.channels.NullSender"


@dataclass
class TurnResult:
    say: str
    observed: Observed
    failures: list[str]
    seconds: float

    def as_json(self) -> dict:
        got = self.observed
        return {
            "say": self.say,
            "reply": got.text,
            "kind": got.kind,
            "products": [p.as_json() for p in got.products],
            "handoff": got.handoff,
            "llm_error": got.llm_error,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CaseResult:
    id: str
    category: str
    file: str
    turns: list[TurnResult] = field(default_factory=list)
    error: str = ""  # the pipeline raised

    @property
    def passed(self) -> bool:
        return not self.error and all(not t.failures for t in self.turns)

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.turns)

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "category": self.category,
            "file": self.file,
            "passed": self.passed,
            "error": self.error,
            "turns": [t.as_json() for t in self.turns],
        }


@dataclass
class Run:
    mode: str  # "retrieval" or "llm"
    provider: str
    model: str
    database: str
    demo_loaded: bool
    results: list[CaseResult]
    skipped: list[str]  # scenario ids not for this mode
    seconds: float


@dataclass(frozen=True)
class Options:
    provider: str = RETRIEVAL  # RETRIEVAL, CONFIGURED, or a provider name (bots.llm.PROVIDERS)
    model: str = ""
    demo: bool = False  # load the demo catalog even if the store has one (replacing it for the run)
    store_settings: bool = False  # start from the store's assistant settings instead of the defaults


class EvaluationError(Exception):
    """The run cannot start: a scenario names a product the catalog lacks, the LLM provider is not set up."""


class _Rollback(Exception):
    pass


def run(scenarios: list[Scenario], options: Options = Options(), *, progress=None) -> Run:
    """Play the scenarios; the database is rolled back afterwards whatever happens."""
    started = time.monotonic()
    outcome: dict = {}
    senders = {**settings.CHANNEL_SENDERS, Channel.CLI: NULL_SENDER}
    try:
        with override_settings(CHANNEL_SENDERS=senders), transaction.atomic():
            outcome["demo_loaded"] = _prepare_catalog(options.demo)
            _check_skus(scenarios)
            provider, model = _prepare_settings(options)
            mode = RETRIEVAL if not provider else "llm"
            facts = CatalogFacts()
            # Looked up here, not through the process's cache of account ids: an
            # account made in this transaction is gone after it.
            account_id = account_for(Channel.CLI).pk
            outcome.update(mode=mode, provider=provider, model=model)
            outcome["results"], outcome["skipped"] = [], []
            for scenario in scenarios:
                if mode not in scenario.modes:
                    outcome["skipped"].append(scenario.id)
                    continue
                result = _run_case(scenario, facts, account_id)
                outcome["results"].append(result)
                if progress:
                    progress(result)
            raise _Rollback
    except _Rollback:
        pass
    return Run(
        mode=outcome["mode"],
        provider=outcome["provider"],
        model=outcome["model"],
        database=settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        demo_loaded=outcome["demo_loaded"],
        results=outcome["results"],
        skipped=outcome["skipped"],
        seconds=time.monotonic() - started,
    )


def _prepare_catalog(demo: bool) -> bool:
    """The demo catalog and FAQ, loaded when the catalog is empty or asked for; True if loaded."""
    if not demo and Product.objects.exists():
        return False
    # Replacing a store's catalog happens in the transaction too: rolled back with the rest.
    Product.objects.all().delete()
    Category.objects.all().delete()
    FAQEntry.objects.all().delete()
    load_demo_store()
    return True


def _check_skus(scenarios: list[Scenario]) -> None:
    known = set(Product.objects.exclude(sku="").values_list("sku", flat=True))
    for scenario in scenarios:
        unknown = sorted(scenario.skus() - known)
        if unknown:
            raise EvaluationError(
                f"{scenario.file}: scenario {scenario.id!r}: SKU {', '.join(unknown)} is not in the catalog "
                "(the scenarios are written for the demo catalog: run with --demo?)"
            )


def _prepare_settings(options: Options) -> tuple[str, str]:
    """The assistant settings every scenario starts from; (provider, model) of the run, ("", "") without an LLM."""
    stored = AssistantSettings.load()
    config = stored if options.store_settings else _default_settings()
    if options.provider == RETRIEVAL:
        config.llm_enabled, config.provider = False, ""
    elif options.provider == CONFIGURED:
        provider = stored.effective_provider()
        if not (stored.llm_enabled and provider):
            raise EvaluationError("--provider configured: the assistant settings have no LLM switched on")
        config.llm_enabled, config.provider = True, stored.provider
        config.model = options.model or stored.model
        config.temperature = stored.temperature
    else:
        config.llm_enabled, config.provider, config.model = True, options.provider, options.model
    config.save()
    if not options.store_settings:
        # Operators on duty around the clock, as a new store's assistant assumes:
        # a scenario's replies do not depend on the hour the run happens at.
        WorkingHours.objects.all().delete()
        Holiday.objects.all().delete()
        WorkingHours.objects.bulk_create(
            WorkingHours(weekday=day, opens_at=dt_time.min, closes_at=dt_time.max) for day in range(7)
        )
    if not config.llm_enabled:
        return "", ""
    provider = config.effective_provider()
    try:
        # The assistant would quietly answer from the catalog instead: a run that
        # says "llm" must have asked the model.
        get_provider(provider)
    except LLMError as exc:
        raise EvaluationError(f"LLM provider {provider!r} is not available: {exc}") from None
    return provider, config.model_name


def _default_settings() -> AssistantSettings:
    """A row with every field at its default, as a new store starts; the store name from settings."""
    return AssistantSettings(pk=1, store_name=settings.STORE_NAME, temperature=settings.LLM_TEMPERATURE)


def _run_case(scenario: Scenario, facts: CatalogFacts, account_id: int) -> CaseResult:
    result = CaseResult(id=scenario.id, category=scenario.category, file=scenario.file)
    try:
        with transaction.atomic():
            _apply_setup(scenario)
            _play(scenario, facts, result, account_id)
            raise _Rollback
    except _Rollback:
        pass
    except Exception as exc:  # a scenario that breaks the pipeline is a failed case, not a failed run
        result.error = f"{type(exc).__name__}: {exc}"[:1000]
    return result


def _apply_setup(scenario: Scenario) -> None:
    setup = scenario.setup
    if setup.settings:
        config = AssistantSettings.load()
        for name, value in setup.settings.items():
            setattr(config, name, value)
        config.full_clean(exclude=["provider", "model"])
        config.save()
    if setup.out_of_stock:
        Product.objects.filter(sku__in=setup.out_of_stock).update(quantity=0)
    if setup.in_stock:
        Product.objects.filter(sku__in=setup.in_stock).update(is_available=True, quantity=10)


def _play(scenario: Scenario, facts: CatalogFacts, result: CaseResult, account_id: int) -> None:
    conversation = get_or_create_conversation(
        channel=Channel.CLI, account_id=account_id, external_id=f"eval-{uuid.uuid4().hex[:12]}", customer_name="eval"
    )
    said: list[str] = []
    previous = None
    for turn in scenario.turns:
        started = time.monotonic()
        message, _ = record_incoming(conversation=conversation, text=turn.say)
        reply = respond(message)
        seconds = time.monotonic() - started
        conversation.refresh_from_db(fields=["state", "dialog_context"])
        said.append(turn.say)
        observed = _observe(reply, conversation)
        failures = judge(turn.expect, observed, previous)
        if observed.text:
            skus = [p.sku for p in observed.products]
            failures += [
                f"not in the catalog: {problem}"
                for problem in facts.problems(
                    observed.text, skus=skus, customer_text="\n".join(said), order_amounts=_order_amounts(conversation)
                )
            ]
        result.turns.append(TurnResult(turn.say, observed, failures, seconds))
        if observed.text is not None:
            previous = observed


def _observe(reply: Message | None, conversation: Conversation) -> Observed:
    handed_off = conversation.state == Conversation.State.OPERATOR
    if reply is None:
        return Observed(text=None, handoff=handed_off)
    products = list(reply.products.prefetch_related("categories"))
    return Observed(
        text=reply.text,
        kind=reply.reply_kind,
        products=_in_reply_order(reply.text, products),
        handoff=handed_off or reply.reply_kind == Message.ReplyKind.HANDOFF,
        llm_error=reply.llm_error,
    )


def _in_reply_order(text: str, products: list[Product]) -> list[Shown]:
    """The products as the customer reads them: by where the reply names them (a list's "second" is the second)."""
    lowered = text.lower()

    def position(product: Product) -> tuple[int, int]:
        at = lowered.find(product.title.lower())
        return (at if at >= 0 else len(lowered), product.pk)

    return [
        Shown(
            sku=p.sku or f"id:{p.pk}",
            title=p.title,
            price=p.price,
            in_stock=p.in_stock,
            categories=[c.title for c in p.categories.all()],
        )
        for p in sorted(products, key=position)
    ]


def _order_amounts(conversation: Conversation) -> frozenset[Decimal]:
    """Sums an ordering reply may quote, worked out here from the catalog's prices and the stored
    orders: each basket line's price × quantity, the basket's goods with and without delivery,
    and each order's goods, delivery and total."""
    amounts: set[Decimal] = set()
    for order in Order.objects.filter(conversation=conversation):
        amounts |= {order.items_total, order.delivery_cost, order.total}
    lines = ((conversation.dialog_context or {}).get("basket") or {}).get("lines") or []
    products = Product.objects.in_bulk([line["product"] for line in lines])
    goods = Decimal("0")
    for line in lines:
        product = products.get(line["product"])
        if product is None or product.price is None:
            continue
        amounts.add(product.price * line["quantity"])
        goods += product.price * line["quantity"]
    if goods:
        amounts |= {goods, goods + Decimal(settings.ORDER_DELIVERY_COST)}
    return frozenset(amounts)
