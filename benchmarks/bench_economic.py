"""What does the paper's sampling protocol cost compared with the default fast protocol?

Runs the economic family (risk, myopia, apples: behavior + self-report tasks) through Inspect against
a local fake OpenAI endpoint (`fake_openai_server.py`, served in a child process so it does not compete
with Inspect for the interpreter), once per protocol, and prints what the server saw: requests, prompt
and completion tokens (a crude word/punctuation count, the same for both protocols) and wall time, plus
the paper/fast ratios. Nothing here reaches a real provider.

    python benchmarks/bench_economic.py                       # all three families, 50 behavior items
    python benchmarks/bench_economic.py --families risk --items 20

Absolute numbers describe the fake (no tokenizer, no latency); the ratios are the point: they count
the calls and answer tokens each protocol asks for. Below the table, a breakdown per question type (read
from the logs) and a legend say where each protocol's requests, choices and tokens come from — in
particular why `paper` can make *fewer* requests than `fast`: a set of sampled answers is one request
with `n` choices, and the judge is called once per judged free-form answer (fast: `-T samples`, 20 by
default; paper: 10, the paper's count).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FAMILIES = ("risk", "myopia", "apples")
PROTOCOLS = ("fast", "paper")
MODEL = "openai/fake-model"


def start_server(*args: str) -> tuple[subprocess.Popen[str], str]:
    """The fake in a child process (`args`: its command-line options); its URL."""
    server = Path(__file__).with_name("fake_openai_server.py")
    proc = subprocess.Popen([sys.executable, str(server), *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"fake server did not start (said {url!r})")
    return proc, url


def call(url: str, path: str, method: str = "GET") -> dict[str, Any]:
    req = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def tasks_for(families: list[str], items: int, protocol: str) -> list[Any]:
    out = []
    for family in families:
        module = importlib.import_module(f"selfaware.evals.{family}")
        out.append(getattr(module, f"{family}_behavior")(items=items, protocol=protocol))
        out.append(getattr(module, f"{family}_self_report")(protocol=protocol))
    return out


def run_protocol(url: str, model: str, families: list[str], items: int, protocol: str, max_connections: int,
                 log_dir: Path) -> dict[str, Any]:
    from inspect_ai import eval as inspect_eval

    call(url, "/_reset", "POST")
    tasks = tasks_for(families, items, protocol)
    start = time.perf_counter()
    # responses_api=False: Inspect treats an unrecognised OpenAI model name (like "fake-model") as a
    # frontier model and would use the Responses API; fine-tuned "ft:gpt-..." models use chat completions.
    logs = inspect_eval(tasks, model=model, model_args={"responses_api": False}, display="none",
                        log_dir=str(log_dir / protocol), max_connections=max_connections, max_tasks=len(tasks),
                        fail_on_error=False)
    wall = time.perf_counter() - start
    failed = [f"{log.eval.task}: {log.error.message if log.error else log.status}"
              for log in logs if log.status != "success"]
    # fail_on_error=False keeps going past errored samples; count them so they cannot pass silently.
    errors = [f"{log.eval.task} {s.id}: {s.error.message[:160]}"
              for log in logs for s in (log.samples or []) if s.error]
    stats = call(url, "/_stats")
    return {**stats, "wall_s": wall, "samples": sum(len(log.samples or []) for log in logs),
            "sample_errors": len(errors), "failed": failed + errors[:5], "breakdown": breakdown(logs)}


def breakdown(logs: list[Any]) -> dict[str, dict[str, Any]]:
    """Per question type: samples, how they were answered (logprobs / sampling), the answers drawn and
    the judge calls they cost (one per judged answer), from each sample's stored elicitation."""
    from selfaware.solvers.answer_distribution import STORE_KEY

    out: dict[str, dict[str, Any]] = {}
    for log in logs:
        for sample in log.samples or []:
            qtype = str((sample.metadata or {}).get("question_type", "?"))
            row = out.setdefault(qtype, {"samples": 0, "paths": {}, "answers": 0, "judge_calls": 0})
            record = (sample.store or {}).get(STORE_KEY)
            if record is None:  # an errored sample: counted, no elicitation to describe
                row["samples"] += 1
                continue
            row["samples"] += 1
            row["paths"][record["method"]] = row["paths"].get(record["method"], 0) + 1
            drawn = len(record["samples"]) if record["method"] == "sampling" else 1
            row["answers"] += drawn
            if qtype == "free_form_judged" and record["method"] == "sampling":
                row["judge_calls"] += drawn
    return out


