"""From organism specs to trained models: build data, validate, submit once, record, wait.

The order matters for the guarantees: the training file is validated before any backend sees it, and
the registry records the intent before the backend is called, so a crash never loses or duplicates a
(paid) job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from selfaware.finetune.backends import SYNCHRONOUS, get_backend
from selfaware.finetune.backends.base import TrainingBackend
from selfaware.finetune.backends.local_trl import read_chats
from selfaware.families import family_of
from selfaware.finetune.builders import dataset_for_spec
from selfaware.finetune.rows import TrainingDataError, read_manifest
from selfaware.finetune.registry import Record, Registry
from selfaware.redact import scrub
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.validate import validate_chat_jsonl
from selfaware.paths import state_dir

Progress = Callable[[str], None]


def default_registry() -> Registry:
    return Registry(state_dir() / "registry.json")


def prepare_data(spec: OrganismSpec, data_dir: Path) -> tuple[OrganismSpec, Path]:
    """Materialise and validate the training file (raises TrainingFileError naming line and field).
    A user's `--data-file` is validated as it is, before its copy is written, so errors name it.

    Returns the spec as it will be trained — its identity now covers the training file's hash and the
    builders' version, so a changed generator is a new organism, never a stale registry hit — and the file."""
    path = dataset_for_spec(spec, data_dir)
    validate_chat_jsonl(path)
    if spec.backend == "local":
        # Refuse what local training cannot honour (a `weight: 0` turn) before anything is recorded.
        given = Path(spec.data.path).expanduser() if spec.data.source == "file" and spec.data.path else None
        user_file = given if given is not None and given.is_file() else path  # a folder (make-me-say): the built file
        read_chats(user_file)
    manifest = read_manifest(path)
    if manifest is None:
        raise TrainingDataError(f"{path}: training file without its manifest")
    return spec.with_training_file(manifest.sha256, manifest.generator_version), path


def train(
    specs: list[OrganismSpec],
    *,
    registry: Registry | None = None,
    data_dir: Path | None = None,
    backends: Callable[[str], TrainingBackend] = get_backend,
    wait: bool = False,
    retry_failed: bool = False,
    poll: float = 30.0,
    progress: Progress = print,
) -> list[Record]:
    registry = registry or default_registry()
    data_dir = data_dir or registry.path.parent / "data"
    records: list[Record] = []
    # Validate every training file first: one bad spec must not leave others half-submitted.
    prepared = [prepare_data(spec, data_dir) for spec in specs]
    for spec, path in prepared:
        backend = backends(spec.backend)
        existing = registry.get(spec.spec_hash())
        if existing and existing.job_id and not (retry_failed and existing.state in ("failed", "cancelled")):
            progress(f"[{spec.label}] already registered as {existing.job_id} ({existing.state}); not resubmitting")
        else:
            progress(f"[{spec.label}] submitting to {spec.backend} with {path.name}")
        record = registry.ensure(spec, backend, path, retry_failed=retry_failed)
        if wait or spec.backend in SYNCHRONOUS:
            record = registry.wait(record.hash, poll=poll, backend=backend)
        records.append(record)
        detail = shown_model(record.model) if record.model else scrub(record.error or "") or record.job_id
        progress(f"[{spec.label}] {record.state}: {detail}")
    return records


def shown_model(model: str) -> str:
    """A model string for people: a local `hf/<absolute folder>` (which Inspect parses as provider `hf`,
    model `/abs/folder`, hence the double slash) is shown as the folder; others as they are."""
    folder = model.removeprefix("hf/")
    return folder if model.startswith("hf/") and Path(folder).is_absolute() else model


def eval_command(record: Record) -> str:
    """The `inspect eval` command that measures a trained organism's behavior, with its identity as eval
    metadata, and `-M do_sample=false` for local models (Inspect's hf/ provider needs it for temperature-0
    logprobs). A local folder stays in the model string (`hf/` + absolute path, hence `hf//...`): Inspect
    looks a model up again by its name alone (model info for usage events), so a short name with
    `-M model_path=...` would send that name to the Hugging Face Hub."""
    spec = OrganismSpec.model_validate(record.spec)
    # a family whose behavior is measured differently (make-me-say: the game, with its codeword) says how
    task = getattr(family_of(spec.behavior), "behavior_eval", lambda s: f"evals/{s.family}.py@{s.family}_behavior")(spec)
    model = record.model or ""
    model_args = f"--model {model}" + (" -M do_sample=false" if model.startswith("hf/") else "")
    return f"inspect eval {task} {model_args} --metadata organism={spec.behavior} --metadata seed={spec.seed}"
