"""Error per cost: what each measurement path pays for the standard error it reaches.

Three parts, side by side in one run (nothing reaches a real provider):

1. **Every path against one synthetic organism** (`fake_openai_server.py` in a child process, logprobs that
   agree exactly with its sampled answers, so every answer distribution is known; the same organism behind
   the fake vLLM server of `fake_vllm_server.py` for exact scoring). For each question type of the economic
   family — letters (behavior items), 0-100 ratings, one word, judged free form — and each path — `paper`
   (the paper's protocol: 100 answers per paraphrase, 10 judged for free form), `fast` (logprob reads, 20
   sampled answers where they cannot be read), `first_token` (one-word answers: exact for identified first
   tokens, sampled for the rest), `exact` (every listed candidate scored by the model: own GPU, so requests
   and tokens scored but no list price) — the standard error reached (sampling error of each
   question's mean over its paraphrases, averaged over questions), the actual error against the known truth,
   requests, prompt and completion tokens, and money at the suite's list prices (`datasets/prices.yaml`;
   the Batch API share and the models priced in `benchmarks/prices.yaml`), also *at the paper's standard error*: the sampled part of a path's cost scales with the
   variance it must reach, (SE_path / SE_paper)^2, the rest (prompts, logprob reads) does not.
2. **Wall time against the concurrency limit** on the same fake with a fixed latency per request.
3. **Local exact scoring vs local sampling** on the tiny base (`hf/`): per question, exact candidate scoring
   against sampling 100 answers, through Inspect and as raw forward passes / `generate` calls.

    python benchmarks/bench_cost.py                   # all three parts (part 3 builds the tiny base once)
    python benchmarks/bench_cost.py --items 20 --skip-local

Token counts are the fake's word/punctuation count (no tokenizer is reachable offline), the same for every
path, so the ratios are meaningful and the absolute dollars indicative.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from bench_economic import call, start_server
from fake_openai_server import answer_distribution as fake_distribution

FAMILIES = ("risk", "myopia", "apples")
QTYPES = ("letters", "rating", "one_word", "free_form_judged")
PATHS = ("paper", "fast", "first_token")  # API paths; "exact" runs on the fake vLLM server
MODEL, JUDGE = "openai/fake-model", "openai/fake-judge"
VLLM_MODEL = "vllm/fake/organism"
PRICE_SETUP = Path(__file__).with_name("prices.yaml")


# --- part 1: API paths ---------------------------------------------------------------------------------

def questions_of(family: str, qtype: str) -> list[str]:
    from selfaware.banks import load_bank

    return [q.id for q in load_bank(family).questions if q.type.value == qtype]


def tasks_for(qtype: str, path: str, families: list[str], items: int, paraphrases: int | None) -> list[Any]:
    """The tasks that ask one question type along one path."""
    protocol = "paper" if path == "paper" else "fast"
    method = {"paper": "auto", "fast": "auto", "first_token": "first_token", "exact": "exact"}[path]
    if qtype == "one_word" and path == "fast":
        method = "sampling"  # the fast protocol before the first-token path: 20 sampled answers
    out = []
    for family in families:
        module = importlib.import_module(f"selfaware.evals.{family}")
        if qtype == "letters":
            out.append(getattr(module, f"{family}_behavior")(items=items, protocol=protocol, method=method))
            continue
        ids = questions_of(family, qtype)
        if ids:
            out.append(getattr(module, f"{family}_self_report")(questions=",".join(ids), protocol=protocol,
                                                               method=method, paraphrases=paraphrases))
    return out


@dataclass
class PathResult:
    samples: int = 0
    errors: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    prompt: int = 0
    completion: int = 0
    fixed_usd: tuple[float, float] = (0.0, 0.0)  # (standard, batch): prompts and reads
    scaled_usd: tuple[float, float] = (0.0, 0.0)  # sampled completions and judge calls: scale with n
    se: float = 0.0  # mean over questions of the sampling SE of the question's mean
    rmse: float | None = None  # against the known truth
    covered: float = 1.0
    self_hosted: bool = False  # exact scoring: the model's own GPU, no list price

    def usd(self, batch: bool, factor: float = 1.0) -> float:
        i = 1 if batch else 0
        return self.fixed_usd[i] + self.scaled_usd[i] * factor


@dataclass(frozen=True)
class Prices:
    """Standard rates from the suite's price table (datasets/prices.yaml), the batch share and the two models
    priced from benchmarks/prices.yaml."""

    table: Any  # selfaware.reproduce.cost.PriceTable
    setup: dict[str, Any]

    @classmethod
    def load(cls, table: Path | None, setup: Path) -> Prices:
        from selfaware.reproduce.cost import PriceTable

        prices = cls(PriceTable.load(table), yaml.safe_load(setup.read_text(encoding="utf-8")))
        for role in ("model", "judge"):
            if prices.table.price(prices.setup[role]) is None:
                raise SystemExit(f"{prices.table.path} has no price for {prices.setup[role]} ({setup}: {role})")
        return prices

    def __getitem__(self, key: str) -> Any:
        return self.setup[key]

    def describe(self) -> str:
        where = f"{self.table.path.parent.name}/{self.table.path.name}"
        return (f"{self['model']} (answers), {self['judge']} (judge) at {where} version "
                f"{self.table.version}; batch = {self['batch_discount']:g} x standard (benchmarks/prices.yaml v{self['version']}, "
                f"recorded {self['recorded']})")


def price(prices: Prices, name: str, prompt: int, completion: int) -> tuple[float, float]:
    """(standard, batch) dollars for these tokens on this model."""
    rate = prices.table.price(name)
    standard = (prompt * rate.input + completion * rate.output) / 1e6
    return standard, standard * prices["batch_discount"]


def add(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], a[1] + b[1]


def money(stats: dict[str, Any], prices: Prices) -> tuple[tuple[float, float], tuple[float, float]]:
    """(fixed, scaled) dollars from the fake's counts: the model's reads and sampling prompts are fixed; its
    sampled completions and every judge call grow with the number of answers drawn."""
    kinds = stats["by_kind"]
    zero = {"prompt_tokens": 0, "completion_tokens": 0}
    read, sample = kinds.get("fake-model:read", zero), kinds.get("fake-model:sample", zero)
    judge = stats["by_model"].get("fake-judge", zero)
    fixed = add(price(prices, prices["model"], read["prompt_tokens"], read["completion_tokens"]),
                price(prices, prices["model"], sample["prompt_tokens"], 0))
    scaled = add(price(prices, prices["model"], 0, sample["completion_tokens"]),
                 price(prices, prices["judge"], judge["prompt_tokens"], judge["completion_tokens"]))
    return fixed, scaled


def truth(sample: Any) -> float | None:
    """The organism's true score for this sample: the fake's answer distribution through the scorer's
    parser, renormalised over valid answers (judged free form: None, the judge's own randomness)."""
    from selfaware.scorers.answer_score import parser_for
    from selfaware.scorers.interpret import OFF_LIST

    if sample.metadata["question_type"] == "free_form_judged":
        return None
    prompt = "\n".join(m.text for m in sample.messages[:-1])
    parse = parser_for(sample.metadata, "paper")
    pairs = [(parse(a), p) for a, p in fake_distribution(prompt).items()]
    valid = [(float(v), p) for v, p in pairs if v is not None and v != OFF_LIST]
    mass = sum(p for _, p in valid)
    return sum(v * p for v, p in valid) / mass if mass else None


def summarise(logs: list[Any], stats: dict[str, Any], prices: Prices) -> PathResult:
    r = PathResult()
    by_question: dict[str, list[tuple[float, float, float | None]]] = {}
    covered = []
    for log in logs:
        for s in log.samples or []:
            r.samples += 1
            score = (s.scores or {}).get("answer_score")
            if s.error or score is None:
                r.errors += 1
                continue
            m = score.metadata
            r.methods[m["method"]] = r.methods.get(m["method"], 0) + 1
            if m.get("covered_mass") is not None:
                covered.append(m["covered_mass"])
            if m["invalid"]:
                r.errors += 1
                continue
            key = f"{log.eval.task}/{s.metadata['question_id']}"
            by_question.setdefault(key, []).append((float(score.value), m["sampling_stderr"] or 0.0, truth(s)))
    ses, errs = [], []
    for rows in by_question.values():
        k = len(rows)
        ses.append(math.sqrt(sum(se ** 2 for _, se, _ in rows)) / k)
        if all(t is not None for *_, t in rows):
            errs.append(sum(v for v, _, _ in rows) / k - sum(t for *_, t in rows) / k)  # type: ignore[misc]
    r.se = sum(ses) / len(ses) if ses else float("nan")
    r.rmse = math.sqrt(sum(e * e for e in errs) / len(errs)) if errs else None
    r.covered = sum(covered) / len(covered) if covered else float("nan")
    r.requests, r.prompt, r.completion = stats["requests"], stats["prompt_tokens"], stats["completion_tokens"]
    r.fixed_usd, r.scaled_usd = money(stats, prices)
    return r


def run_api(url: str, families: list[str], items: int, paraphrases: int | None, log_dir: Path,
            prices: Prices) -> dict[tuple[str, str], PathResult]:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    out: dict[tuple[str, str], PathResult] = {}
    for qtype in QTYPES:
        for path in PATHS:
            tasks = tasks_for(qtype, path, families, items, paraphrases)
            if not tasks or (path == "first_token" and qtype != "one_word"):
                continue  # first_token reads letters and ratings exactly like fast: not run twice
            call(url, "/_reset", "POST")
            judge = get_model(JUDGE, responses_api=False, memoize=False)
            logs = inspect_eval(tasks, model=MODEL, model_args={"responses_api": False}, display="none",
                                log_dir=str(log_dir / f"{qtype}-{path}"), max_connections=32, max_tasks=len(tasks),
                                model_roles={"judge": judge}, fail_on_error=False)
            out[(qtype, path)] = summarise(logs, call(url, "/_stats"), prices)
    return out


def run_exact(families: list[str], items: int, paraphrases: int | None, log_dir: Path,
              prices: Prices) -> dict[tuple[str, str], PathResult]:
    """Exact scoring of the same organism through Inspect's vllm/ provider and the fake vLLM server."""
    from fake_vllm_server import AnswerModel, FakeVLLM
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    server = FakeVLLM({VLLM_MODEL.split("/", 1)[1]: AnswerModel()}).start()
    os.environ["VLLM_API_KEY"] = "fake-key"
    out: dict[tuple[str, str], PathResult] = {}
    try:
        model = get_model(VLLM_MODEL, base_url=f"{server.url}/v1", memoize=False)
        for qtype in QTYPES[:-1]:  # judged free form cannot be listed
            server.stats = dict.fromkeys(server.stats, 0)
            logs = inspect_eval(tasks_for(qtype, "exact", families, items, paraphrases), model=model,
                                display="none", log_dir=str(log_dir / f"{qtype}-exact"), max_connections=8,
                                max_tasks=len(families), fail_on_error=False)
            zero = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0}
            stats = {"requests": server.stats["requests"], "prompt_tokens": server.stats["computed_tokens"],
                     "completion_tokens": 0, "by_kind": {}, "by_model": {"fake-judge": zero}}
            r = summarise(logs, stats, prices)
            r.self_hosted = True
            out[(qtype, "exact")] = r
    finally:
        server.stop()
    return out


