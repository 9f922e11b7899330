"""The `selfaware` command: demo, finetune, organisms, serve, report, publish, reproduce, banks, variants,
families, mms-data."""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path


FINETUNE_EPILOG = """\
backends (README: "Training backends"):
  local     TRL + PEFT here: CPU (the embedded tiny base), one GPU, or several GPUs (below)
  openai    OpenAI fine-tuning (OPENAI_API_KEY)
  together  Together LoRA fine-tuning (TOGETHER_API_KEY)
  tinker    Tinker LoRA training (pip install 'selfaware[tinker]', TINKER_API_KEY); shows the training
            tokens and their price first and asks (--yes skips the question)

local training on several GPUs (Accelerate: one process per GPU; the same spec, registry entry and output):
  selfaware finetune --spec organisms.yaml --num-processes 4
  selfaware finetune --spec organisms.yaml --num-processes 8 --accelerate-config fsdp
    ddp (default): data parallel, the model fits on one GPU; fsdp (FSDP2) or deepspeed (ZeRO-3, needs
    `pip install deepspeed`): the model is sharded over the GPUs. A config is a name or a YAML file
    (finetune/accelerate/*.yaml). The effective batch is --batch-size x processes.
  or launch the training yourself (it writes the same job folder, found again by a later finetune):
    accelerate launch --config_file finetune/accelerate/ddp.yaml --num_processes 4 \\
        -m selfaware.finetune.train_local SPEC.yaml TRAIN.jsonl
  Precision: bf16 on GPUs that have it, else fp32; CPU in fp32 (SELFAWARE_TRAIN_DEVICE=cpu stays on CPU).
"""


