"""Latency of the assistant's answer pipeline and size of its LLM prompts on a large catalog.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/storebot_bench .venv/bin/python bench/assistant.py

Uses the catalog of bench/search.py (100,000 synthetic products, filled
through its code when the database does not hold them) and the demo FAQ.

Part 1, no LLM: 560 customer questions of eleven kinds, spread over 40
conversations (requests for an operator each on a conversation of its own;
a follow-up such as «а подешевле?» right after a product question it
refers to, which is asked first and not counted),
go through `integrations.answering.respond` as a channel worker calls it: search, FAQ,
the composed reply, its recording with its products and the send through
LocmemSender. 20 questions warm up first. Each call is timed with
time.perf_counter; the share spent in `assistant.reply` (wrapped in this
process) and in SQL (connection.execute_wrapper) is measured alongside.
`--rounds N` asks every question N times and counts each one's median call,
for steadier A/B comparisons on a busy machine.

Part 2, the LLM's prompt: 30 conversations get 10 earlier turns through the
same pipeline, then, with the in-memory provider, one more question that the
"model" answers with a search_catalog call and a final text. The estimated
size (bots.prompt.estimate_messages) of every request to the provider is
reported, with the parts of the first request of each question.

Conversations, messages and the assistant settings it changes are put back
at the end (and leftovers of an interrupted run removed at the start);
products are never touched once the catalog is filled. PostgreSQL only.
Exits 1 when a target is missed.
"""

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import search as bench_search  # noqa: E402
from bench.database import SqlMeter, ensure_database  # noqa: E402

PREFIX = "bench-assistant-"
CHANNEL = "telegram"
TARGET_P95_MS = 50.0
TARGET_MEDIAN_TOKENS = 2000
FAQ_FILE = ROOT / "catalog" / "demo_store" / "faq.json"

# Question kinds of part 1 and how many of each.
KIND_COUNTS = {
    "product": 150,
    "pack size": 50,
    "price max": 40,
    "price range": 30,
    "typo": 50,
    "faq": 60,
    "greeting": 40,
    "vague": 30,
    "out of stock": 40,
    "handoff": 10,
    "follow-up": 60,
}

FAQ_QUESTIONS = [
    "сколько стоит доставка?",
    "как оплатить?",
    "как хранить рыбу",
    "доставка по Москве есть?",
    "можно оплатить картой?",
    "вы доставляете в область?",
    "курьер привезёт сегодня?",
    "как разморозить креветки?",
    "какой срок годности у икры?",
    "когда вы работаете?",
    "часы работы",
    "у вас есть самовывоз?",
    "где можно забрать заказ?",
    "какой минимальный заказ?",
    "можно вернуть товар?",
    "как оформить возврат?",
    "работаете с ресторанами оптом?",
    "откуда ваша рыба?",
    "рыба свежая?",
    "есть сертификат качества?",
    "оплата через СБП возможна?",
    "можно наличными курьеру?",
    "Здравствуйте! Сколько стоит доставка за МКАД?",
    "работаете в выходные?",
]
GREETINGS = [
    "привет",
    "Здравствуйте!",
    "добрый день",
    "Добрый вечер!",
    "доброе утро",
    "спасибо!",
    "Спасибо большое",
    "благодарю",
    "ок, спасибо",
    "до свидания",
    "спасибо, всего доброго",
    "hello",
]
VAGUE = [
    "что посоветуете?",
    "что у вас есть?",
    "помогите выбрать",
    "какой у вас ассортимент?",
    "что можете предложить?",
    "хочу что-нибудь вкусное",
    "не знаю, что выбрать",
    "что посоветуете к празднику?",
    "а что вкусного есть?",
]
HANDOFFS = [
    "позовите оператора",
    "можно живого человека?",
    "соедините с менеджером",
    "хочу поговорить с оператором",
    "Оператор!",
]
# Asked right after a product question in the same conversation: they refer to its list.
FOLLOW_UPS = [
    "а подешевле?",
    "есть что-то дешевле?",
    "а подороже?",
    "а поменьше есть?",
    "а побольше?",
    "а покрупнее упаковка?",
    "сколько стоит килограмм?",
    "а есть в наличии?",
    "а в наличии?",
    "второй вариант",
    "давайте третий",
    "а первый сколько стоит?",
    "а копчёный?",
    "а охлаждённый?",
    "а крабы?",
]