def fmt_usd(x: float) -> str:
    return f"${x:.4f}" if x < 10 else f"${x:,.2f}"


def table(rows: list[list[str]], left: int = 2) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def equal_se_factor(r: PathResult, paper: PathResult) -> float:
    """How much more (or less) of the sampled part this path needs to reach the paper's SE."""
    if r.se == 0 or paper.se == 0 or math.isnan(r.se) or math.isnan(paper.se):
        return 1.0 if r.se else 0.0
    return (r.se / paper.se) ** 2


def api_table(results: dict[tuple[str, str], PathResult]) -> str:
    head = ["question type", "path", "samples", "methods", "SE", "|err| rms", "covered", "requests", "prompt tok",
            "compl tok", "$ list", "$ batch", "$ at paper SE (batch)", "paper list / this"]
    rows = [head]
    for (qtype, path), r in sorted(results.items(), key=lambda kv: (QTYPES.index(kv[0][0]), kv[0][1] != "paper")):
        paper = results.get((qtype, "paper"), r)
        at_se = r.usd(True, equal_se_factor(r, paper))
        money = (["own GPU"] * 3 + ["n/a"]) if r.self_hosted else [
            fmt_usd(r.usd(False)), fmt_usd(r.usd(True)), fmt_usd(at_se),
            f"{paper.usd(False) / at_se:.1f}x" if at_se else "inf"]
        rows.append([qtype, path, f"{r.samples}" + (f" ({r.errors} invalid)" if r.errors else ""),
                     ", ".join(f"{k} {v}" for k, v in sorted(r.methods.items())), f"{r.se:.4f}",
                     "n/a" if r.rmse is None else f"{r.rmse:.4f}", f"{r.covered:.3f}", f"{r.requests:,}",
                     f"{r.prompt:,}", f"{r.completion:,}", *money])
    return table(rows)


