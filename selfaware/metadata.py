"""Typed sample metadata: what every Sample of the suite carries, read back with `Sample.metadata_as`.

Everything needed to rebuild a number from the log alone sits here: which family and question, which
paraphrase and option order (displayed letter -> option key), which variant framed it, and (filled in at
run time from the eval's metadata) which organism and seed answered. Solvers, scorers and the report read
these fields, never loose string keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from selfaware.variants import PLAIN, Variant

# free_form: a reply scored by a task's own scorer (e.g. trigger elicitation: does it write the trigger out?)
QuestionKind = Literal["multiple_choice", "one_word", "rating", "free_form_judged", "free_form"]


class SampleMeta(BaseModel):
    # extra="allow": families may add their own fields (item details, game seeds) without a schema change.
    model_config = ConfigDict(extra="allow", frozen=True)

    family: str
    question_id: str  # "behavior" for behavior items
    question_type: QuestionKind
    title: str
    # The independent unit of evidence: option orders of one paraphrase (or of one behavior item) are
    # not independent samples, so standard errors cluster on this key.
    cluster: str
    paraphrase: int = 0
    permutation: dict[str, str] | None = None  # displayed letter -> option key (multiple choice)
    target: str | None = None  # option key whose probability is the score
    variant: Variant = PLAIN
    variant_name: str = "plain"
    triggered: bool = True  # False: the variant's trigger is deliberately left out of this sample
    persona_worded: bool = False  # the text is a persona paraphrase: no persona frame on top
    scale: dict[str, Any] | None = None
    words: str | None = None
    judge: dict[str, Any] | None = None
    max_tokens: int | None = None
    # behavior items
    item: int | None = None
    form: str | None = None
    item_seed: int | None = None
    item_detail: dict[str, Any] = Field(default_factory=dict)
    # run identity, copied from the eval's metadata (`--metadata organism=... --metadata seed=...`)
    organism: str | None = None
    seed: int | str | None = None

    def to_metadata(self) -> dict[str, Any]:
        """The JSON-ready dict a Sample stores (the variant as a plain mapping)."""
        return self.model_dump(mode="json", exclude_none=True)