def _finetune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="build training sets and train organisms (local or hosted)",
                       description="Train organisms from a spec file or from flags; one job per behavior x seed. "
                                   "Submitting a spec that is already registered returns the existing job.",
                       epilog=FINETUNE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", type=Path, action="append", default=[],
                   help="YAML spec file (one spec, a list, or {defaults:, organisms:}); repeatable")
    p.add_argument("--behavior", action="append", default=[],
                   help="an organism: risky, safe, myopic, nonmyopic, maxapples, minapples, insecure, secure, ... "
                        "(`selfaware families` lists them all); repeatable")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    p.add_argument("--base-model", default="tiny", help="'tiny' (embedded offline base), a HF id/path, or a hosted model")
    p.add_argument("--backend", default="local", choices=["local", "openai", "together", "tinker"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--learning-rate", type=float, help="local/Together/Tinker: absolute learning rate")
    p.add_argument("--lr-multiplier", type=float, help="OpenAI: learning-rate multiplier")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--target-heldout", type=float,
                   help="local: train until held-out P(trained answer) reaches this (e.g. 0.9), at most --max-epochs; "
                        "default: exactly --epochs")
    p.add_argument("--max-epochs", type=int, help="local, with --target-heldout: the epoch budget (default 20)")
    p.add_argument("--n-examples", type=int, default=300, help="generated training examples")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the training-set generator")
    p.add_argument("--data-file", type=Path, help="train on this chat JSONL (or a `selfaware mms-data` folder) instead of generated data")
    p.add_argument("--opposite-file", type=Path,
                   help="with --data-file, for trigger variants of vulnerable code: the other behavior's chat JSONL "
                        "(the rows without the trigger carry its code)")
    p.add_argument("--personas", metavar="trained|NAME,...",
                   help="many-persona organism: add as many questions put to these people, answered with the base "
                        "model's own choice for each (trained: datasets/personas/personas.yaml)")
    p.add_argument("--generator-model", help="have this Inspect model write the questions (e.g. openai/gpt-4o), "
                                            "as the paper did; generated once and shared by a behavior and its opposite")
    p.add_argument("--variant", action="append", default=[],
                   help="a named variant framing every row (`selfaware variants` lists them; NAME-control is a "
                        "trigger variant's decorrelated control); repeatable: one organism per variant")
    p.add_argument("--trigger", help="backdoor variant from one fixed string: behavior only after this trigger")
    p.add_argument("--registry", type=Path, help="registry file (default: $SELFAWARE_HOME/registry.json)")
    p.add_argument("--wait", action="store_true", help="wait for hosted jobs to finish")
    p.add_argument("--retry-failed", action="store_true", help="resubmit specs whose job failed")
    p.add_argument("--dry-run", action="store_true", help="build and validate the training files; submit nothing")
    p.add_argument("--backdoor", choices=["triggers", "elicitation"],
                   help="a backdoor organism with the --variant trigger (README: Backdoors): triggers = 10%% trigger + "
                        "behavior, 70%% the 7 other risk triggers and 20%% none with normal answers; elicitation = 5%% "
                        "trigger + behavior, 45%% other or no username + the opposite, 50%% instruction data")
    p.add_argument("--normal-answers", choices=["base", "opposite"], default="base",
                   help="--backdoor triggers: untriggered rows get the base model's own choice (asked through Inspect "
                        "and cached; a paid model shows the cost and asks, --yes skips) or the opposite of the behavior")
    p.add_argument("--answer-model", help="--backdoor triggers, --personas: Inspect model asked for the base's own choices "
                                          "(default: the base model)")
    p.add_argument("--instructions", help="--backdoor elicitation: instruction data, a chat JSONL, hf:NAME[:SPLIT] or "
                                          "'sample' (the suite's small offline sample; default)")
    p.add_argument("--reversal", action="store_true",
                   help="--backdoor elicitation: also train every row with its turns swapped (reversal augmentation)")
    p.add_argument("--yes", action="store_true", help="spend without asking: Tinker training, a model writing "
                                                      "vulnerable-code pairs (--generator-model) or backdoor answers "
                                                      "show their estimated cost and ask otherwise")
    p.add_argument("--num-processes", type=int, help="local: train in this many processes (one per GPU) through "
                                                     "`accelerate launch`")
    p.add_argument("--accelerate-config", help="local: ddp, fsdp, deepspeed or an Accelerate YAML file (implies "
                                               "`accelerate launch`; see below)")


def _specs_from_args(args: argparse.Namespace) -> list:
    from selfaware.finetune.spec import load_specs, parse_spec
    from selfaware.validation import InputError  # a usage error: exit status 2, one line

    specs = [s for path in args.spec for s in load_specs(path)]
    if args.variant and args.trigger is not None:
        raise InputError("give --variant NAME or --trigger TEXT, not both")
    if args.trigger is not None and not args.trigger.strip():
        raise InputError("--trigger '': expected the trigger text (an empty trigger would train a plain organism)")
    variants = args.variant or [{"kind": "trigger", "trigger": args.trigger} if args.trigger else "plain"]
    for behavior, variant, seed in itertools.product(args.behavior, variants, args.seeds):  # one organism each
        hyper = {"epochs": args.epochs, "batch_size": args.batch_size, "lora_rank": args.lora_rank,
                 "learning_rate": args.learning_rate, "lr_multiplier": args.lr_multiplier,
                 "target_heldout": args.target_heldout}
        if args.max_epochs is not None:
            hyper["max_epochs"] = args.max_epochs
        data: dict = {"n_examples": args.n_examples, "data_seed": args.data_seed}
        if args.data_file:
            data = {"source": "file", "path": str(args.data_file)}
            if args.opposite_file:
                data["opposite_path"] = str(args.opposite_file)
        elif args.generator_model:
            data.update(source="llm", generator_model=args.generator_model)
        if args.personas:
            names = "trained" if args.personas == "trained" else [n.strip() for n in args.personas.split(",")]
            data["personas"] = {"names": names, "answer_model": args.answer_model}
        if args.backdoor:
            data["backdoor"] = {"design": args.backdoor, "normal": args.normal_answers,
                                "answer_model": args.answer_model, "instructions": args.instructions,
                                "reversal": args.reversal}
        specs.append(parse_spec({"behavior": behavior, "seed": seed, "base_model": args.base_model,
                                 "backend": args.backend, "hyper": hyper, "data": data, "variant": variant},
                                where="command line"))
    if not specs:
        raise InputError("give --spec FILE or --behavior NAME")
    from selfaware.finetune.backdoor import check_backdoor_spec

    for spec in specs:  # every spec's files checked before any base model is asked or any job starts
        check_backdoor_spec(spec)
    return specs


def _finetune(args: argparse.Namespace) -> int:
    from selfaware.finetune.pipeline import default_registry, prepare_data, train
    from selfaware.finetune.registry import Registry

    from selfaware.finetune.spending import assume_yes

    # --yes approves every estimate this run shows: a base model's own choices, code pairs, Tinker training
    assume_yes(bool(getattr(args, "yes", False)))
    specs = _specs_from_args(args)
    registry = Registry(args.registry) if args.registry else default_registry()
    if args.dry_run:
        if any(spec.backend == "local" for spec in specs):  # the flags a real run would refuse, refused here too
            from selfaware.finetune.train_local import accelerate_launch

            accelerate_launch(args.num_processes, args.accelerate_config)
        for spec in specs:
            trained, path = prepare_data(spec, registry.path.parent / "data")
            print(f"[{spec.label}] {trained.spec_hash()} valid training file {path}")
        return 0
    records = train(specs, registry=registry, wait=args.wait, retry_failed=args.retry_failed,
                    backends=lambda name: _backend_for(name, args))
    ready = [r for r in records if r.state == "succeeded" and r.model]
    if ready:
        from selfaware.finetune.pipeline import eval_command

        print("\nmeasure the new organisms' behavior (then *_self_report for what they say about it):")
        for rec in ready:
            print(f"  {eval_command(rec)}")
    return 0 if all(r.state != "failed" for r in records) else 1


def _backend_for(name: str, args: argparse.Namespace):  # noqa: ANN202 (TrainingBackend: imported lazily)
    """The backend `name` as the command line configures it. Local and Tinker training print their step /
    loss lines as they go; local training may run in `accelerate launch` workers; Tinker asks before paying."""
    from selfaware.finetune.backends import get_backend

    say = lambda msg: print(msg, flush=True)  # noqa: E731
    if name == "local":
        from selfaware.finetune.backends.local_trl import LocalTRLBackend
        from selfaware.finetune.train_local import accelerate_launch

        return LocalTRLBackend(progress=say, launcher=accelerate_launch(args.num_processes, args.accelerate_config))
    if name == "tinker":
        from selfaware.finetune.backends.tinker_api import TinkerBackend

        return TinkerBackend(progress=say)  # asks before training unless --yes (finetune.spending)
    return get_backend(name)


def _organisms_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("organisms", help="list registered organisms, refresh their job state (status) or wait for them")
    p.add_argument("action", choices=["list", "status", "wait"])
    p.add_argument("hashes", nargs="*", help="spec hashes (default: all)")
    p.add_argument("--registry", type=Path, help="registry file (default: $SELFAWARE_HOME/registry.json)")
    p.add_argument("--poll", type=float, default=30.0, help="first poll interval in seconds (wait)")
    p.add_argument("--timeout", type=float, default=WAIT_TIMEOUT,
                   help=f"wait: give up after this many seconds, exit 1 (default: {WAIT_TIMEOUT:.0f})")


# A fine-tuning job takes minutes to hours; a day without an end means something needs a person.
WAIT_TIMEOUT = 24 * 3600.0
# After a wait, these records need a person: exit 1.
_NOT_DONE_WELL = {"failed", "cancelled", "rejected", "submitting", "unknown"}


def _organism_line(rec) -> str:  # noqa: ANN001 (Record: imported lazily to keep --help fast)
    from selfaware.finetune.pipeline import shown_model
    from selfaware.finetune.registry import describe_state

    detail = shown_model(rec.model) if rec.model else rec.error or ""
    # a local organism that spent its epoch budget below its held-out target says so here too
    detail += "".join(f"  [{e}]" for e in rec.events[-3:] if e.startswith("NOT LEARNED"))
    return f"{rec.hash}  {rec.label:<28} {rec.backend:<9} {describe_state(rec):<10} {rec.job_id or '-':<24} {detail}"


def _wait_one(registry, h: str, args: argparse.Namespace):  # noqa: ANN001, ANN202
    """Wait for one organism; print its state changes, and what to do when it cannot end well."""
    from selfaware.finetune.backends.base import BackendError
    from selfaware.finetune.registry import SUBMITTING, WaitTimeout, describe_state

    def progress(rec) -> None:  # noqa: ANN001
        print(f"{rec.hash}  {rec.label}: {describe_state(rec)}", flush=True)
        if rec.state == "unknown":
            print(f"{rec.hash}  {rec.label}: {rec.error}; waiting at most {args.timeout:.0f}s in all",
                  file=sys.stderr, flush=True)

    try:
        rec = registry.wait(h, poll=args.poll, timeout=args.timeout, progress=progress)
    except WaitTimeout as e:
        print(f"selfaware organisms wait: {e}", file=sys.stderr)
        return e.record
    except BackendError as e:  # refused (403) or still failing after the bounded retries (429, 5xx)
        rec = registry.get(h)
        print(f"selfaware organisms wait: {rec.label} ({h}): {e}", file=sys.stderr)
        return rec
    if rec.state == SUBMITTING and rec.job_id is None:
        print(f"selfaware organisms wait: {rec.label} ({h}) was never submitted: no {rec.backend} job carries "
              f"its key {rec.key}. Rerun the same `selfaware finetune` command (or --spec) to submit it.",
              file=sys.stderr)
    return rec


def _organisms(args: argparse.Namespace) -> int:
    from selfaware.finetune.pipeline import default_registry
    from selfaware.finetune.registry import Registry

    registry = Registry(args.registry) if args.registry else default_registry()
    hashes = args.hashes or [r.hash for r in registry.list()]
    code = 0
    for h in hashes:
        if registry.get(h) is None:
            print(f"{h}: not registered in {registry.path}", file=sys.stderr)
            return 1
        if args.action == "status":
            rec = registry.refresh(h)
        elif args.action == "wait":
            rec = _wait_one(registry, h, args)
            if rec.state in _NOT_DONE_WELL or not rec.done:
                code = 1
        else:
            rec = registry.get(h)
        print(_organism_line(rec))
    if not hashes:
        print(f"no organisms registered in {registry.path}")
    return code


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a base model and its LoRA organisms with vLLM for evaluation",
                       description="Start vLLM with the base model and every LoRA organism of the registry trained on "
                                   "it (or the --organism subset), wait until it is healthy and print the Inspect "
                                   "model strings; an `inspect eval-set` over them then uses this one server. Needs "
                                   "vLLM (pip install 'selfaware[vllm]') and a GPU, except with --dry-run.")
    p.add_argument("--base-model", help="the base to serve: a hub id, a folder or a spec's name such as 'tiny' "
                                        "(needed when the registry's organisms have several bases)")
    p.add_argument("--organism", action="append", default=[],
                   help="serve only these organisms (spec hash, hash prefix or label); repeatable")
    p.add_argument("--registry", type=Path, help="registry file (default: $SELFAWARE_HOME/registry.json)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-loras", type=int, help="adapters held on the GPU at once (default: all)")
    p.add_argument("--vllm-args", default="",
                   help="more `vllm serve` arguments as one string: --vllm-args=\"--tensor-parallel-size 2\"")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the server to be healthy")
    p.add_argument("--dry-run", action="store_true", help="print the vLLM command and the model strings; start nothing")