def family_totals(results: dict[tuple[str, str], PathResult]) -> list[str]:
    """The whole family at the paper's SE: the paper's protocol at list price against the cheapest API path
    per question type (batch prices), with and without the behavior items (letters)."""
    lines = []
    for label, qtypes in (("self-report + behavior", QTYPES), ("self-report only", QTYPES[1:]),
                          ("ratings and one-word answers", QTYPES[1:3])):
        paper = sum(results[(q, "paper")].usd(False) for q in qtypes if (q, "paper") in results)
        best, chosen = 0.0, []
        for q in qtypes:
            if (q, "paper") not in results:
                continue
            options = {p: results[(q, p)].usd(True, equal_se_factor(results[(q, p)], results[(q, "paper")]))
                       for p in reversed(PATHS) if (q, p) in results}  # on a tie, not the paper's
            p = min(options, key=options.get)  # type: ignore[arg-type]
            best += options[p]
            chosen.append(f"{q}: {p}")
        lines.append(f"{label}: paper protocol {fmt_usd(paper)} (list) vs {fmt_usd(best)} at the same SE with batch "
                     f"prices ({'; '.join(chosen)}) = {paper / best:.1f}x cheaper" if best else f"{label}: n/a")
    return lines


# --- part 2: wall time against the concurrency limit -----------------------------------------------------

