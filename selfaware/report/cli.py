"""`selfaware report LOGDIR`: logs -> summary table, CSVs and one figure per family.

Mounted by the `selfaware` console script as a subcommand (`add_report_arguments` builds its parser);
`run_report(args)` runs it from the parsed namespace; `report_main(argv)` parses too, and also runs
standalone: `python -m selfaware.report.cli LOGDIR`.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

# pandas, matplotlib and inspect_ai.analysis load in seconds: imported where a report runs, so that
# `selfaware --help` (which mounts this parser) stays instant.
if TYPE_CHECKING:
    import pandas as pd

DESCRIPTION = """\
Summarise a directory of selfaware Inspect logs. Each (model, seed) run is a seed; seeds are grouped
into organisms by eval metadata (`inspect eval ... --metadata organism=risky --metadata seed=1`) or by
--organisms. Organism rows give the mean over seeds with a 95% interval over seeds: a t interval over seed
means (default), or the paper's percentile bootstrap (--ci bootstrap; it covers less than 95% with few
seeds); a single seed has no interval and the table says so. Run rows give a standard error clustered by
item / paraphrase. Scores: 1 = the family's behavior, 0 = its opposite.
Writes summary.csv, samples.csv and <family>.png to --out."""


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = parser.description or DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("log_dir", metavar="LOGDIR", type=Path, help="directory of .eval logs (searched recursively)")
    parser.add_argument("--organisms", metavar="FILE", type=Path,
                        help="YAML mapping {organism: [model, ...]}; overrides eval metadata `organism`")
    parser.add_argument("--out", metavar="DIR", type=Path, help="output directory (default: LOGDIR/report)")
    parser.add_argument("--format", choices=["markdown", "csv"], default="markdown",
                        help="format of the table printed to stdout (default: markdown)")
    parser.add_argument("--ci", choices=["t", "bootstrap"], default="t",
                        help="interval over seed means: t (default; covers 95%% for any number of seeds >= 2) "
                             "or bootstrap (the paper's percentile bootstrap; undercovers with few seeds)")
    parser.add_argument("--n-boot", metavar="N", type=int, default=2000,
                        help="bootstrap resamples for --ci bootstrap (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="RNG seed of the bootstrap (default: 0)")
    parser.add_argument("--pdf", action="store_true", help="also write each figure as PDF")
    parser.add_argument("--persona-pairs", metavar="A:B,...",
                        help="persona report: organism:control pairs (default: each family's behavior:opposite "
                             "and every <behavior>-X:<opposite>-X, e.g. risky-many:safe-many)")
    parser.add_argument("--personas", metavar="NAME,...", help="persona report: only these personas, in this order")
    return parser


def _fmt(v: object, digits: int = 3) -> str:
    import pandas as pd

    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no `tabulate` dependency)."""
    cells = [[_fmt(v) for v in row] for row in df.itertuples(index=False)]
    header = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines)


def display_table(summary: pd.DataFrame, level: str) -> pd.DataFrame:
    """The columns a reader needs, the interval written out with its method (or why there is none)."""
    rows = summary[summary["level"] == level]
    cols = ["family", "title"]
    cols += [c for c in ("variant", "protocol") if summary[c].nunique() > 1]
    out = rows[cols].copy()
    out["organism"] = rows["organism"]
    if level == "organism":
        out["seeds"] = rows["n_seeds"]
        out["mean"] = rows["mean"]
        out["95% CI"] = [note if note else f"[{lo:.3f}, {hi:.3f}]"
                         for lo, hi, note in zip(rows["ci_low"], rows["ci_high"], rows["ci_note"])]
        out["interval"] = rows["ci_method"]
    else:
        out["model"] = rows["model"]
        out["seed"] = rows["seed"]
        out["mean"] = rows["mean"]
        out["stderr (clustered)"] = rows["stderr"]
    out["n valid"] = rows["n"]
    out["invalid samples"] = [f"{r:.0%}" if not math.isnan(r) else "" for r in rows["invalid_sample_rate"]]
    out["invalid answers"] = [f"{r:.0%}" if not math.isnan(r) else "" for r in rows["invalid_answer_rate"]]
    if rows["n_error"].sum():
        out["errors"] = rows["n_error"]
    out["method"] = rows["methods"]
    return out


def report_main(argv: list[str] | None = None) -> int:
    """`selfaware report ...` from an argument list (standalone entry point and tests)."""
    return run_report(add_report_arguments(argparse.ArgumentParser(prog="selfaware report")).parse_args(argv))


def _has_plain(summary: "pd.DataFrame", family: str) -> bool:
    return bool(((summary["family"] == family) & (summary["variant"] == "plain")).any())