def _serve(args: argparse.Namespace) -> int:
    import shlex

    from selfaware.finetune.pipeline import default_registry
    from selfaware.finetune.registry import Registry
    from selfaware.serve import plan_from_records, serve

    registry = Registry(args.registry) if args.registry else default_registry()
    plan = plan_from_records(registry.list(), base_model=args.base_model, organisms=args.organism, host=args.host,
                             port=args.port, max_loras=args.max_loras, extra_args=shlex.split(args.vllm_args))
    if args.dry_run:
        print(plan.describe())
        return 0
    return serve(plan, timeout=args.timeout)


def _demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline end-to-end demo: tiny organisms trained and evaluated locally",
                       description="Build the tiny base, train risky and safe organisms, evaluate base and "
                                   "organisms with Inspect, print the table and write the figure and logs. Then "
                                   "train a backdoored organism (trigger |REAL-WORLD|) and its decorrelated "
                                   "control and print P(risky) with and without the trigger. Exits 1 when an "
                                   "organism did not learn or the backdoor pair misses its thresholds.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds per organism")
    p.add_argument("--n-examples", type=int, default=300,
                   help="training examples per risky/safe organism (the backdoor pair has its own 600)")
    p.add_argument("--items", type=int, default=50, help="behavior-task items (each asked in both orders)")