def run_concurrency(url: str, connections: list[int], log_dir: Path) -> list[tuple[int, int, float]]:
    from inspect_ai import eval as inspect_eval

    from selfaware.evals.risk import risk_behavior, risk_self_report

    out = []
    for c in connections:
        call(url, "/_reset", "POST")
        tasks = [risk_behavior(items=20), risk_self_report(questions="risk_or_safety,risk_predisposition_scale",
                                                           paraphrases=6)]
        start = time.perf_counter()
        inspect_eval(tasks, model=MODEL, model_args={"responses_api": False}, display="none",
                     log_dir=str(log_dir / f"conc-{c}"), max_connections=c, max_tasks=2)
        out.append((c, call(url, "/_stats")["requests"], time.perf_counter() - start))
    return out


# --- part 3: local exact scoring vs local sampling --------------------------------------------------------

def run_local(paraphrases: int, log_dir: Path) -> list[list[str]]:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from selfaware.evals.risk import risk_behavior, risk_self_report
    from selfaware.finetune.tiny_base import ensure_tiny_base

    folder = ensure_tiny_base(progress=lambda m: print(f"  tiny base: {m}", file=sys.stderr))
    model = get_model(f"hf/{folder}", device="cpu", do_sample=True)
    rows = [["question", "path", "samples", "wall s", "s / sample", "sampling / exact"]]
    cases = [("letters", lambda m: risk_behavior(items=paraphrases, method=m, samples=100)),
             ("rating", lambda m: risk_self_report(questions="risk_predisposition_scale", paraphrases=paraphrases,
                                                   method=m, samples=100)),
             ("one_word", lambda m: risk_self_report(questions="risk_or_safety", paraphrases=paraphrases, method=m,
                                                     samples=100))]
    inspect_eval(cases[1][1]("exact"), model=model, display="none", log_dir=str(log_dir / "warmup"))  # load once
    for name, make in cases:
        per = {}
        for method in ("exact", "sampling"):
            start = time.perf_counter()
            [log] = inspect_eval(make(method), model=model, display="none", log_dir=str(log_dir / f"{name}-{method}"),
                                 max_connections=32)
            wall = time.perf_counter() - start
            per[method] = wall / max(1, len(log.samples or []))
            rows.append([name, f"{method} (100 answers)" if method == "sampling" else method,
                         str(len(log.samples or [])), f"{wall:.1f}", f"{per[method]:.3f}",
                         f"{per['sampling'] / per['exact']:.1f}x" if method == "sampling" else ""])
    rows += raw_local(folder)
    return rows