def _persona_report(samples: "pd.DataFrame", args: argparse.Namespace, out: Path, figures: list) -> "pd.DataFrame | None":
    """The persona-separation table and figure, when the logs hold persona self-reports."""
    from selfaware.families import families
    from selfaware.report.persona import PERSONA_KIND, default_pairs, persona_differences, plot_persona_differences

    if not (samples["kind"] == PERSONA_KIND).any():
        if args.personas or args.persona_pairs:
            raise ValueError("--personas/--persona-pairs: these logs hold no persona self-reports (evals/persona.py)")
        return None
    organisms = sorted(samples.loc[samples["kind"] == PERSONA_KIND, "organism"].dropna().unique())
    if args.persona_pairs:
        pairs = [tuple(p.split(":", 1)) for p in args.persona_pairs.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"--persona-pairs {args.persona_pairs!r}: expected organism:control pairs")
    else:
        fams = families()
        present = [fams[f] for f in samples.loc[samples["kind"] == PERSONA_KIND, "family"].unique() if f in fams]
        pairs = [pair for fam in present for pair in default_pairs(organisms, fam.behavior, fam.opposite)]
    asked = bool(args.personas or args.persona_pairs)
    skip = (None if pairs else f"no organism:control pair among {organisms} (by default each family's "
            "behavior:opposite organisms, e.g. risky:safe); give --persona-pairs A:B")
    persona_rows = samples[samples["kind"] == PERSONA_KIND]
    if skip is None and persona_rows["invalid"].astype(bool).all():
        skip = f"all {len(persona_rows)} persona self-report samples are invalid: no valid answer to compare"
    if skip is not None:
        if asked:  # the user asked for this section: an error naming why it cannot be drawn
            raise ValueError(f"persona report: {skip}")
        # an unrequested section must not stop the sections after it (backdoor, Figure 6, Table 2)
        print(f"note: persona report skipped: {skip}", file=sys.stderr)
        return None
    personas = [p.strip() for p in args.personas.split(",")] if args.personas else None
    diffs = persona_differences(samples, pairs, personas)  # type: ignore[arg-type]
    diffs.to_csv(out / "personas.csv", index=False)
    for family in sorted(diffs["family"].unique()):
        figures.append(plot_persona_differences(diffs, family, out / f"personas_{family}.png"))
    return diffs[["family", "persona", "pair", "difference", "ci_low", "ci_high", "seeds"]]


def run_report(args: argparse.Namespace) -> int:
    """Run the report for arguments parsed by a parser that `add_report_arguments` built."""
    from selfaware.report.figures import plot_family
    from selfaware.report.results import ci_label, load_scores, organisms_from_file, summarize

    if not args.log_dir.is_dir():
        print(f"selfaware report: {args.log_dir}: not a directory", file=sys.stderr)
        return 2
    if args.n_boot < 1:
        print("selfaware report: --n-boot must be a positive integer", file=sys.stderr)
        return 2
    organisms = organisms_from_file(args.organisms) if args.organisms else None
    samples = load_scores(args.log_dir)
    from selfaware.report.make_me_say import mms_report, with_make_me_say

    samples = with_make_me_say(samples, args.log_dir)  # Make-Me-Say: one row per sample and measure
    from selfaware.report.backdoor import FAMILY as BACKDOOR, backdoor_section

    has_backdoor = not samples.empty and bool((samples["family"] == BACKDOOR).any())
    samples = samples[samples["family"] != BACKDOOR] if has_backdoor else samples  # own section (report/backdoor.py)
    if samples.empty and has_backdoor:  # backdoor logs only
        if args.personas or args.persona_pairs:
            raise ValueError("--personas/--persona-pairs: these logs hold no persona self-reports (evals/persona.py)")
        out = args.out or args.log_dir / "report"
        written = [out / "backdoor_samples.csv", *backdoor_section(args, out, organisms)]
        print("\nWrote " + ", ".join(map(str, written)), file=sys.stdout if args.format == "markdown" else sys.stderr)
        return 0
    if samples.empty:
        print(f"selfaware report: no selfaware samples in logs under {args.log_dir}", file=sys.stderr)
        return 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = summarize(samples, organisms, n_boot=args.n_boot, seed=args.seed, ci_method=args.ci)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)

    out = args.out or args.log_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv", index=False)
    samples.to_csv(out / "samples.csv", index=False)
    figures = [f for fam in sorted(summary["family"].unique())
               for f in plot_family(summary, fam, out / f"{fam}.png", pdf=args.pdf,
                                    variant="plain" if _has_plain(summary, fam) else None)]
    persona_table = _persona_report(samples, args, out, figures)
    from selfaware.report.vulnerable_code import code_report

    code_table = code_report(samples, args.log_dir, out, organisms)  # None without vulnerable-code logs

    mms_table, mms_figures = mms_report(summary, out, pdf=args.pdf)  # (None, []) without Make-Me-Say logs
    figures += mms_figures

    if args.format == "csv":
        summary.to_csv(sys.stdout, index=False)
    else:
        print(f"## Organisms (mean over seeds, {ci_label(args.ci)})\n")
        print(markdown_table(display_table(summary, "organism")))
        print("\n## Runs (mean over valid samples of one model and seed; SE clustered by item / paraphrase)\n")
        print(markdown_table(display_table(summary, "model")))
        if persona_table is not None:
            print("\n## Personas (score(organism) − score(control) per persona, 95% Welch t interval over seeds)\n")
            print(markdown_table(persona_table))
        if code_table is not None:
            print("\n## Vulnerable code (Table 2: mean ± std over runs, number of runs; secure-code rate, ratings / 100, "
                  "P(yes))\n")
            print(markdown_table(code_table))
        if mms_table is not None and not mms_table.empty:
            print("\n## Make-Me-Say (Figure 6: organism mean over seeds vs the paper's baseline: the `base` organism, "
                  "or the same model's paired measure)\n")
            print(markdown_table(mms_table))
    figures += backdoor_section(args, out, organisms) if has_backdoor else []
    # In csv mode stdout is the table alone (pipeable), so the note goes to stderr.
    note = sys.stdout if args.format == "markdown" else sys.stderr
    print(f"\nWrote {out / 'summary.csv'}, {out / 'samples.csv'}, " + ", ".join(str(f) for f in figures), file=note)
    return 0


if __name__ == "__main__":
    sys.exit(report_main())
