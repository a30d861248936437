from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bots.evaluation import report
from bots.evaluation.runner import CONFIGURED, RETRIEVAL, EvaluationError, Options, run
from bots.evaluation.scenarios import ScenarioError, load_scenarios
from bots.evaluation.scoring import scores
from bots.llm import PROVIDERS

# Exit codes: 1 a score under its gate, 2 scenarios or a run that cannot start.
UNDER_GATE, CANNOT_RUN = 1, 2


class Command(BaseCommand):
    help = (
        "Score the assistant on scenario dialogs (bots/evaluation/scenarios/*.yaml) played through the channel "
        "pipeline, in a transaction rolled back afterwards. Without a catalog, or with --demo, the demo catalog "
        "is loaded for the run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "paths", nargs="*", help="Scenario files or directories (default: bots/evaluation/scenarios)"
        )
        parser.add_argument(
            "--provider",
            default=RETRIEVAL,
            choices=[RETRIEVAL, CONFIGURED, *PROVIDERS],
            help="retrieval (no LLM, the default); configured: the provider and model of the assistant settings; "
            "or a provider configured from the environment (openai: OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL).",
        )
        parser.add_argument("--model", default="", help="The model to ask, instead of the provider's default.")
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Use the demo catalog even if the store has a catalog (replaced for the run only; "
            "on a live database this holds locks on the catalog tables while the run lasts).",
        )
        parser.add_argument(
            "--store-settings",
            action="store_true",
            help="Start every scenario from the store's assistant settings rather than the defaults.",
        )
        parser.add_argument("--category", action="append", default=[], help="Only this category (repeatable).")
        parser.add_argument("-k", dest="select", default="", help="Only scenarios whose id contains this text.")
        parser.add_argument("--json", dest="json_path", help="Write the run, every reply included, to this file.")
        parser.add_argument("--compare", dest="compare_path", help="Show the cases that changed since this JSON.")
        parser.add_argument("--min-score", type=float, help="Exit with 1 when the overall score is below this.")
        parser.add_argument(
            "--min-category-score", type=float, help="Exit with 1 when a category's score is below this."
        )
        parser.add_argument("--quiet-failures", action="store_true", help="Print the table without the diffs.")

    def handle(self, *args, **options):
        try:
            scenarios = load_scenarios(options["paths"] or None)
        except ScenarioError as exc:
            raise CommandError(str(exc), returncode=CANNOT_RUN) from None
        if options["category"]:
            scenarios = [s for s in scenarios if s.category in options["category"]]
        if options["select"]:
            scenarios = [s for s in scenarios if options["select"] in s.id]
        if not scenarios:
            raise CommandError("no scenarios selected", returncode=CANNOT_RUN)
        old = None
        if options["compare_path"]:
            try:
                old = report.read_json(options["compare_path"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"--compare: {exc}", returncode=CANNOT_RUN) from None

        verbose = options["verbosity"] >= 2

        def progress(case):
            if verbose:
                mark = self.style.SUCCESS("pass") if case.passed else self.style.ERROR("FAIL")
                self.stdout.write(f"{mark} {case.category}/{case.id} ({case.seconds:.2f} s)")

        try:
            result = run(
                scenarios,
                Options(
                    provider=options["provider"],
                    model=options["model"],
                    demo=options["demo"],
                    store_settings=options["store_settings"],
                ),
                progress=progress,
            )
        except (EvaluationError, ScenarioError) as exc:
            raise CommandError(str(exc), returncode=CANNOT_RUN) from None

        out = self.stdout
        if not options["quiet_failures"]:
            for line in report.failures(result):
                out.write(line)
            out.write("")
        what = "retrieval (no LLM)" if result.mode == RETRIEVAL else f"LLM {result.provider} {result.model}"
        catalog = "demo catalog loaded for the run" if result.demo_loaded else "the store's catalog"
        out.write(f"Evaluation: {what}; {result.database}, {catalog}; {result.seconds:.1f} s")
        if result.skipped:
            out.write(f"({len(result.skipped)} scenarios are not for this mode: skipped)")
        fallbacks = report.fallbacks(result)
        if fallbacks:
            out.write(self.style.WARNING(f"{fallbacks} replies came from the catalog after an LLM error"))
        for line in report.table(result):
            out.write(line)
        if old is not None:
            out.write("")
            for line in report.compare(result, old):
                out.write(line)
        if options["json_path"]:
            report.write_json(result, Path(options["json_path"]))
            out.write(f"JSON written to {options['json_path']}")

        overall, by_category = scores(result.results)
        gates = []
        if options["min_score"] is not None and overall.score < options["min_score"]:
            gates.append(f"overall score {overall.score:.2f} is under --min-score {options['min_score']:.2f}")
        if options["min_category_score"] is not None:
            gates += [
                f"{category} score {score.score:.2f} is under --min-category-score {options['min_category_score']:.2f}"
                for category, score in sorted(by_category.items())
                if score.score < options["min_category_score"]
            ]
        if gates:
            raise CommandError("; ".join(gates), returncode=UNDER_GATE)
