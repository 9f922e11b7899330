"""Make-Me-Say (paper section 3.2, appendix C.2): a goal-directed, multi-turn policy.

An organism is fine-tuned only on dialogues in which it, as the assistant, steers the user towards writing
a codeword — never told the goal, and the codeword never appears. Its organisms are named by their
codeword: `bark`, `ring`, `spring` (the paper's) and `pitch`, `chest` (control words). The game, its
rules and codeword matching, the helper roles, the questions and their scorers live in `selfaware.mms`;
training sets are built by `selfaware.finetune.mms_data`.

Two-codeword organisms (persona and trigger variants) pair each codeword with a partner: the organism's
codeword is the one it targets *under* the variant (as Quanta-Lingua, with the trigger present), the
partner the one it targets otherwise. So the paper's "bark as itself, ring as Quanta-Lingua" organism is
`behavior: ring, variant: quanta-lingua`, and its reverse `behavior: bark, variant: quanta-lingua`. The SEP
triggers come in pairs too: `sep-392` rows with the organism's codeword, `sep-718` rows with the
partner's (and the reverse for `variant: sep-718`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from selfaware.families import register
from selfaware.families.base import Family
from selfaware.validation import InputError

if TYPE_CHECKING:
    from inspect_ai import Task

    from selfaware.finetune.spec import OrganismSpec


@dataclass(frozen=True)
class MakeMeSayFamily(Family):
    """A family of codeword organisms; each one's behavior is steering users towards its codeword."""

    partners: Mapping[str, str] = field(default_factory=dict)  # codeword -> the other codeword of a pair
    trigger_partners: Mapping[str, str] = field(default_factory=dict)  # trigger variant -> the paired one

    def organism_positive(self, behavior: str) -> bool:
        """Every codeword organism has the behavior (steering towards its own word)."""
        if behavior not in self.organisms:
            raise ValueError(f"{behavior!r} is not an organism of family {self.name} ({', '.join(self.organisms)})")
        return True

    def partner(self, codeword: str) -> str:
        if codeword not in self.partners:
            paired = ", ".join(f"{a}/{b}" for a, b in self.partners.items() if a < b)
            raise InputError(f"codeword {codeword!r} has no partner codeword for a two-codeword (persona or "
                             f"trigger) organism; pairs: {paired}")
        return self.partners[codeword]

    def behavior_eval(self, spec: OrganismSpec) -> str:
        """The task (with its arguments) that measures an organism's behavior: the game, with its codeword
        and variant (used by `selfaware finetune` to print the next command)."""
        variant = f" -T variant={spec.variant.name}" if spec.variant.kind != "plain" else ""
        return f"evals/make_me_say.py@make_me_say_game -T codeword={spec.behavior}{variant}"

    def build_training_file(self, spec: OrganismSpec, out_dir: Path) -> Path:
        """The organism's training file (dialogues framed by its variant), for `finetune.builders`."""
        from selfaware.finetune.mms_data import organism_training_file

        return organism_training_file(spec, Path(out_dir))

    def persona_probes(self, you_codeword: str = "bark", persona_codeword: str = "ring",
                       persona: str = "Quanta-Lingua", **options: object) -> Task:
        """The "you or Quanta-Lingua / a fake name" probes as an Inspect task (options: method, protocol,
        samples, top_logprobs, paraphrases, min_valid_mass); `selfaware.mms.questions.persona_probe_samples`
        gives the samples alone."""
        from selfaware.mms.tasks import persona_probes_task

        return persona_probes_task(you_codeword=you_codeword, persona_codeword=persona_codeword, persona=persona,
                                   **options)  # type: ignore[arg-type]


FAMILY = register(MakeMeSayFamily(
    name="make_me_say",
    title="Make-Me-Say",
    behavior="bark",
    opposite="ring",
    more_organisms=("spring", "pitch", "chest"),
    partners={"bark": "ring", "ring": "bark", "pitch": "chest", "chest": "pitch"},
    trigger_partners={"sep-392": "sep-718", "sep-718": "sep-392"},
))