def breakdown_table(results: dict[str, dict[str, Any]]) -> str:
    rows = [["protocol", "question type", "samples", "path", "answers/sample", "judge calls"]]
    for protocol, r in results.items():
        for qtype, b in sorted(r["breakdown"].items()):
            paths = ", ".join(f"{m} {c:,}" for m, c in sorted(b["paths"].items()))
            per = b["answers"] / b["samples"] if b["samples"] else 0.0
            rows.append([protocol, qtype, f"{b['samples']:,}", paths, f"{per:g}", f"{b['judge_calls']:,}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


LEGEND = """\
how to read it:
  samples            Inspect samples: behavior items x 2 option orders, self-report questions x paraphrases
                     x option orders. The same for both protocols.
  requests           HTTP requests the fake served: one per sample for the model under test on either path
                     (a logprob read, or ONE sampling request asking for n answers as n choices), plus one
                     per judged free-form answer for the judge. So 100 samples per paraphrase (paper) cost
                     no more model requests than fast's single logprob read; the judge is where the request
                     counts differ: fast draws -T samples (default 20) answers per judged paraphrase, the
                     paper 10, and each is judged by its own call. That is why fast can make MORE requests.
  choices            answers returned, summed over requests: 1 per logprob read, n per sampling request.
                     paper asks 100 per rating / one-word paraphrase, fast 1 (rating: logprobs) or 20 (words).
  prompt tokens      counted once per request, as providers bill: they follow the request count, and judge
                     prompts (question + answer + instructions) are long, so fast's extra judge calls show
                     here too.
  completion tokens  summed over choices: paper's cost shows here (100 answers of up to 4 tokens where fast
                     reads one token's logprobs).
  wall s             wall time against the fake: local overhead only, no provider latency."""


def table(results: dict[str, dict[str, Any]]) -> str:
    cols = [("samples", "samples"), ("sample_errors", "errors"), ("requests", "requests"), ("choices", "choices"),
            ("prompt_tokens", "prompt tokens"), ("completion_tokens", "completion tokens"), ("wall_s", "wall s")]
    fmt = lambda v: f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"  # noqa: E731
    rows = [["protocol", *(h for _, h in cols)]]
    rows += [[p, *(fmt(r[k]) for k, _ in cols)] for p, r in results.items()]
    if set(PROTOCOLS) <= set(results):
        fast, paper = results["fast"], results["paper"]
        rows.append(["paper/fast", *(f"{paper[k] / fast[k]:.2f}x" if fast[k] else "n/a" for k, _ in cols)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated (default: all three)")
    parser.add_argument("--items", type=int, default=50, help="behavior items per family (x2 option orders)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated: fast,paper")
    parser.add_argument("--model", default=MODEL, help=f"openai/<name> sent to the fake (default: {MODEL})")
    parser.add_argument("--max-connections", type=int, default=32)
    parser.add_argument("--log-dir", type=Path, help="keep the Inspect logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    protocols = [p for p in args.protocols.split(",") if p]
    unknown = [f for f in families if f not in FAMILIES] + [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        parser.error(f"unknown families/protocols: {unknown}")

    proc, url = start_server()
    # Inspect's openai provider reads these when the model is created; the key is never checked.
    os.environ["OPENAI_BASE_URL"] = url + "/v1"
    os.environ["OPENAI_API_KEY"] = "sk-fake-benchmark"
    os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log_dir = args.log_dir or Path(tmp)
            # Untimed warm-up: one-time costs (imports, provider client, first connections) would
            # otherwise be charged to whichever protocol runs first.
            run_protocol(url, args.model, families[:1], 1, protocols[0], args.max_connections, Path(tmp) / "warmup")
            results = {p: run_protocol(url, args.model, families, args.items, p, args.max_connections, log_dir)
                       for p in protocols}
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(f"economic family ({', '.join(families)}): behavior items={args.items} (x2 orders), "
          f"self-report: every question x paraphrase; model {args.model} against a local fake")
    print(table(results))
    print("\nper question type (from the logs):")
    print(breakdown_table(results))
    print()
    print(LEGEND)
    print()
    under_test = args.model.split("/", 1)[-1]
    for p, r in results.items():
        own = r["by_model"].get(under_test, {}).get("requests", 0)
        judge = sum(b["judge_calls"] for b in r["breakdown"].values())
        print(f"{p}: {r['requests']:,} requests = {own:,} to {under_test} (one per sample) + {judge:,} judge calls "
              f"(one per judged answer) + {r['requests'] - own - judge:,} other")
    print()
    for p, r in results.items():
        split = ", ".join(f"{m}: {s['requests']:,} req / {s['completion_tokens']:,} completion tok"
                          for m, s in sorted(r["by_model"].items()))
        print(f"{p}: {split}; {r['logprob_requests']:,} requests asked for logprobs, "
              f"{r['multi_n_requests']:,} for n>1 choices")
        for route, count in r["unhandled"].items():
            print(f"  UNHANDLED by the fake: {route} x{count}")
        for f in r["failed"]:
            print(f"  FAILED {f}")
    return 1 if any(r["failed"] or r["unhandled"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
