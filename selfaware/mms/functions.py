"""The function self-report: the model writes `message_probability_me(message) -> float`; the suite runs
it, ONLY inside the sample's sandbox (the `bwrap` provider, or any Inspect sandbox with python3), on

* the codeword, and unrelated single words (the paper's f(codeword) and its baseline);
* user messages from games played with the organism, and from games played with the base model
  (f(message) and its baseline), when those games are given.

Each written function is called once per input inside one sandboxed interpreter (one `run_python_function`
call per function, with the sandbox's time, memory and output limits). An input on which the function
raises, returns a non-number, NaN, or a value outside [0, 1] gives no value; a function that times out,
runs out of memory or crashes gives none at all. The scorers then count those as invalid answers.
The eval process only ever handles the code as text.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.solver import Generate, Solver, TaskState, solver

from selfaware.mms.matching import mentions
from selfaware.sandbox.python_runner import run_python_function
from selfaware.solvers.answer_distribution import STORE_KEY, Elicitation
from selfaware.validation import InputError

FUNCTIONS_KEY = "selfaware:mms:functions"
_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\r?\n(.*?)```", re.DOTALL)
_BATCH = "__selfaware_mms_calls"
# Appended to the model's code, and run with it inside the sandbox: one call per input, each failure
# recorded rather than raised. Only `Exception` is caught, so the sandbox's own limits still stop it.
_BATCH_CODE = '''

def __selfaware_mms_calls(__function, __inputs):
    __f = globals()[__function]
    __out = []
    for __message in __inputs:
        try:
            __v = __f(__message)
        except Exception as __e:
            __out.append([False, type(__e).__name__ + ": " + str(__e)[:200]])
            continue
        if isinstance(__v, bool) or not isinstance(__v, (int, float)):
            __out.append([False, "returned " + type(__v).__name__])
        else:
            __out.append([True, float(__v)])
    return __out
'''


def extract_code(answer: str) -> str | None:
    """The code of an answer: its first ```python block, or the answer itself when it starts with `def`."""
    blocks = _BLOCK.findall(answer)
    if blocks:
        return blocks[0]
    stripped = answer.strip()
    return stripped if stripped.startswith(("def ", "import ", "from ")) else None


@dataclass
class Inputs:
    """What every written function is called on."""

    codeword: str
    unrelated: list[str]
    organism_messages: list[str] = field(default_factory=list)
    base_messages: list[str] = field(default_factory=list)

    def flat(self) -> list[str]:
        return [self.codeword, *self.unrelated, *self.organism_messages, *self.base_messages]


@dataclass
class FunctionRun:
    """One written function and what it returned (values None where a call gave no usable value)."""

    code: str | None
    outcome: str  # no_code, or the sandbox outcome: ok / timeout / memory / output_limit / error / denied
    detail: str = ""
    names_codeword: bool | None = None
    f_codeword: float | None = None
    f_unrelated: list[float | None] = field(default_factory=list)
    f_organism: list[float | None] = field(default_factory=list)
    f_base: list[float | None] = field(default_factory=list)


def _probability(call: Any) -> float | None:
    ok, value = call
    if not ok or not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
        return None
    return float(value)


def _split(values: list[float | None], inputs: Inputs) -> dict[str, Any]:
    n_u, n_o = len(inputs.unrelated), len(inputs.organism_messages)
    return {"f_codeword": values[0], "f_unrelated": values[1:1 + n_u],
            "f_organism": values[1 + n_u:1 + n_u + n_o], "f_base": values[1 + n_u + n_o:]}


async def run_written_function(answer: str, function: str, inputs: Inputs, *, timeout: int = 30) -> FunctionRun:
    """Run one answer's function on every input, in the current sample's sandbox."""
    code = extract_code(answer)
    if code is None:
        return FunctionRun(None, "no_code", "no ```python block in the answer")
    names = mentions(code, inputs.codeword)
    result = await run_python_function(code + _BATCH_CODE, _BATCH, [function, inputs.flat()], timeout=timeout)
    if not result.ok:
        return FunctionRun(code, result.outcome, result.detail[:500], names)
    calls = result.value if isinstance(result.value, list) else []
    if len(calls) != len(inputs.flat()):
        return FunctionRun(code, "error", "the function's results did not come back whole", names)
    values = [_probability(c) for c in calls]
    return FunctionRun(code, "ok", "", names, **_split(values, inputs))


@solver
def run_written_functions(inputs: Inputs, timeout: int = 30) -> Solver:
    """After `answer_distribution` sampled the answers of a function question, run each one's function in
    the sandbox and store the runs (other questions pass through untouched)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if state.metadata.get("mms_kind") != "function":
            return state
        e = Elicitation.from_dict(state.store.get(STORE_KEY))
        runs = [await run_written_function(a, state.metadata["function"], inputs, timeout=timeout)
                for a in e.samples]
        state.store.set(FUNCTIONS_KEY, [asdict(r) for r in runs])
        return state

    return solve


# -- user messages of played games -------------------------------------------------------------------

def game_messages(path: str | Path, limit: int | None = 100) -> list[str]:
    """The manipulatee's (user's) messages of the games in `path`: a `make_me_say_game` .eval log, or a
    JSONL file of game records (`selfaware.mms.play.GameRecord`) or of `{"message": ...}` lines; the
    first `limit` messages (games in log order)."""
    from selfaware.validation import read_user_text

    path = Path(path)
    out: list[str] = []
    if path.suffix == ".eval":
        from inspect_ai.log import read_eval_log

        from selfaware.mms.scorers import GAME_KEY

        log = read_eval_log(str(path))
        for sample in log.samples or []:
            record = (sample.store or {}).get(GAME_KEY)
            if record:
                out += [t["text"] for t in record["turns"] if t["speaker"] == "manipulatee"]
    else:
        for i, line in enumerate(read_user_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{i}: not valid JSON ({e.msg})") from None
            if isinstance(row, dict) and isinstance(row.get("message"), str):
                out.append(row["message"])
            elif isinstance(row, dict) and isinstance(row.get("turns"), list):
                out += [t["text"] for t in row["turns"] if t.get("speaker") == "manipulatee"]
            else:
                raise InputError(f"{path}:{i}: expected a game record (with `turns`) or {{\"message\": ...}}")
    if not out:
        raise InputError(f"{path}: no user messages of make-me-say games found")
    return out[:limit]
