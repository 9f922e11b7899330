"""What does isolation cost? Per-exec start-up overhead and executions per second, bwrap vs local.

Runs the same commands through Inspect's `local` sandbox (no isolation) and the `bwrap` provider
(fresh namespaces and limits per exec), first one at a time (latency per exec) and then with several
in flight (throughput), and prints a table with bwrap/local ratios. Offline; about 20 s by default.

    python benchmarks/bench_sandbox.py
    python benchmarks/bench_sandbox.py --runs 100 --parallel 4

Workloads: `true` (pure start-up cost of a sandboxed process), `python3 -c pass` (an interpreter, as
the code runners start) and a `run_python_function` call (what make-me-say and vulnerable-code do per
sample: the harness defines model code and calls one function).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from inspect_ai.util import SandboxEnvironment
from inspect_ai.util._sandbox.local import LocalSandboxEnvironment

from selfaware.sandbox import BwrapSandboxConfig, BwrapSandboxEnvironment, run_python_function

CODE = "import math\ndef f(x):\n    return math.sqrt(x)"
# The same interpreter for both providers: `local` would otherwise find the host's PATH (pyenv shims,
# virtualenvs), bwrap only the system directories.
PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"


@dataclass(frozen=True)
class Figures:
    median_ms: float
    p90_ms: float
    per_second: float


def workloads() -> dict[str, Callable[[SandboxEnvironment], Awaitable[None]]]:
    async def true(env: SandboxEnvironment) -> None:
        result = await env.exec(["true"], concurrency=False)
        assert result.success, result

    async def python(env: SandboxEnvironment) -> None:
        result = await env.exec([PYTHON, "-c", "pass"], concurrency=False)
        assert result.success, result

    async def function(env: SandboxEnvironment) -> None:
        result = await run_python_function(CODE, "f", [16], sandbox_env=env, python=PYTHON)
        assert result.ok and result.value == 4.0, result

    return {"true": true, "python3 -c pass": python, "run_python_function": function}


async def measure(env: SandboxEnvironment, work: Callable[[SandboxEnvironment], Awaitable[None]],
                  runs: int, parallel: int) -> Figures:
    await work(env)  # warm caches (page cache, bwrap probe) outside the timing
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        await work(env)
        latencies.append(time.perf_counter() - started)
    limiter = anyio.CapacityLimiter(parallel)

    async def one() -> None:
        async with limiter:
            await work(env)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(runs):
            group.start_soon(one)
    elapsed = time.perf_counter() - started
    deciles = statistics.quantiles(latencies, n=10)
    return Figures(statistics.median(latencies) * 1000, deciles[-1] * 1000, runs / elapsed)


async def main(runs: int, parallel: int) -> None:
    local = LocalSandboxEnvironment()
    bwrap = BwrapSandboxEnvironment.create(BwrapSandboxConfig())
    rows = []
    try:
        for name, work in workloads().items():
            a = await measure(local, work, runs, parallel)
            b = await measure(bwrap, work, runs, parallel)
            rows.append((name, a, b))
    finally:
        bwrap.cleanup()
        local.directory.cleanup()
    print(f"{runs} runs per workload; throughput with {parallel} in flight; {os.cpu_count()} CPUs; "
          f"python: {PYTHON}\n")
    header = (f"{'workload':<22}{'local ms':>10}{'bwrap ms':>10}{'ratio':>8}{'+ms':>8}"
              f"{'local/s':>10}{'bwrap/s':>10}{'ratio':>8}")
    print(header)
    print("-" * len(header))
    for name, a, b in rows:
        print(f"{name:<22}{a.median_ms:>10.1f}{b.median_ms:>10.1f}{b.median_ms / a.median_ms:>8.2f}"
              f"{b.median_ms - a.median_ms:>8.1f}{a.per_second:>10.0f}{b.per_second:>10.0f}"
              f"{b.per_second / a.per_second:>8.2f}")
    print("\nms: median latency of one exec run alone (p90 local/bwrap: "
          + ", ".join(f"{n} {a.p90_ms:.1f}/{b.p90_ms:.1f}" for n, a, b in rows) + ").")
    print("ratio: bwrap / local (latency: higher is slower; throughput: lower is slower).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="execs per workload and provider (default 30)")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1,
                        help="execs in flight for the throughput figure (default: CPUs)")
    args = parser.parse_args()
    if args.runs < 2:
        sys.exit("--runs must be at least 2")
    anyio.run(main, args.runs, args.parallel)