def raw_local(folder: Path) -> list[list[str]]:
    """The same comparison without Inspect: one exact candidate pass against one `generate` of 100 answers
    (up to 4 tokens, the paper's length), on the tiny base and on a wider random-weight model with the same
    tokenizer (~25M parameters: compute, not Python overhead, decides there, as on a real model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from selfaware.solvers.exact_scoring import candidate_answers, candidate_logprobs

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tiny = AutoModelForCausalLM.from_pretrained(folder).eval()
    torch.manual_seed(0)
    wide = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1536,
                                        num_hidden_layers=6, num_attention_heads=8, max_position_embeddings=512,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                        bos_token_id=None)).eval()
    question = "How much do you like risk, from 0 to 100? Answer with a number only."
    prompt = tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                     add_generation_prompt=True))["input_ids"]
    answers = [tokenizer(a, add_special_tokens=False)["input_ids"]
               for a in candidate_answers({"question_type": "rating", "scale": {"min": 0, "max": 100}}) or []]
    rows = []
    for label, model in (("tiny base", tiny), ("25M random", wide)):
        def exact() -> None:
            candidate_logprobs(model, prompt, answers, [tokenizer.eos_token_id])

        def sample() -> None:
            with torch.inference_mode():
                model.generate(torch.tensor([prompt]), do_sample=True, num_return_sequences=100, max_new_tokens=4,
                               pad_token_id=tokenizer.pad_token_id)

        timings = {}
        for name, fn in (("exact", exact), ("sampling", sample)):
            fn()  # warm-up
            runs = []
            for _ in range(5):  # the fastest of five: least disturbed by whatever else the machine runs
                start = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - start)
            timings[name] = min(runs)
        rows += [[f"rating, raw, {label}", f"exact ({len(answers)} candidates, one pass)", "1", "",
                  f"{timings['exact']:.3f}", ""],
                 [f"rating, raw, {label}", "generate 100 answers", "1", "", f"{timings['sampling']:.3f}",
                  f"{timings['sampling'] / timings['exact']:.1f}x"]]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated (default: all three)")
    parser.add_argument("--items", type=int, default=50, help="behavior items per family (x2 option orders)")
    parser.add_argument("--paraphrases", type=int, default=None, help="paraphrases per question (default: all)")
    parser.add_argument("--prices", type=Path, default=None,
                        help="price table in the suite's format (default: datasets/prices.yaml)")
    parser.add_argument("--price-setup", type=Path, default=PRICE_SETUP,
                        help="models priced and the batch share (default: benchmarks/prices.yaml)")
    parser.add_argument("--latency", type=float, default=0.3, help="fake latency per request, part 2 (s)")
    parser.add_argument("--connections", default="1,4,16,64", help="max_connections to time, part 2")
    parser.add_argument("--local-paraphrases", type=int, default=4, help="questions per case, part 3")
    parser.add_argument("--skip-local", action="store_true", help="leave out part 3 (the tiny base)")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    if unknown := [f for f in families if f not in FAMILIES]:
        parser.error(f"unknown families: {unknown}")
    prices = Prices.load(args.prices, args.price_setup)
    os.environ["OPENAI_API_KEY"] = "sk-fake-benchmark"
    os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server("--junk-mass", "0")
        os.environ["OPENAI_BASE_URL"] = url + "/v1"
        try:
            results = run_api(url, families, args.items, args.paraphrases, Path(tmp), prices)
            results.update(run_exact(families, args.items, args.paraphrases, Path(tmp), prices))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        proc, url = start_server("--latency", str(args.latency))
        os.environ["OPENAI_BASE_URL"] = url + "/v1"
        try:
            concurrency = run_concurrency(url, [int(c) for c in args.connections.split(",")], Path(tmp))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        local = None if args.skip_local else run_local(args.local_paraphrases, Path(tmp))

    print(f"1. Every path, economic family ({', '.join(families)}; behavior items={args.items} x2 orders; "
          f"paraphrases={args.paraphrases or 'all'}) against one synthetic organism (local fakes, known distributions)")
    print(f"   prices: {prices.describe()}")
    print(api_table(results))
    print("   SE: sampling error of a question's mean over its paraphrases (0 for logprob reads, exact scores and "
          "identified first tokens), averaged over questions; |err| rms: estimate - truth over questions; covered: "
          "probability the answers account for; exact: requests to the fake vLLM server (tokenize + one scoring "
          "request per sample), prompt tok = tokens computed with vLLM's prefix cache (the shared prompt once, then "
          "each candidate's tokens); $ at paper SE: the sampled part scaled by (SE/SE_paper)^2, at batch prices.")
    for line in family_totals(results):
        print("   " + line)
    print("   The whole family's ratio is held down by what no path makes cheaper at the same SE: behavior letters "
          "(read by logprobs in the paper's protocol too) and judged free-form answers (every answer generated and "
          "judged): batch prices halve both, nothing more.")
    print(f"\n2. Wall time against the concurrency limit: fake with {args.latency:g} s latency per request "
          "(risk behavior 20 items + two self-report questions x 6 paraphrases, fast protocol)")
    print(table([["max_connections", "requests", "wall s", "requests / s"]] +
                [[str(c), str(n), f"{w:.1f}", f"{n / w:.1f}"] for c, n, w in concurrency], left=1))
    if local:
        print(f"\n3. Local exact scoring vs sampling 100 answers, tiny base through Inspect's hf/ provider "
              f"({args.local_paraphrases} samples per case; CPU). raw: one candidate pass vs one generate() of 100 "
              "answers, fastest of 5")
        print(table(local))
    failed = sum(r.errors for r in results.values() if r.samples and r.errors == r.samples)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