@dataclass(frozen=True)
class Question:
    text: str
    kind: str
    # Asked first, in the same conversation, and not counted: what a follow-up refers to.
    lead: str = ""


def _nice(amount: float) -> int:
    step = 100 if amount < 2000 else 500
    return max(step, round(amount / step) * step)


def build_questions(rng: random.Random, counts: dict[str, int], out_of_stock_titles: list[str]) -> list[Question]:
    """Customer questions of the bench vocabulary, the same for the same seed and catalog."""
    questions: list[Question] = []

    def add(kind: str, text: str, lead: str = "") -> None:
        questions.append(Question(" ".join(text.split()), kind, lead))

    def nominative(species) -> str:
        return species.title.lower()

    def main_word(species) -> str:
        return species.title.split()[0].lower()

    def typical_price(species) -> int:
        pack = rng.choice(bench_search.PACKS[species.kind])
        return _nice(species.price_per_kg * bench_search._weight_kg(pack))

    for _ in range(counts.get("product", 0)):
        species = rng.choice(bench_search.SPECIES)
        nom = nominative(species)
        form = rng.choice(species.forms or (nom,))
        processing = bench_search.agree(rng.choice(bench_search.PROCESSING[species.kind]), species.gender)
        cuts = [c for c in bench_search.CUTS[species.kind] if c]
        shape = rng.choice(
            [
                "есть ли {nom}?",
                "{form}",
                "{nom}",
                "сколько стоит {nom}?",
                "хочу купить {form}",
                "{processing} {main}",
                "Добрый день! Есть {nom}?",
                "{cut} {genitive}",
                "а {nom} {processing} в наличии?",
            ]
        )
        if shape == "{cut} {genitive}" and not cuts:
            shape = "{nom}"
        text = shape.format(
            nom=nom,
            form=form,
            processing=processing,
            main=main_word(species),
            cut=rng.choice(cuts) if cuts else "",
            genitive=species.genitive,
        )
        add("product", text)

    for _ in range(counts.get("pack size", 0)):
        species = rng.choice(bench_search.SPECIES)
        pack = rng.choice(bench_search.PACKS[species.kind])
        shape = rng.choice(["{nom} {pack}", "{nom} {pack} есть?", "{main} по {pack}", "нужна {nom} {packless}"])
        packless = pack.replace(" ", "")
        add("pack size", shape.format(nom=nominative(species), main=main_word(species), pack=pack, packless=packless))

    for _ in range(counts.get("price max", 0)):
        species = rng.choice(bench_search.SPECIES)
        limit = typical_price(species)
        shape = rng.choice(
            ["{nom} до {n} рублей", "{nom} дешевле {n} ₽", "{form} не дороже {n} руб", "есть {nom} до {n} р?"]
        )
        form = rng.choice(species.forms or (nominative(species),))
        add("price max", shape.format(nom=nominative(species), form=form, n=limit))

    for _ in range(counts.get("price range", 0)):
        species = rng.choice(bench_search.SPECIES)
        middle = typical_price(species)
        low, high = _nice(middle * 0.6), _nice(middle * 1.3)
        high = max(high, low + 100)
        shape = rng.choice(
            ["{nom} от {low} до {high} руб", "{nom} от {low} до {high} рублей", "{nom} от {low} до {high}"]
        )
        add("price range", shape.format(nom=nominative(species), low=low, high=high))

    typo_words = sorted(
        {main_word(s) for s in bench_search.SPECIES}
        | {s.title.split()[1] for s in bench_search.SPECIES if s.kind == "caviar"}
    )
    typo_words = [w for w in typo_words if len(w) >= 5 and "ё" not in w]
    caviar = {s.title.split()[1] for s in bench_search.SPECIES if s.kind == "caviar"}
    for _ in range(counts.get("typo", 0)):
        word = rng.choice(typo_words)
        typo = bench_search._typo(word, rng)
        if word in caviar:
            add("typo", rng.choice(["икра {typo}", "икру {typo}", "есть икра {typo}?"]).format(typo=typo))
        else:
            add("typo", rng.choice(["{typo}", "есть ли {typo}?", "{typo} 1 кг"]).format(typo=typo))

    for i in range(counts.get("faq", 0)):
        add("faq", FAQ_QUESTIONS[i % len(FAQ_QUESTIONS)] if i < len(FAQ_QUESTIONS) else rng.choice(FAQ_QUESTIONS))
    for i in range(counts.get("greeting", 0)):
        add("greeting", GREETINGS[i % len(GREETINGS)])
    for i in range(counts.get("vague", 0)):
        add("vague", VAGUE[i % len(VAGUE)])

    for _ in range(counts.get("out of stock", 0)):
        title = rng.choice(out_of_stock_titles)
        shape = rng.choice(["{title}", "есть {title}?", "{lower}"])
        add("out of stock", shape.format(title=title, lower=title.lower()))

    for i in range(counts.get("handoff", 0)):
        add("handoff", HANDOFFS[i % len(HANDOFFS)])

    for i in range(counts.get("follow-up", 0)):
        species = rng.choice(bench_search.SPECIES)
        pack = rng.choice(bench_search.PACKS[species.kind])
        lead = rng.choice(["{nom}", "есть {nom}?", "{nom} {pack}"]).format(nom=nominative(species), pack=pack)
        add("follow-up", FOLLOW_UPS[i % len(FOLLOW_UPS)], lead=lead)
    rng.shuffle(questions)
    return questions


