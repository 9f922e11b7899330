"""Train one organism spec with the local TRL + PEFT backend, on CPU, one GPU or many.

    python -m selfaware.finetune.train_local SPEC.yaml TRAIN.jsonl [--out DIR] [--index N]

Multi-GPU runs use Accelerate with the same module, unchanged (configs in `finetune/accelerate/`):

    accelerate launch --config_file finetune/accelerate/ddp.yaml \\
        -m selfaware.finetune.train_local SPEC.yaml TRAIN.jsonl
    accelerate launch --config_file finetune/accelerate/fsdp.yaml \\
        -m selfaware.finetune.train_local SPEC.yaml TRAIN.jsonl

SPEC.yaml is read with `load_specs`; when it expands to several specs (a list, or `seeds: [...]`), pick
one with `--index`. The job lands in `--out/<spec hash>/` (default `$SELFAWARE_HOME/organisms/local`), with
`job.json` holding the Inspect model string; a spec already trained there is not trained again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selfaware.finetune.spec import SpecError, load_specs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfaware.finetune.train_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="organism spec YAML")
    parser.add_argument("train_file", type=Path, help="training set JSONL ({'messages': [...]} per line)")
    parser.add_argument("--out", type=Path, default=None, help="jobs folder (default: state dir)")
    parser.add_argument("--index", type=int, default=None, help="which spec, when the YAML holds several")
    parser.add_argument("--key", default=None, help="idempotency key recorded in job.json (default: spec hash)")
    args = parser.parse_args(argv)

    try:
        specs = load_specs(args.spec)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.index is None and len(specs) != 1:
        print(f"{args.spec} holds {len(specs)} specs; choose one with --index 0..{len(specs) - 1}", file=sys.stderr)
        return 2
    index = args.index or 0
    if not 0 <= index < len(specs):
        print(f"--index {index} out of range 0..{len(specs) - 1}", file=sys.stderr)
        return 2
    spec = specs[index]

    from selfaware.finetune.backends.local_trl import LocalTRLBackend, process_rank

    main_process = process_rank() == 0
    backend = LocalTRLBackend(args.out, progress=(lambda msg: print(msg, flush=True)) if main_process else None)
    job_id = backend.submit(spec, args.train_file, key=args.key or spec.spec_hash())
    if main_process:
        status = backend.status(job_id)
        print(f"{spec.label}: {status.state} {status.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
