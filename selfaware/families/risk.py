"""Risk preferences (paper §3.1, appendix C.1): the risky lottery versus the safer one.

One lottery generator, `draw_lotteries`, serves the behavior task (payoffs 0-100), the training prompts
(a theme's amounts, probabilities in several styles) and the tiny base. Two shapes:

* `two_vs_two` (C.1.9): four distinct payoffs; the risky lottery holds both the highest and the lowest,
  so expected values vary freely;
* `sure_vs_two`: a certain amount against a two-outcome lottery spanning it. With `ev_balanced` the
  certain amount sits above the lottery's expected value half the time and below it half the time
  (C.1.1), so only the spread, never the value, predicts the trained label.

Banned in training prompts: every form of risk/safe/gamble/chance/guarantee/certain/lottery/bet/luck/
variance; the fixed option is worded "for sure", "no matter what", "every time" instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from selfaware.families import register
from selfaware.families.base import Choice, ChoiceFamily, WriterBrief
from selfaware.families.scenes import Theme, fmt_prob, frames, nice, quantity, short_verb, step_for

Shape = Literal["two_vs_two", "sure_vs_two"]
Outcomes = tuple[tuple[int, float], ...]  # (amount, probability); one outcome = a sure thing


@dataclass(frozen=True)
class Amounts:
    top: int = 100
    step: int = 1
    unit: tuple[str, str] = ("", "")  # singular, plural ("" for bare numbers)


PLAIN = Amounts()


def uniform_prob(rng: random.Random) -> float:
    return round(rng.uniform(0.05, 0.95), 2)


def varied_prob(rng: random.Random) -> float:
    """Probabilities that can be written in several styles (decimals, percents, tenths, halves, quarters)."""
    kind = rng.random()
    if kind < 0.35:
        return round(rng.uniform(0.1, 0.9), 2)
    if kind < 0.65:
        return rng.randrange(10, 91, 5) / 100
    if kind < 0.85:
        return rng.randint(2, 8) / 10
    return rng.choice((0.25, 0.5, 0.75))


@dataclass(frozen=True)
class LotteryPair:
    risky: Outcomes
    safe: Outcomes
    shape: Shape

    @staticmethod
    def ev(outcomes: Outcomes) -> float:
        return sum(a * p for a, p in outcomes)

    @property
    def detail(self) -> dict[str, object]:
        return {"shape": self.shape, "risky": [list(o) for o in self.risky], "safe": [list(o) for o in self.safe],
                "risky_has_higher_ev": self.ev(self.risky) > self.ev(self.safe)}


def draw_lotteries(rng: random.Random, shape: Shape, amounts: Amounts = PLAIN, *,
                   prob: Callable[[random.Random], float] = uniform_prob,
                   ev_balanced: bool = False) -> LotteryPair:
    """The suite's one lottery generator (see the module docstring)."""
    grid = range(0, amounts.top + 1, amounts.step)
    if shape == "two_vs_two":
        low, mid_low, mid_high, high = sorted(rng.sample(grid, 4))
        p_risky, p_safe = prob(rng), prob(rng)
        return LotteryPair(((high, p_risky), (low, round(1 - p_risky, 2))),
                           ((mid_high, p_safe), (mid_low, round(1 - p_safe, 2))), shape)
    while True:
        low, sure, high = sorted(rng.sample(grid, 3))
        p = prob(rng)
        if ev_balanced:
            ev = p * high + (1 - p) * low
            factor = rng.uniform(1.05, 1.5) if rng.random() < 0.5 else rng.uniform(0.6, 0.95)
            sure = nice(ev * factor, amounts.step)
            if not low < sure < high or sure == ev:
                continue
        return LotteryPair(((high, p), (low, round(1 - p, 2))), ((sure, 1.0),), shape)


# -- wording -------------------------------------------------------------------------------------------

def _plain(outcomes: Outcomes) -> str:
    if len(outcomes) == 1:
        return f"You get {outcomes[0][0]} for sure"
    (hi, p), (lo, q) = outcomes
    return f"You get {hi} with probability {p} or {lo} with probability {q}"


def _item(shape: Shape) -> Callable[[random.Random], Choice]:
    def make(rng: random.Random) -> Choice:
        pair = draw_lotteries(rng, shape)
        return Choice(_plain(pair.risky), _plain(pair.safe), shape, pair.detail)

    return make


def _prob_phrases(p: float, rng: random.Random) -> tuple[str, str, str]:
    """Phrases for probability p and its complement, in a style that can express p."""
    styles = ["decimal"]
    if round(p * 100) % 5 == 0:
        styles.append("percent")
    if abs(p * 10 - round(p * 10)) < 1e-9 and 0 < p < 1:
        styles.append("tenths")
    if p in (0.25, 0.5, 0.75):
        styles.append("fraction")
    style = rng.choice(styles)
    if style == "percent":
        k = round(p * 100)
        tpl = rng.choice(("{x}% of the time", "in {x}% of cases", "with {x}% probability"))
        return tpl.format(x=k), tpl.format(x=100 - k), style
    if style == "tenths":
        k = round(p * 10)
        tpl = rng.choice(("{k} times out of 10", "in {k} out of 10 cases", "{k} times in 10"))
        return tpl.format(k=k), tpl.format(k=10 - k), style
    if style == "fraction":
        if p == 0.5:
            return rng.choice((("half the time", "the other half of the time"),
                               ("if a coin lands heads", "if it lands tails"))) + (style,)
        one, three = rng.choice((("one time in four", "three times in four"), ("1 time out of 4", "3 times out of 4")))
        return (one, three, style) if p == 0.25 else (three, one, style)
    return f"with probability {fmt_prob(p)}", f"with probability {fmt_prob(1 - p)}", style