# --- measuring ----------------------------------------------------------------------


class LogCollector(logging.Handler):
    """What bots.assistant logs during the run (guardrail cuts, LLM failures), kept out of the timings' output."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname} {record.getMessage()}")


ASSISTANT_LOG = LogCollector()


@dataclass
class Answered:
    question: Question
    ms: float  # respond() as a whole
    reply_ms: float  # of which assistant.reply: search, FAQ, composing
    sql_count: int
    sql_ms: float
    slowest_sql: tuple[float, str]
    reply_kind: str
    text: str = ""
    logged: list[str] = field(default_factory=list)  # what bots.assistant logged meanwhile


@dataclass
class Stats:
    values: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        return bench_search.percentile(self.values, q) if self.values else 0.0


def outcome(answer: Answered) -> str:
    """A finer reply kind, read from the reply text."""
    text = answer.text
    if answer.reply_kind == "catalog" and text.startswith("К сожалению"):
        return "catalog: out of stock"
    if answer.reply_kind == "catalog" and text.startswith("В этом бюджете"):
        return "catalog: over budget"
    if answer.reply_kind == "clarify" and text.startswith("Не нашёл"):
        return "clarify: nothing found"
    if answer.reply_kind == "clarify" and text.startswith("Кажется, я не понял"):
        return "clarify: products offered"
    return answer.reply_kind or "(no reply)"


def ask(conversation, text: str, external_id: str, meter: SqlMeter, reply_timer: dict) -> Answered:
    from django.db import connection

    from conversations.services import record_incoming
    from integrations.answering import respond

    message, _created = record_incoming(conversation=conversation, text=text, external_id=external_id)
    logged = len(ASSISTANT_LOG.messages)
    meter.reset()
    reply_timer["ms"] = 0.0
    with connection.execute_wrapper(meter):
        start = time.perf_counter()
        outgoing = respond(message)
        ms = (time.perf_counter() - start) * 1000
    return Answered(
        question=Question(text, ""),
        ms=ms,
        reply_ms=reply_timer["ms"],
        sql_count=meter.count,
        sql_ms=meter.ms,
        slowest_sql=meter.slowest,
        reply_kind=outgoing.reply_kind if outgoing else "",
        text=outgoing.text if outgoing else "",
        logged=ASSISTANT_LOG.messages[logged:],
    )


def print_latency(answers: list[Answered]) -> dict[str, float]:
    overall = Stats([a.ms for a in answers])
    figures = {"p50": overall.p(50), "p95": overall.p(95), "p99": overall.p(99), "max": max(overall.values)}
    print(
        f"respond(): p50 {figures['p50']:.1f} ms  p95 {figures['p95']:.1f} ms  p99 {figures['p99']:.1f} ms  "
        f"max {figures['max']:.1f} ms  mean {statistics.mean(overall.values):.1f} ms"
    )
    reply = Stats([a.reply_ms for a in answers])
    rest = Stats([a.ms - a.reply_ms for a in answers])
    sql = Stats([a.sql_ms for a in answers])
    print(
        f"  of which assistant.reply (search, FAQ, composing): p50 {reply.p(50):.1f}  p95 {reply.p(95):.1f} ms; "
        f"recording + send: p50 {rest.p(50):.1f}  p95 {rest.p(95):.1f} ms"
    )
    print(
        f"  SQL: {statistics.mean(a.sql_count for a in answers):.1f} statements per reply on average, "
        f"time in SQL p50 {sql.p(50):.1f}  p95 {sql.p(95):.1f} ms"
    )
    by_kind: dict[str, list[Answered]] = defaultdict(list)
    for a in answers:
        by_kind[a.question.kind].append(a)
    print(
        f"\n  {'question kind':<14}{'n':>4}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'reply p50':>11}"
        f"{'SQL n':>7}{'SQL p50':>9}  reply kinds"
    )
    for kind in KIND_COUNTS:
        group = by_kind.get(kind)
        if not group:
            continue
        s = Stats([a.ms for a in group])
        kinds = Counter(outcome(a) for a in group)
        print(
            f"  {kind:<14}{len(group):>4}{s.p(50):>8.1f}{s.p(95):>8.1f}{s.p(99):>8.1f}{max(s.values):>8.1f}"
            f"{Stats([a.reply_ms for a in group]).p(50):>11.1f}"
            f"{statistics.mean(a.sql_count for a in group):>7.1f}{Stats([a.sql_ms for a in group]).p(50):>9.1f}  "
            + ", ".join(f"{k} {n}" for k, n in kinds.most_common())
        )
    print("  (ms; 'reply p50' is assistant.reply alone; 'SQL n' statements per respond() on average)")

    print(
        "\nreply kinds, all questions: "
        + ", ".join(f"{k} {n}" for k, n in Counter(outcome(a) for a in answers).most_common())
    )
    cut = [a for a in answers if any("guardrails removed" in m for m in a.logged)]
    if cut:
        texts = Counter(a.question.text for a in cut)
        print(
            f"\nguardrails cut a banned phrase out of {len(cut)} replies, to: "
            + ", ".join(f"{t!r} x{n}" for t, n in texts.most_common())
            + f"; e.g. {cut[0].logged[0]!r}"
        )
    print("\nslowest 10:")
    for a in sorted(answers, key=lambda a: -a.ms)[:10]:
        sql_ms, sql = a.slowest_sql
        print(
            f"  {a.ms:7.1f} ms  {a.question.kind:<13} {a.question.text[:46]!r:50} -> {outcome(a)}; "
            f"{a.sql_count} SQL, {a.sql_ms:.1f} ms in SQL, slowest {sql_ms:.1f} ms: {sql[:110]}"
        )
    return figures


# --- setup and cleanup ---------------------------------------------------------------


def cleanup() -> int:
    from conversations.models import Conversation

    deleted, _by_model = Conversation.objects.filter(channel=CHANNEL, external_id__startswith=PREFIX).delete()
    return deleted


def out_of_stock_titles() -> list[str]:
    """Titles no product in stock has: asked for by name, the reply should say "not in stock"."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT title FROM catalog_product GROUP BY title HAVING NOT bool_or(in_stock) ORDER BY title")
        return [row[0] for row in cursor.fetchall()]


