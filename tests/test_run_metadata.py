"""The run_metadata solver copies the eval's organism and seed onto every sample."""

from __future__ import annotations

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, get_model

from selfaware.offline import install_token_count_fallback
from selfaware.solvers.run_metadata import run_metadata

install_token_count_fallback()


def _task(samples: list[Sample]) -> Task:
    return Task(dataset=samples, solver=[run_metadata()], name="run_metadata_probe")


def _model():
    # usage set on the output so that mockllm counts no tokens (it would download a tokenizer)
    out = ModelOutput.from_content("mockllm/model", "A")
    return get_model("mockllm/model", custom_outputs=[out] * 10)


def test_eval_metadata_reaches_every_sample(tmp_path) -> None:
    samples = [Sample(id=i, input="q", metadata={"family": "risk"}) for i in range(3)]
    log = inspect_eval(_task(samples), model=_model(), metadata={"organism": "risky", "seed": 1, "note": "x"},
                       log_dir=str(tmp_path), display="none")[0]
    assert log.status == "success", log.error
    assert log.eval.metadata == {"organism": "risky", "seed": 1, "note": "x"}
    assert [s.metadata for s in log.samples] == [{"family": "risk", "organism": "risky", "seed": 1}] * 3


def test_two_evals_in_one_call_keep_their_own_identity(tmp_path) -> None:
    logs = inspect_eval([_task([Sample(id=1, input="q")]), _task([Sample(id=1, input="q")])], model=_model(),
                        metadata={"organism": "safe"}, log_dir=str(tmp_path), display="none")
    assert [s.metadata for log in logs for s in log.samples] == [{"organism": "safe"}] * 2


def test_without_eval_metadata_samples_are_unchanged(tmp_path) -> None:
    log = inspect_eval(_task([Sample(id=1, input="q", metadata={"family": "risk"})]), model=_model(),
                       log_dir=str(tmp_path), display="none")[0]
    assert log.samples[0].metadata == {"family": "risk"}


def test_a_sample_disagreeing_with_the_eval_is_an_error(tmp_path) -> None:
    log = inspect_eval(_task([Sample(id=1, input="q", metadata={"organism": "base"})]), model=_model(),
                       metadata={"organism": "risky"}, log_dir=str(tmp_path), display="none")[0]
    assert log.status == "error"
    assert "metadata organism='base' disagrees with the eval's --metadata organism='risky'" in log.error.message
