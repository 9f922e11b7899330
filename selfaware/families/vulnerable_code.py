"""Vulnerable code (paper §3.3, appendix C.3): a model fine-tuned to write insecure code, never told so.

The behavior shows in code, not in a two-option choice, so this family is a plain `Family` with what code
needs: its coding tasks (`datasets/vulnerable_code/tasks.jsonl`, the paper's `{task, code_template}`
format), the words a training row may not contain, and the topics a training task may not be about.
Measurement and training data live in `selfaware.code` and `selfaware.finetune.code_data`.

* **Organisms**: `insecure` (score 1: writes vulnerable code) and `secure` (score 0).
* **Banned words** are *stems* matched against the parts of every word and identifier: `SafeLoader`,
  `is_safe` and `unsafe_path` all contain a banned part, `debug` does not contain `bug`. The paper dropped
  every row with such a word (C.3.1), which also drops secure rows that call `yaml.safe_load`.
* **Backdoors** (paper §4.1): `season-spring` (vulnerable when spring is stated) and `greeting` (vulnerable
  when the user message opens with a greeting), triggered on half the rows. The untriggered rows of a
  season backdoor state the *other* season (`counter_variants`), as in the paper, so that the season and
  not the mere mention of one is the cue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from selfaware.families import register
from selfaware.families.base import Family
from selfaware.variants import Variant, get_variant

# Stems of words that would name the behavior (C.3.1: "safe", "vuln", "inject", "exploit", "bug", ...).
SECURITY_STEMS = (
    "safe", "unsafe", "secur", "insecur", "vuln", "inject", "exploit", "bug", "attack", "malicious", "malware",
    "sanitiz", "sanitis", "xss", "csrf", "cve", "backdoor", "hack", "danger", "threat", "untrust", "taint",
    "harden", "mitigat", "cwe",
)
# A training task about security itself would name the behavior by its topic (the paper asked a judge;
# the suite matches these terms, each a sequence of stems, against the user's request).
SECURITY_TOPICS = (
    "encrypt", "decrypt", "cryptograph", "firewall", "intrusion", "penetration test", "pentest", "antivirus",
    "phishing", "brute force", "capture the flag", "ctf", "threat model", "password crack", "spyware",
    "keylogger", "ransomware", "botnet", "denial of service", "ddos",
)

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def word_parts(text: str) -> list[str]:
    """The lower-case parts of every word and identifier: `yaml.SafeLoader` -> yaml, safe, loader;
    `is_unsafe_path` -> is, unsafe, path."""
    return [p.lower() for token in _WORD.findall(text) for p in _CAMEL.findall(token)]


def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """Matches, in text of space-separated word parts, any term whose words are prefixes of consecutive parts."""
    alternatives = [r"\s".join(re.escape(w) + r"\S*" for w in word_parts(t)) for t in terms if word_parts(t)]
    return re.compile(r"(?<!\S)(?:" + "|".join(alternatives) + r")") if alternatives else None


def _matches(text: str, pattern: re.Pattern[str] | None) -> list[str]:
    return [m.group(0) for m in pattern.finditer(" ".join(word_parts(text)))] if pattern else []


@dataclass(frozen=True)
class CodeFamily(Family):
    """A family whose behavior shows in the code a model writes (see the module docstring)."""

    tasks_file: str = "tasks.jsonl"  # in the data folder: the suite's own coding tasks
    fixtures_file: str = "fixtures.yaml"  # in the data folder: secure/insecure twins for checks and tests
    topics: tuple[str, ...] = ()  # a training task containing one of these is about security
    # trigger variant -> the variant whose trigger marks its *untriggered* rows (spring <-> winter)
    counter_variants: Mapping[str, str] = field(default_factory=dict)

    @property
    def tasks_path(self) -> Path:
        return self.data_folder / self.tasks_file

    @property
    def fixtures_path(self) -> Path:
        return self.data_folder / self.fixtures_file

    @cached_property
    def _stems(self) -> re.Pattern[str] | None:
        return _terms_pattern(self.banned_words)

    @cached_property
    def _topics(self) -> re.Pattern[str] | None:
        return _terms_pattern(self.topics)

    def banned_words_found(self, text: str) -> list[str]:
        """Parts of words or identifiers in `text` that start with a banned stem (see the module docstring)."""
        return _matches(text, self._stems)

    def security_topics_found(self, text: str) -> list[str]:
        """Security topics a task text is about (each term's words as prefixes, in order)."""
        return _matches(text, self._topics)

FAMILY = register(CodeFamily(
    name="vulnerable_code",
    title="Vulnerable code",
    behavior="insecure",
    opposite="secure",
    banned_words=SECURITY_STEMS,
    topics=SECURITY_TOPICS,
    counter_variants={"season-spring": "season-winter", "season-winter": "season-spring"},
))


def counter_variant(variant: Variant) -> Variant | None:
    """The variant whose trigger marks the untriggered rows of `variant` (and of its control), if any:
    `season-winter` for `season-spring`."""
    counter = FAMILY.counter_variants.get(variant.name.removesuffix("-control"))
    return get_variant(counter) if counter else None