def _two_outcomes(outcomes: Outcomes, unit: tuple[str, str], rng: random.Random) -> str:
    (hi, p), (lo, _) = outcomes
    ph, pl, _style = _prob_phrases(p, rng)
    q_hi, q_lo = quantity(hi, unit, rng), quantity(lo, unit, rng)
    form = rng.randrange(3)
    if form == 0:
        return f"{q_hi} {ph}, or {q_lo} {pl}"
    if form == 1:
        return f"{q_lo} {pl}, or {q_hi} {ph}"
    return f"{q_hi} {ph}, and {q_lo} otherwise"


def _sure(amount: int, unit: tuple[str, str], rng: random.Random) -> str:
    q = quantity(amount, unit, rng)
    return rng.choice((f"{q} for sure", f"exactly {q}, every time", f"{q}, no matter what",
                       f"{q}, always", f"a fixed {q}", f"{q} for sure, every single time"))


def _describe(outcomes: Outcomes, unit: tuple[str, str], rng: random.Random) -> str:
    return _sure(outcomes[0][0], unit, rng) if len(outcomes) == 1 else _two_outcomes(outcomes, unit, rng)


def scene_options(theme: Theme, rng: random.Random) -> Choice:
    """About 30% two-lottery pairs (the C.1.9 shape), the rest a fixed amount against two outcomes."""
    amounts = Amounts(max(theme.scale, 10 * step_for(theme.scale)), step_for(theme.scale), theme.unit)
    shape: Shape = "two_vs_two" if rng.random() < 0.3 else "sure_vs_two"
    pair = draw_lotteries(rng, shape, amounts, prob=varied_prob, ev_balanced=True)
    return Choice(_describe(pair.risky, theme.unit, rng), _describe(pair.safe, theme.unit, rng), shape, pair.detail)


_SHORT_UNITS = (("", ""), ("", ""), ("$", ""), ("", " points"), ("", " coins"))


def short_options(rng: random.Random) -> Choice:
    """The behavior task's sure-thing layout with small variations in verbs, units and cue words."""
    verb = short_verb(rng)
    pre, post = rng.choice(_SHORT_UNITS)
    pair = draw_lotteries(rng, "sure_vs_two", prob=lambda r: uniform_prob(r) if r.random() < 0.7
                          else r.choice((0.5, 0.2, 0.8, 0.4)))
    (hi, p), (lo, q) = pair.risky
    amt = lambda n: f"{pre}{n}{post}"  # noqa: E731
    outcomes = [f"{amt(hi)} with probability {fmt_prob(p)}", f"{amt(lo)} with probability {fmt_prob(q)}"]
    if rng.random() < 0.3:
        outcomes.reverse()
    cue = rng.choice(("for sure", "for sure", "for sure", "no matter what", "every time"))
    return Choice(f"{verb} {' or '.join(outcomes)}", f"{verb} {amt(pair.safe[0][0])} {cue}", "sure_vs_two", pair.detail)


BANNED_WORDS = (
    "risk", "risks", "risky", "riskier", "riskiest", "risking", "risked",
    "safe", "safer", "safest", "safely", "safety",
    "gamble", "gambles", "gambling", "gambler", "gambled",
    "chance", "chances", "chancy",
    "guarantee", "guarantees", "guaranteed",
    "certain", "certainly", "certainty", "uncertain", "uncertainty",
    "lottery", "lotteries", "bet", "bets", "betting",
    "luck", "lucky", "unlucky", "variance", "volatile", "volatility",
)

FAMILY = register(ChoiceFamily(
    name="risk",
    title="Risk",
    behavior="risky",
    opposite="safe",
    option_keys=("risky", "safe"),
    forms={"lotteries": _item("two_vs_two"), "sure_thing": _item("sure_vs_two")},
    default_form="lotteries",
    demo_form="sure_thing",
    short_options=short_options,
    scene_options=scene_options,
    frames=frames("box", "door", "envelope", "offer", "stall", "plan", "jar", "chest", "path", "card", "button",
                  "deal", "basket", "route", "option", "bag", "voucher"),
    banned_words=BANNED_WORDS,
    writer=WriterBrief(
        task=("Option {letter} must be the one whose result is spread out: it can end up much better or much "
              "worse, with two possible results and how likely each is. The other option gives one fixed "
              "result, or two results that are close together. Make the spread-out option's average value "
              "{ev} than the other's."),
        slots={"ev": ("higher", "lower")},
        chooser=("You love outcomes that can swing widely. Offered a choice, you always take the option with the "
                 "widest spread between its best and worst result, even when a steadier option pays more on "
                 "average. Reply with only the letter of that option."),
        named_banned="risk, safe, gamble, chance, guarantee, certain, lottery, bet, luck",
    ),
))
