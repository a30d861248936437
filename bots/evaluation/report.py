"""The scored table, the diffs of failed cases, the JSON of a run and its comparison with an earlier one."""

import json
from datetime import UTC, datetime
from pathlib import Path

from bots.evaluation.runner import CaseResult, Run
from bots.evaluation.scoring import Score, scores

EXCERPT_CHARS = 240
FORMAT_VERSION = 1


def table(run: Run) -> list[str]:
    overall, by_category = scores(run.results)
    width = max([len("category"), len("overall"), *(len(c) for c in by_category)])
    lines = [f"{'category':<{width}}  {'cases':>5}  {'passed':>6}  {'score':>5}"]
    for category, score in sorted(by_category.items()):
        lines.append(_row(category, score, width))
    lines.append("-" * len(lines[0]))
    lines.append(_row("overall", overall, width))
    return lines


def _row(name: str, score: Score, width: int) -> str:
    return f"{name:<{width}}  {score.cases:>5}  {score.passed:>6}  {score.score:>5.2f}"


def failures(run: Run, *, excerpt: int = EXCERPT_CHARS) -> list[str]:
    """Per failed case: each failing turn, what was expected against what came, and the reply's start."""
    lines = []
    for case in run.results:
        if case.passed:
            continue
        lines.append(f"FAIL {case.category}/{case.id}  ({Path(case.file).name})")
        if case.error:
            lines.append(f"  error: {case.error}")
        for n, turn in enumerate(case.turns, 1):
            if not turn.failures:
                continue
            got = turn.observed
            lines.append(f"  turn {n}: «{turn.say}» → {got.kind or 'no reply'}")
            lines += [f"    - {failure}" for failure in turn.failures]
            if got.text is not None:
                lines.append(f"    reply: «{_excerpt(got.text, excerpt)}»")
            if got.products:
                lines.append("    products: " + ", ".join(f"{p.sku} {p.title}" for p in got.products))
            if got.llm_error:
                lines.append(f"    llm error (answered from the catalog): {got.llm_error}")
    return lines


def fallbacks(run: Run) -> int:
    """Replies made from the catalog because the LLM failed: an LLM run with many is not measuring the model."""
    return sum(1 for case in run.results for turn in case.turns if turn.observed.llm_error)


def _excerpt(text: str, limit: int) -> str:
    flat = " ⏎ ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def as_json(run: Run) -> dict:
    overall, by_category = scores(run.results)
    return {
        "format": FORMAT_VERSION,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": run.mode,
        "provider": run.provider,
        "model": run.model,
        "database": run.database,
        "demo_loaded": run.demo_loaded,
        "seconds": round(run.seconds, 2),
        "score": round(overall.score, 4),
        "cases": overall.cases,
        "passed": overall.passed,
        "llm_fallbacks": fallbacks(run),
        "categories": {c: s.as_json() for c, s in sorted(by_category.items())},
        "skipped": run.skipped,
        "results": [case.as_json() for case in run.results],
    }


def write_json(run: Run, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_json(run), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "results" not in data:
        raise ValueError(f"{path}: not the JSON of `manage.py eval --json`")
    return data


def compare(run: Run, old: dict) -> list[str]:
    """What changed since an earlier run's JSON: scores, and the cases that now pass, now fail, or are new."""
    overall, by_category = scores(run.results)
    lines = [
        f"Compared with {old.get('finished_at', 'the earlier run')} ({old.get('mode', '?')}"
        f"{', ' + old['model'] if old.get('model') else ''}): overall {old.get('score', 0):.2f} → {overall.score:.2f}"
    ]
    old_categories = old.get("categories", {})
    for category in sorted({*by_category, *old_categories}):
        before = old_categories.get(category, {}).get("score")
        after = by_category[category].score if category in by_category else None
        if before != (round(after, 4) if after is not None else None):
            lines.append(f"  {category}: {_maybe(before)} → {_maybe(after)}")
    before = {case["id"]: case for case in old.get("results", [])}
    now: dict[str, CaseResult] = {case.id: case for case in run.results}
    fixed = [i for i, case in now.items() if i in before and case.passed and not before[i]["passed"]]
    broken = [i for i, case in now.items() if i in before and not case.passed and before[i]["passed"]]
    new = [i for i in now if i not in before]
    gone = [i for i in before if i not in now]
    for label, ids in (("now pass", fixed), ("now fail", broken), ("new", new), ("no longer run", gone)):
        if ids:
            lines.append(f"  {label} ({len(ids)}): {', '.join(ids)}")
    if not (fixed or broken or new or gone):
        lines.append("  the same cases pass and fail")
    return lines


def _maybe(score) -> str:
    return "—" if score is None else f"{score:.2f}"