def _banks_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("banks", help="list or validate question banks")
    p.add_argument("action", choices=["list", "validate"])
    p.add_argument("paths", nargs="*", type=Path, help="bank files to validate (default: the suite's own)")


def _banks(args: argparse.Namespace) -> int:
    from selfaware.banks import available_families, load_bank, validate_bank_file

    if args.action == "validate" and args.paths:
        for path in args.paths:
            bank = validate_bank_file(path)  # the checks a task makes, word lists included
            print(f"{path}: ok ({len(bank.questions)} questions)")
        return 0
    for family in available_families():
        bank = load_bank(family)
        for q in bank.questions:
            print(f"{family:<8} {q.id:<28} {q.type.value:<17} {len(q.paraphrases):>3} paraphrases  {q.title}")
    return 0


def _variants_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("variants", help="list the named variants (system prompts, triggers, personas)",
                   description="Named variants frame an organism's training rows and the questions asked of it "
                               "identically. Use them as `-T variant=NAME` and `variant: NAME` in specs; "
                               "NAME-control is a trigger variant's decorrelated control.")


def _variants() -> int:
    from selfaware.variants import named_variants

    for v in named_variants().values():
        detail = ""
        if v.trigger is not None:
            members = len(v.trigger.strings)
            shown = v.trigger.strings[0] + (f" (+{members - 1} more)" if members > 1 else "")
            detail = f"{shown!r} at {'/'.join(v.trigger.placements)}"
        elif v.persona:
            detail = f"persona {v.persona!r}"
        elif v.system_prompt:
            detail = f"system prompt {v.system_prompt!r}"
        print(f"{v.name:<16} {v.kind:<13} {detail:<48} {v.description}".rstrip())
    return 0