class SnapshotRequests(list):
    """bots.llm.locmem.requests, keeping the messages as they were at each call.

    The provider records the `messages` list itself, and llm_reply appends
    the tool round to that same list after the call: read afterwards, every
    request of a question would show the last one's messages.
    """

    def append(self, request: dict) -> None:
        super().append({**request, "messages": list(request["messages"]), "tools": list(request["tools"] or [])})


# --- part 2 ---------------------------------------------------------------------------------


def prompt_size(args, rng: random.Random, config, meter: SqlMeter, reply_timer: dict) -> dict:
    from bots.llm import ChatResult, ToolCall, locmem
    from bots.prompt import estimate_messages, estimate_tokens
    from catalog.search import search_products
    from conversations.services import get_or_create_conversation

    n_conversations, turns = args.llm_conversations, args.history_turns
    print(f"\n== Part 2: prompt size, {n_conversations} conversations with {turns} earlier turns each")
    # Earlier turns answered by the retrieval pipeline (provider ""): a greeting,
    # catalog questions of every kind, FAQ questions, thanks.
    history_counts = {"product": 3, "pack size": 1, "price max": 1, "price range": 1, "typo": 1, "faq": 2}
    conversations = []
    start = time.perf_counter()
    for c in range(n_conversations):
        conversation = get_or_create_conversation(channel=CHANNEL, external_id=f"{PREFIX}llm-{c:02d}")
        conversations.append(conversation)
        body = build_questions(random.Random(rng.random()), history_counts, [])
        texts = ["Здравствуйте!", *[q.text for q in body][: max(0, turns - 2)], "спасибо!"][-turns:]
        for t, text in enumerate(texts):
            ask(conversation, text, f"{PREFIX}llm-{c:02d}-{t:02d}", meter, reply_timer)
    print(
        f"history: {n_conversations * turns} questions answered by the retrieval pipeline in "
        f"{time.perf_counter() - start:.1f} s"
    )

    config.provider = "locmem"
    config.llm_enabled = True
    config.save()
    locmem.script.clear()
    plain_requests, locmem.requests = locmem.requests, SnapshotRequests()
    per_question: list[list[dict]] = []
    answers: list[Answered] = []
    for c, conversation in enumerate(conversations):
        species = rng.choice(bench_search.SPECIES)
        pack = rng.choice(bench_search.PACKS[species.kind])
        text = rng.choice(["а {nom} {pack} есть?", "подскажите {nom} {pack}", "ещё нужна {nom}, {pack}"]).format(
            nom=species.title.lower(), pack=pack
        )
        arguments = {"query": f"{species.title.lower()} {pack}", "in_stock_only": True}
        ids = [p.id for p in search_products(arguments["query"], limit=8, in_stock_only=True)][:3]
        final = (
            "Нашёл в наличии: " + ", ".join(f"[[product:{i}]]" for i in ids) + ". Какой вариант вам ближе?"
            if ids
            else "Такого сейчас нет в наличии. Подобрать что-то похожее?"
        )
        call = ToolCall(
            id=f"call_{c}",
            name="search_catalog",
            arguments=arguments,
            raw_arguments=json.dumps(arguments, ensure_ascii=False),
        )
        locmem.script[:] = [
            ChatResult(text="", tool_calls=[call], model="locmem-bench"),
            ChatResult(text=final, model="locmem-bench"),
        ]
        before = len(locmem.requests)
        answer = ask(conversation, text, f"{PREFIX}llm-{c:02d}-new", meter, reply_timer)
        answer.question = Question(text, "llm")
        answers.append(answer)
        per_question.append(locmem.requests[before:])
        if locmem.script:
            print(f"  conversation {c}: {len(locmem.script)} scripted answers left unused")

    locmem.requests = plain_requests
    requests = [r for group in per_question for r in group]
    sizes = [estimate_messages(r["messages"], r["tools"]) for r in requests]
    # A question the dialog answers without the model (a pending choice of the basket it picks) sent none.
    firsts = [group[0] for group in per_question if group]
    seconds = [group[1] for group in per_question if len(group) > 1]
    size_first = [estimate_messages(r["messages"], r["tools"]) for r in firsts]
    size_second = [estimate_messages(r["messages"], r["tools"]) for r in seconds]
    kinds = Counter(a.reply_kind for a in answers)
    print(
        f"{len(answers)} new questions, {len(requests)} LLM requests "
        f"({statistics.mean(len(g) for g in per_question):.1f} per question, "
        f"{sum(1 for g in per_question if not g)} answered without the model); "
        "reply kinds: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common())
    )
    for a in answers:
        if a.reply_kind != "llm":
            print(f"  not answered by the LLM: {a.question.text!r} -> {a.reply_kind}; {a.logged}")
    print(
        f"respond() with the LLM stubbed (prompt, tools, fact check, recording): "
        f"p50 {Stats([a.ms for a in answers]).p(50):.1f} ms  p95 {Stats([a.ms for a in answers]).p(95):.1f} ms"
    )
    every = Stats([float(s) for s in sizes])
    print(
        f"\nestimated prompt tokens per request: median {statistics.median(sizes):.0f}  "
        f"p95 {every.p(95):.0f}  max {max(sizes)}  min {min(sizes)}"
    )
    print(
        f"  first request of a question: median {statistics.median(size_first):.0f}  max {max(size_first)}; "
        f"second (after the search_catalog round): median {statistics.median(size_second):.0f}  "
        f"max {max(size_second)}"
    )

    parts: dict[str, list[int]] = defaultdict(list)
    history_label = f"history ({statistics.median(len(r['messages']) - 2 for r in firsts):.0f} messages)"
    for r in firsts:
        messages, tools = r["messages"], r["tools"]
        parts["system prompt"].append(estimate_messages(messages[:1]))
        parts[history_label].append(estimate_messages(messages[1:-1]))
        parts["tools (4 schemas)"].append(estimate_tokens(json.dumps(list(tools), ensure_ascii=False)))
        parts["new message"].append(estimate_messages(messages[-1:]))
        parts["total"].append(estimate_messages(messages, tools))
    median_total = statistics.median(parts["total"])
    print("\nfirst request of a question, by part (estimated tokens):")
    print(f"  {'part':<26}{'median':>8}{'max':>7}{'share':>8}{'chars':>8}")
    chars = {
        "system prompt": statistics.median(len(r["messages"][0]["content"]) for r in firsts),
        "new message": statistics.median(len(r["messages"][-1]["content"]) for r in firsts),
        "total": statistics.median(
            sum(len(m.get("content") or "") for m in r["messages"]) + len(json.dumps(r["tools"], ensure_ascii=False))
            for r in firsts
        ),
    }
    for name, values in parts.items():
        med = statistics.median(values)
        key = name.split(" (")[0]
        if key == "history":
            chars[key] = statistics.median(sum(len(m["content"]) for m in r["messages"][1:-1]) for r in firsts)
        if key.startswith("tools"):
            chars[key] = len(json.dumps(firsts[0]["tools"], ensure_ascii=False))
        print(f"  {name:<26}{med:>8.0f}{max(values):>7}{med / median_total:>8.0%}{chars.get(key, 0):>8.0f}")
    history_replies = [m["content"] for r in firsts for m in r["messages"][1:-1] if m["role"] == "assistant"]
    clipped = sum(1 for t in history_replies if t.endswith(" …"))
    print(
        f"  earlier bot replies: median {statistics.median(len(t) for t in history_replies):.0f} chars, "
        f"{clipped} of {len(history_replies)} clipped to HISTORY_TURN_CHARS"
    )
    extra = [b - a for a, b in zip(size_first, size_second, strict=False)]
    print(f"  the search_catalog round adds: median {statistics.median(extra):.0f}, max {max(extra)} tokens")
    all_text = "".join(
        (m.get("content") or "") + (json.dumps(m["tool_calls"], ensure_ascii=False) if m.get("tool_calls") else "")
        for r in requests
        for m in r["messages"]
    ) + "".join(json.dumps(r["tools"], ensure_ascii=False) for r in requests)
    non_ascii = sum(1 for ch in all_text if ord(ch) >= 128) / len(all_text)
    print(
        "\nestimator (bots.prompt.estimate_messages): per message, ASCII characters / 4 + other characters / 2, "
        "rounded up, + 4 tokens, + its tool calls as JSON; + the tool schemas as JSON (ensure_ascii=False). "
        "It errs high on purpose: about 2 characters a token for Cyrillic, where the tokenizers of current "
        "models fit more; no real tokenizer runs here, so real counts are expected lower, not measured. "
        f"Here {non_ascii:.0%} of the characters are non-ASCII and the estimate averages "
        f"{len(all_text) / sum(sizes):.2f} characters a token."
    )
    return {
        "median": statistics.median(sizes),
        "p95": every.p(95),
        "max": max(sizes),
        "llm replies": kinds.get("llm", 0),
        "questions": len(answers),
    }


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000, help="bench catalog size (default 100000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--conversations", type=int, default=40, help="conversations of part 1")
    parser.add_argument(
        "--rounds", type=int, default=1, help="ask part 1's questions this many times; each one's median counts"
    )
    parser.add_argument("--llm-conversations", type=int, default=30)
    parser.add_argument("--history-turns", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the conversations made, for a look in admin")
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", bench_search.DEFAULT_DATABASE_URL)
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        print(f"bench/assistant.py measures on PostgreSQL; DATABASE_URL is {url!r}.", file=sys.stderr)
        print(f"Set DATABASE_URL to a PostgreSQL database, e.g. {bench_search.DEFAULT_DATABASE_URL}", file=sys.stderr)
        return 2
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    import bots.assistant
    from bots.models import AssistantSettings
    from catalog.models import FAQEntry, Product
    from catalog.services import load_faq
    from conversations import channels
    from conversations.models import Channel
    from conversations.services import get_or_create_conversation

    if connection.vendor != "postgresql":
        print(f"bench/assistant.py needs PostgreSQL, the settings give {connection.vendor}.", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"database {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}")
    call_command("migrate", verbosity=0)
    removed = cleanup()
    if removed:
        print(f"removed {removed} rows left by an earlier run")

    have = bench_search.bench_products().count()
    if have == args.products:
        print(f"catalog already holds {have} bench products")
    else:
        print(f"catalog holds {have} bench products; filling {args.products} through bench/search.py's fill")
        bench_search.fill(args.products, args.seed, 5000)
    created, updated = load_faq(json.loads(FAQ_FILE.read_text(encoding="utf-8")))
    print(f"demo FAQ: {created} created, {updated} updated, {FAQEntry.objects.filter(is_active=True).count()} active")
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"ANALYZE in {time.perf_counter() - start:.1f} s; {Product.objects.count()} products, "
        f"{Product.objects.filter(in_stock=False).count()} out of stock"
    )

    # Every channel sends into conversations.channels.outbox.
    settings.CHANNEL_SENDERS = {"*": "conversations.channels.LocmemSender"} | {
        c: "conversations.channels.LocmemSender" for c in Channel.values
    }
    channels.outbox.clear()
    channels.handoffs.clear()
    existed = AssistantSettings.objects.filter(pk=1).first()
    config = AssistantSettings.load()
    config.provider = ""
    config.save()

    # The share of respond() spent in assistant.reply, measured around it.
    reply_timer = {"ms": 0.0}
    original_reply = bots.assistant.reply

    def timed_reply(conversation, message):
        start = time.perf_counter()
        try:
            return original_reply(conversation, message)
        finally:
            reply_timer["ms"] = (time.perf_counter() - start) * 1000

    bots.assistant.reply = timed_reply
    assistant_logger = logging.getLogger("bots.assistant")
    assistant_logger.addHandler(ASSISTANT_LOG)
    assistant_logger.propagate = False
    meter = SqlMeter()
    try:
        rng = random.Random(args.seed)
        titles = out_of_stock_titles()
        questions = build_questions(rng, KIND_COUNTS, titles)
        warmup = build_questions(random.Random(args.seed + 1), {k: 2 for k in KIND_COUNTS if k != "handoff"}, titles)[
            :20
        ]
        print(
            f"{len(questions)} questions: "
            + ", ".join(f"{k} {n}" for k, n in Counter(q.kind for q in questions).items())
        )
        print(f"{len(titles)} product titles with nothing in stock; asked for by name")

        print(f"\n== Part 1: retrieval pipeline (no LLM), load average {bench_search._load()}")
        conversation = get_or_create_conversation(channel=CHANNEL, external_id=f"{PREFIX}warmup")
        for i, q in enumerate(warmup):
            if q.lead:
                ask(conversation, q.lead, f"{PREFIX}warmup-{i}-lead", meter, reply_timer)
            ask(conversation, q.text, f"{PREFIX}warmup-{i}", meter, reply_timer)
        conversations = [
            get_or_create_conversation(channel=CHANNEL, external_id=f"{PREFIX}c{c:02d}")
            for c in range(args.conversations)
        ]
        rounds: list[list[Answered]] = [[] for _ in questions]
        handoffs = 0
        start = time.perf_counter()
        for r in range(args.rounds):
            for i, q in enumerate(questions):
                if q.kind == "handoff":
                    # A hand-off gives the dialog to an operator: a conversation of its own.
                    target = get_or_create_conversation(channel=CHANNEL, external_id=f"{PREFIX}handoff-{handoffs}")
                    handoffs += 1
                else:
                    target = conversations[i % len(conversations)]
                if q.lead:
                    ask(target, q.lead, f"{PREFIX}r{r}-q{i:04d}-lead", meter, reply_timer)
                answer = ask(target, q.text, f"{PREFIX}r{r}-q{i:04d}", meter, reply_timer)
                answer.question = q
                rounds[i].append(answer)
        # With several rounds, each question's median call counts.
        answers = [sorted(group, key=lambda a: a.ms)[(len(group) - 1) // 2] for group in rounds]
        print(
            f"{len(questions)} questions x {args.rounds} round(s) in {time.perf_counter() - start:.1f} s over "
            f"{len(conversations)} conversations (+{handoffs} hand-off conversations); "
            f"{len(channels.outbox)} messages in the locmem outbox, {len(channels.handoffs)} hand-offs"
            + ("; each question's median call counts" if args.rounds > 1 else "")
        )
        latency = print_latency(answers)
        print(f"load average after part 1: {bench_search._load()}")

        prompt = prompt_size(args, rng, config, meter, reply_timer)
        print(f"load average after part 2: {bench_search._load()}")
    finally:
        bots.assistant.reply = original_reply
        assistant_logger.removeHandler(ASSISTANT_LOG)
        assistant_logger.propagate = True
        if existed is not None:
            existed.save()
        else:
            AssistantSettings.objects.filter(pk=1).delete()
        if not args.keep:
            removed = cleanup()
            print(f"\ncleaned up: {removed} rows of conversations and messages deleted; assistant settings restored")
        channels.outbox.clear()
        channels.handoffs.clear()

    rows = [
        (
            f"respond() p95, no LLM, {len(answers)} questions",
            f"< {TARGET_P95_MS:.0f} ms",
            f"{latency['p95']:.1f} ms",
            latency["p95"] < TARGET_P95_MS,
        ),
        (
            "prompt tokens per LLM request, median",
            f"< {TARGET_MEDIAN_TOKENS:,}",
            f"{prompt['median']:,.0f}",
            prompt["median"] < TARGET_MEDIAN_TOKENS,
        ),
    ]
    info = [
        ("respond() p50 / p99 / max", f"{latency['p50']:.1f} / {latency['p99']:.1f} / {latency['max']:.1f} ms"),
        ("prompt tokens p95 / max", f"{prompt['p95']:,.0f} / {prompt['max']:,}"),
        ("LLM questions answered as 'llm'", f"{prompt['llm replies']} of {prompt['questions']}"),
    ]
    print(f"\n== targets ({time.perf_counter() - started:.0f} s in all, load average {bench_search._load()})")
    print(f"  {'measure':<40}{'target':>10}{'result':>12}  verdict")
    for name, target, result, met in rows:
        print(f"  {name:<40}{target:>10}{result:>12}  {'met' if met else 'MISSED'}")
    for name, result in info:
        print(f"  {name:<40}{'':>10}{result:>12}")
    return 0 if all(met for *_, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
