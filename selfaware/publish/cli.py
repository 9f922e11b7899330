"""`selfaware publish LOGS`: the command's arguments and its run (mounted by `selfaware.cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Publish a folder of Inspect logs: Every Eval Ever JSON (one aggregate file and one JSONL of instance records
per log, validated against the Every Eval Ever schemas) and a static `inspect view` site of the logs.
Secrets (API keys, tokens: see selfaware.redact) are scrubbed from everything written; the logs themselves
are not changed. Only logs that finished successfully are published; the others are listed."""

RELATIONSHIPS = ("first_party", "third_party", "collaborative", "other")


def add_publish_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("log_dir", metavar="LOGS", type=Path, help="folder of .eval logs (searched recursively)")
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="output folder (default: LOGS-publish beside LOGS): every_eval_ever/ and viewer/")
    parser.add_argument("--schema-dir", metavar="DIR", type=Path,
                        help="folder holding the Every Eval Ever schemas eval.schema.json and "
                             "instance_level_eval.schema.json (not shipped with selfaware); required unless "
                             "--no-validate")
    parser.add_argument("--no-validate", action="store_true", help="write the JSON without checking it")
    parser.add_argument("--organization", default="selfaware user",
                        help="source_organization_name: who ran the evaluations (default: 'selfaware user')")
    parser.add_argument("--relationship", choices=RELATIONSHIPS, default="third_party",
                        help="evaluator_relationship to the evaluated models (default: third_party)")
    parser.add_argument("--no-bundle", action="store_true", help="skip the static `inspect view` site")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing viewer/ folder")
    return parser


def run_publish(args: argparse.Namespace) -> int:
    from selfaware.publish.bundle import bundle_viewer
    from selfaware.publish.schemas import load_schemas
    from selfaware.publish.write import publish_eee

    log_dir: Path = args.log_dir
    if not log_dir.is_dir():
        print(f"selfaware publish: {log_dir}: not a folder", file=sys.stderr)
        return 2
    schemas = None if args.no_validate else load_schemas(args.schema_dir)  # SchemaMissing says what to pass
    out: Path = args.out or log_dir.resolve().parent / f"{log_dir.resolve().name}-publish"
    source = {"source_organization_name": args.organization, "evaluator_relationship": args.relationship}
    report = publish_eee(log_dir, out / "every_eval_ever", schemas=schemas, source=source)
    checked = f"validated against schema {schemas.version}" if schemas else "NOT validated (--no-validate)"
    print(f"Every Eval Ever: {len(report.aggregates)} aggregate files, {report.instances} instance records, "
          f"{checked}: {out / 'every_eval_ever'}")
    for line in report.skipped:
        print(f"  not published: {line}", file=sys.stderr)
    for line in report.omitted:
        print(f"  left out (no number): {line}", file=sys.stderr)
    if not args.no_bundle:
        viewer = bundle_viewer(log_dir, out / "viewer", overwrite=args.overwrite)
        print(f"viewer: {viewer} (a static site: serve it, e.g. `python -m http.server -d {viewer}`)")
    return 0 if report.aggregates else 1


def publish_main(argv: list[str] | None = None) -> int:
    """`selfaware publish ...` from an argument list (tests, `python -m selfaware.publish.cli`)."""
    parser = add_publish_arguments(argparse.ArgumentParser(prog="selfaware publish"))
    return run_publish(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(publish_main())
