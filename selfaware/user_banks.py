"""A bank the user points a task at (`-T bank=PATH`): a file in the suite's format, or the paper's own YAML
banks (a file or a folder), converted on load. Either is checked against the family's word lists.

Kept apart from `selfaware.banks` (the format) and `selfaware.paper_banks` (the converter), which it
both uses, so that neither of those depends on the other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from selfaware.banks import Bank, BankError, _check_word_lists, _checked_bank_file, _read_yaml, load_bank, load_words, user_path
from selfaware.paper_banks import load_paper_banks
from selfaware.validation import describe_validation_error

logger = logging.getLogger(__name__)


def bank_from_path(path: Path | str, family: str) -> Bank:
    """A user's bank for `family`: a file in the suite's format, or the paper's YAML banks (a file or a
    folder, converted by `selfaware.paper_banks`). Either is scored with the family's word lists."""
    given = str(path)
    path = user_path(path)
    if not path.exists():
        raise BankError(f"-T bank={given}: {path} does not exist")
    if path.is_dir() and not any(path.glob("*.yaml")):
        raise BankError(f"-T bank={given}: folder {path} holds no *.yaml bank")
    if path.is_file():
        top = _read_yaml(path)
        if isinstance(top, dict):  # the suite's format; the paper's is a list
            return _checked_bank_file(path, family)
        if not isinstance(top, list):
            got = "an empty file" if top is None else f"a {type(top).__name__}"
            raise BankError(f"{path}:1: field <root>: expected a bank (a mapping, see datasets/README.md) or a "
                            f"list of the paper's entries; got {got}")
    own = load_bank(family)
    lists = load_words(family).lists
    default_words = "attitude" if "attitude" in lists else next(iter(lists))
    banks = load_paper_banks(path, family=family, behavior=own.behavior, opposite=own.opposite,
                             default_words=default_words)
    for skipped in banks.skipped:
        logger.warning("%s: skipped paper entry %s: %s", skipped.file, skipped.name, skipped.reason)
    questions = _distinct_ids(banks)
    if not questions:
        raise BankError(f"{path}: no paper question could be converted")
    try:
        bank = Bank(family=family, behavior=own.behavior, opposite=own.opposite,
                    description=f"converted from {path}", questions=questions)
    except ValidationError as e:
        raise BankError(describe_validation_error(f"{path}: invalid", e)) from None
    return _check_word_lists(bank, path)


def _distinct_ids(banks: dict[str, Bank]) -> list:
    """Every converted question; an id that two files of the folder both use (the paper reuses some) is
    renamed `<file stem>__<id>` in each, so no question is lost or silently replaced."""
    import re
    from collections import Counter

    counts = Counter(q.id for b in banks.values() for q in b.questions)
    out = []
    for name, bank in banks.items():
        stem = re.sub(r"[^a-z0-9_]+", "_", Path(name).stem.lower()).strip("_") or "bank"
        for q in bank.questions:
            out.append(q if counts[q.id] == 1 else q.model_copy(update={"id": f"{stem}__{q.id}"}))
    return out
