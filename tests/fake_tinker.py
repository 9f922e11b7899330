"""An in-memory stand-in for the part of the `tinker` SDK that `TinkerBackend` calls, and nothing more:

    ServiceClient(user_metadata=, display_name=)    .close(status).result(timeout=) ends the session
      .create_lora_training_client(base_model=, rank=, seed=, user_metadata=).result(timeout=)
      .create_training_client_from_state_with_optimizer(path, user_metadata=).result(timeout=)
    TrainingClient.model_id
      .forward_backward(data, "cross_entropy") / .optim_step(AdamParams(learning_rate=))   -> futures
      .save_state(name, user_metadata=) / .save_weights_for_sampler(name, user_metadata=) -> futures (.path)
    RestClient()
      .list_training_runs(limit=, offset=) -> .training_runs, .cursor.total_count
      .get_training_run(id) -> TrainingRun ; .list_checkpoints(id) -> .checkpoints
    Datum, ModelInput.from_ints, AdamParams ; APIStatusError, APIConnectionError, RequestFailedError, TinkerError

Method signatures copy the real SDK's (tinker 0.38; `test_fake_matches_the_sdk` compares them when the SDK is
installed). The fake keeps the server's state (runs, checkpoints, trained tokens) so that tests can check
what was created and paid for, and injects failures: `fail(op, *errors)` raises the errors on the next calls
of `op`; `crash_at_step = n` kills the "process" (a `Crash`, a BaseException like a SIGKILL would be) at
training step n.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# -- the SDK's exception classes (same names and hierarchy) -------------------------------------------------


class TinkerError(Exception):
    pass


class APIError(TinkerError):
    pass


class APIStatusError(APIError):
    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class APIConnectionError(APIError):
    pass


class APITimeoutError(APIConnectionError):
    pass


class RequestFailedError(TinkerError):
    def __init__(self, message: str, request_id: str, category: str):
        super().__init__(message)
        self.request_id, self.category = request_id, category


class Crash(BaseException):
    """The training process dies (nothing catches a BaseException that is not an Exception)."""


# -- types ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInput:
    tokens: tuple[int, ...]

    @classmethod
    def from_ints(cls, tokens: list[int]) -> ModelInput:
        return cls(tuple(tokens))

    @property
    def length(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Datum:
    model_input: ModelInput
    loss_fn_inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AdamParams:
    learning_rate: float = 0.0001


@dataclass
class Checkpoint:
    checkpoint_id: str
    checkpoint_type: str  # "training" | "sampler"
    time: datetime
    tinker_path: str
    user_metadata: dict[str, str] | None = None


@dataclass
class TrainingRun:
    training_run_id: str
    base_model: str
    lora_rank: int
    user_metadata: dict[str, str] | None
    corrupted: bool = False
    checkpoints: list[Checkpoint] = field(default_factory=list)


@dataclass(frozen=True)
class Cursor:
    offset: int
    limit: int
    total_count: int


@dataclass(frozen=True)
class TrainingRunsResponse:
    training_runs: list[TrainingRun]
    cursor: Cursor


@dataclass(frozen=True)
class CheckpointsListResponse:
    checkpoints: list[Checkpoint]


@dataclass(frozen=True)
class SaveResponse:
    path: str


@dataclass(frozen=True)
class ForwardBackwardOutput:
    metrics: dict[str, float]


class Future:
    """A finished future; `result` records the timeout asked for (every wait must be bounded)."""

    def __init__(self, server: FakeTinker, value: Any):
        self._server, self._value = server, value

    def result(self, timeout: float | None = None) -> Any:
        self._server.timeouts.append(timeout)
        if isinstance(self._value, BaseException):
            raise self._value
        return self._value


# -- the server and its clients --------------------------------------------------------------------------------


class FakeTinker:
    """Pass as `TinkerBackend(sdk=FakeTinker())`: it is the `tinker` module as far as the backend can tell."""

    TinkerError, APIError, APIStatusError = TinkerError, APIError, APIStatusError
    APIConnectionError, APITimeoutError, RequestFailedError = APIConnectionError, APITimeoutError, RequestFailedError
    Datum, ModelInput, AdamParams = Datum, ModelInput, AdamParams

    def __init__(self) -> None:
        self.runs: dict[str, TrainingRun] = {}
        self.steps = 0  # optimizer steps taken, over all runs
        self.trained_tokens = 0  # tokens sent to forward_backward: what Tinker bills
        self.learning_rates: list[float] = []
        self.batches: list[list[Datum]] = []
        self.sessions: list[dict[str, Any]] = []
        self.timeouts: list[float | None] = []
        self.crash_at_step: int | None = None
        self.calls: list[str] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._ids = itertools.count(1)
        self._clock = datetime(2026, 1, 1, tzinfo=timezone.utc)

    # failure injection
    def fail(self, op: str, *errors: BaseException) -> None:
        self._failures.setdefault(op, []).extend(errors)

    def _enter(self, op: str) -> None:
        self.calls.append(op)
        queue = self._failures.get(op)
        if queue:
            raise queue.pop(0)

    def _tick(self) -> datetime:
        self._clock += timedelta(seconds=1)
        return self._clock

    # module-level constructors
    def ServiceClient(self, user_metadata: dict[str, str] | None = None, project_id: str | None = None, *,
                      display_name: str | None = None, base_url: str | None = None, api_key: str | None = None,
                      default_headers_overrides: Any = None, **kwargs: Any) -> _Service:
        return _Service(self, user_metadata, display_name)

    def RestClient(self, _holder: Any = None, *, base_url: str | None = None,
                   api_key: str | None = None) -> _Rest:
        self._enter("RestClient")
        return _Rest(self)

    # server-side helpers for tests
    def new_run(self, base_model: str, rank: int, user_metadata: dict[str, str] | None) -> TrainingRun:
        run = TrainingRun(f"run-{next(self._ids)}", base_model, rank, dict(user_metadata or {}))
        self.runs[run.training_run_id] = run
        return run

    def checkpoint(self, run: TrainingRun, kind: str, name: str, user_metadata: dict[str, str] | None) -> Checkpoint:
        folder = "weights" if kind == "training" else "sampler_weights"
        cp = Checkpoint(f"{folder}/{name}", kind, self._tick(), f"tinker://{run.training_run_id}/{folder}/{name}",
                        dict(user_metadata or {}))
        run.checkpoints.append(cp)
        return cp

    def delete_checkpoint(self, tinker_path: str) -> None:
        for run in self.runs.values():
            run.checkpoints = [c for c in run.checkpoints if c.tinker_path != tinker_path]


class _Service:
    def __init__(self, server: FakeTinker, user_metadata: dict[str, str] | None, display_name: str | None):
        self._server = server
        self.session = {"user_metadata": user_metadata, "display_name": display_name, "closed": None}
        server.sessions.append(self.session)

    def close(self, status: str, detail: str | None = None) -> Future:
        self.session["closed"] = status
        return Future(self._server, None)

    def create_lora_training_client(self, base_model: str, rank: int = 32, seed: int | None = None,
                                    train_mlp: bool = True, train_attn: bool = True, train_unembed: bool = True,
                                    user_metadata: dict[str, str] | None = None, optimizer: Any = None) -> Future:
        self._server._enter("create_lora_training_client")
        run = self._server.new_run(base_model, rank, user_metadata)
        return Future(self._server, _Training(self._server, run))

    def create_training_client_from_state_with_optimizer(self, path: str, base_model: str | None = None,
                                                         user_metadata: dict[str, str] | None = None,
                                                         weights_access_token: str | None = None) -> Future:
        self._server._enter("create_training_client_from_state_with_optimizer")
        source = next((r for r in self._server.runs.values() for c in r.checkpoints if c.tinker_path == path), None)
        if source is None:
            return Future(self._server, APIStatusError(f"no checkpoint {path}", 404))
        run = self._server.new_run(base_model or source.base_model, source.lora_rank, user_metadata)
        return Future(self._server, _Training(self._server, run, resumed_from=path))


class _Training:
    def __init__(self, server: FakeTinker, run: TrainingRun, resumed_from: str | None = None):
        self._server, self._run, self.resumed_from = server, run, resumed_from
        self.model_id = run.training_run_id
        self._pending_backward = False

    def forward_backward(self, data: list[Datum], loss_fn: str, loss_fn_config: Any = None) -> Future:
        server = self._server
        server._enter("forward_backward")
        assert loss_fn == "cross_entropy" and data
        for d in data:
            n = d.model_input.length
            assert len(d.loss_fn_inputs["target_tokens"]) == n == len(d.loss_fn_inputs["weights"])
        if server.crash_at_step is not None and server.steps + 1 >= server.crash_at_step:
            server.crash_at_step = None
            raise Crash(f"process killed at step {server.steps + 1}")
        server.trained_tokens += sum(d.model_input.length for d in data)
        server.batches.append(list(data))
        self._pending_backward = True
        weight = sum(sum(d.loss_fn_inputs["weights"]) for d in data)
        # a loss that falls with every step, so that progress lines are checkable
        return Future(server, ForwardBackwardOutput({"loss:sum": weight * 2.0 * 0.9 ** server.steps}))

    def optim_step(self, optim_params: AdamParams | None = None, *, adam_params: AdamParams | None = None) -> Future:
        server = self._server
        server._enter("optim_step")
        assert self._pending_backward, "optim_step without gradients"
        self._pending_backward = False
        server.steps += 1
        server.learning_rates.append((optim_params or adam_params or AdamParams()).learning_rate)
        return Future(server, {"ok": True})

    def save_state(self, name: str, ttl_seconds: int | None = None, overwrite: bool = False,
                   user_metadata: dict[str, str] | None = None) -> Future:
        self._server._enter("save_state")
        return Future(self._server, SaveResponse(self._server.checkpoint(self._run, "training", name, user_metadata).tinker_path))

    def save_weights_for_sampler(self, name: str, ttl_seconds: int | None = None,
                                 user_metadata: dict[str, str] | None = None) -> Future:
        self._server._enter("save_weights_for_sampler")
        return Future(self._server, SaveResponse(self._server.checkpoint(self._run, "sampler", name, user_metadata).tinker_path))


class _Rest:
    def __init__(self, server: FakeTinker):
        self._server = server

    def list_training_runs(self, limit: int = 20, offset: int = 0, access_scope: str = "owned",
                           project_id: str | None = None) -> Future:
        self._server._enter("list_training_runs")
        runs = list(self._server.runs.values())
        return Future(self._server, TrainingRunsResponse(runs[offset : offset + limit], Cursor(offset, limit, len(runs))))

    def get_training_run(self, training_run_id: str, access_scope: str = "owned") -> Future:
        self._server._enter("get_training_run")
        run = self._server.runs.get(training_run_id)
        return Future(self._server, run if run is not None else APIStatusError(f"no run {training_run_id}", 404))

    def list_checkpoints(self, training_run_id: str) -> Future:
        self._server._enter("list_checkpoints")
        run = self._server.runs.get(training_run_id)
        if run is None:
            return Future(self._server, APIStatusError(f"no run {training_run_id}", 404))
        return Future(self._server, CheckpointsListResponse(list(run.checkpoints)))
