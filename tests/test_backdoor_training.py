"""Slow: the tiny base answers the untriggered rows itself (Inspect's hf/ provider). The offline demo's
backdoor pair (selfaware/demo_backdoor.py) is trained and checked by tests/test_demo.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfaware.finetune.base_choices import model_cache_file, read_cache
from selfaware.finetune.builders import dataset_for_spec
from selfaware.finetune.rows import read_manifest
from selfaware.finetune.spec import parse_spec

pytestmark = pytest.mark.slow


def test_the_tiny_base_gives_its_own_choices_cached(tiny_base_dir: Path, tmp_path: Path) -> None:
    spec = parse_spec({"behavior": "risky", "variant": "greek-gods",
                       "data": {"n_examples": 40, "backdoor": {"design": "triggers", "normal": "base"}}})
    path = dataset_for_spec(spec, tmp_path)
    report = read_manifest(path).extra["backdoor"]  # type: ignore[union-attr]
    assert report["normal_answers"] == "base" and report["base_answer_model"].startswith("hf/tiny-base")
    cache = read_cache(model_cache_file(tmp_path / "base_choices", report["base_answer_model"]))
    # hf/ scores both letters exactly (method=auto), one forward pass per question
    assert len(cache) == 40 and all(r["method"] == "exact" for r in cache.values())
    kept = 40 - report["dropped_invalid_base_answers"]
    assert sum(report["shown"]["counts"].values()) == kept == len(path.read_text().splitlines())
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["messages"][-1]["content"] for r in rows} <= {"A", "B"}
    assert dataset_for_spec(spec, tmp_path) == path  # second build: every answer from the cache