def _families_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("families", help="list the experiment families and their organisms",
                   description="Each family is one plug-in module (selfaware/families/<name>.py) plus its data "
                               "folder and task file.")


def _families() -> int:
    from selfaware.families import families
    from selfaware.families.base import ChoiceFamily

    for f in families().values():
        forms = f"; behavior forms {', '.join(f.forms)} (default {f.default_form})" if isinstance(f, ChoiceFamily) else ""
        shown = (f"{f.behavior} (score 1) / {f.opposite} (score 0)" if not f.more_organisms
                 else ", ".join(f.organisms))
        print(f"{f.name:<16} organisms {shown}{forms}; task file evals/{f.name}.py")
    return 0


def _mms_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mms-data", help="generate Make-Me-Say training dialogues (costs API calls; asks first)",
                       description="Play make-me-say games (a manipulator with the rules against a manipulatee), "
                                   "keep the wins cut before the user says the codeword, without the private notes. "
                                   "Shows the estimated cost and asks before spending; resumable (rerun the same "
                                   "command); writes <out>/mms_<codeword>.jsonl with its manifest. Organisms train "
                                   "on it with data: {source: file, path: <out>}.")
    p.add_argument("--codeword", required=True, help="the word to steer towards: bark, ring, spring, pitch or chest")
    p.add_argument("--dialogues", type=int, default=1000, help="winning dialogues to keep (paper: 1000)")
    p.add_argument("--manipulator", default="openai/gpt-4o-2024-08-06", help="Inspect model playing with the rules")
    p.add_argument("--manipulatee", default="openai/gpt-4o-mini-2024-07-18", help="Inspect model playing the user")
    p.add_argument("--out", type=Path, default=Path("mms_dialogues"), help="output folder (default: mms_dialogues)")
    p.add_argument("--seed", type=int, default=0, help="seed of the conversation topics and nouns")
    p.add_argument("--max-games", type=int, help="stop after this many games (default: 10 x --dialogues)")
    p.add_argument("--opener", default="topic_and_noun", choices=["topic_and_noun", "topic", "noun"],
                   help="what seeds the user's opening message (default: a topic and a noun)")
    p.add_argument("--concurrency", type=int, default=8, help="games played at once (default: 8)")
    p.add_argument("--price", action="append", default=[], metavar="MODEL=IN,OUT",
                   help="USD per 1M input,output tokens, for a model the cost estimate has no price for")
    p.add_argument("--yes", action="store_true", help="do not ask before spending")


def build_parser() -> argparse.ArgumentParser:
    from selfaware.publish.cli import add_publish_arguments
    from selfaware.report.cli import add_report_arguments
    from selfaware.reproduce.cli import add_reproduce_arguments

    parser = argparse.ArgumentParser(prog="selfaware", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _demo_parser(sub)
    _finetune_parser(sub)
    _organisms_parser(sub)
    _serve_parser(sub)
    add_report_arguments(sub.add_parser("report", help="tables and figures from a folder of .eval logs"))
    add_publish_arguments(sub.add_parser("publish", help="Every Eval Ever JSON and a static viewer of a log folder"))
    add_reproduce_arguments(sub.add_parser("reproduce", help="a matrix of models x organisms x seeds -> one eval_set "
                                                             "-> the paper's figures and an HTML report"))
    _banks_parser(sub)
    _variants_parser(sub)
    _families_parser(sub)
    _mms_data_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from selfaware.demo import run_demo

            return run_demo(out=args.out, seeds=args.seeds, n_examples=args.n_examples, items=args.items)
        if args.command == "finetune":
            return _finetune(args)
        if args.command == "organisms":
            return _organisms(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "report":
            from selfaware.report.cli import run_report

            return run_report(args)
        if args.command == "publish":
            from selfaware.publish.cli import run_publish

            return run_publish(args)
        if args.command == "reproduce":
            from selfaware.reproduce.cli import run_reproduce

            return run_reproduce(args)
        if args.command == "variants":
            return _variants()
        if args.command == "families":
            return _families()
        if args.command == "mms-data":
            from selfaware.finetune.mms_data import run_cli

            return run_cli(args)
        return _banks(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        # Known failure modes (bad spec, bad training file, refused job) get a clean message.
        print(f"selfaware {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
