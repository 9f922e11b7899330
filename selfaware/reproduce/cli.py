"""`selfaware reproduce MATRIX`: the command's arguments (mounted by `selfaware.cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Reproduce the paper's figures for a matrix of base models x organisms x seeds x controls x variants x
families (a YAML file: see selfaware/reproduce/matrix.py or the README, "Publish and reproduce").
Organisms are looked up in the registry (`selfaware finetune` trains them). Every call (one task on one
model) is printed with its samples, requests, tokens and estimated cost (datasets/prices.yaml); a run that
spends money asks first (--yes skips the question). All calls run as one resumable Inspect eval_set: rerun
the same command to resume. Then the figures (Figures 3, 18, 19 and the others whose families are in the
logs), a self-report vs behavior scatter per family and an HTML report are written to OUT/report."""


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 <= K <= N")
    return k, n


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("matrix", metavar="MATRIX", type=Path, help="the matrix file (YAML)")
    parser.add_argument("--out", metavar="DIR", type=Path, help="output folder (default: runs/<matrix file name>)")
    parser.add_argument("--dry-run", action="store_true", help="print every call and the estimated cost; run nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask before a run that spends money")
    parser.add_argument("--shard", metavar="K/N", type=_shard,
                        help="run only the K-th of N equal parts of the calls (one machine each, same --out)")
    parser.add_argument("--report-only", action="store_true", help="draw the report from the logs already in OUT")
    parser.add_argument("--skip-missing", action="store_true", help="run although some organisms are not trained")
    parser.add_argument("--registry", metavar="FILE", type=Path,
                        help="organism registry (default: the matrix's `registry`, else $SELFAWARE_HOME/registry.json)")
    parser.add_argument("--prices", metavar="FILE", type=Path, help="price table (default: datasets/prices.yaml)")
    parser.add_argument("--display", choices=["full", "rich", "plain", "log", "none"],
                        help="Inspect's progress display during the eval_set")
    return parser


def run_reproduce(args: argparse.Namespace) -> int:
    from selfaware.reproduce.run import Options, reproduce

    out = args.out or Path("runs") / args.matrix.stem
    options = Options(out=out, dry_run=args.dry_run, yes=args.yes, shard=args.shard, report_only=args.report_only,
                      registry=args.registry, prices=args.prices, display=args.display, skip_missing=args.skip_missing)
    return reproduce(args.matrix, options)


def reproduce_main(argv: list[str] | None = None) -> int:
    return run_reproduce(add_reproduce_arguments(argparse.ArgumentParser(prog="selfaware reproduce")).parse_args(argv))


if __name__ == "__main__":
    sys.exit(reproduce_main())
