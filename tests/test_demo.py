"""The README's main command, scaled down: tiny organisms trained and evaluated offline."""

from __future__ import annotations

import pytest

from selfaware.demo import _behavior_by_organism, run_demo


@pytest.mark.slow
def test_demo_end_to_end(tiny_base_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    assert run_demo(out=out, seeds=[0], n_examples=300, items=20) == 0
    printed = capsys.readouterr().out
    assert "cannot be expected to describe it" in printed
    assert len(list((out / "logs").glob("*.eval"))) >= 3
    assert (out / "report" / "risk.png").stat().st_size > 0
    behavior = _behavior_by_organism(out / "logs")
    assert behavior["risky"] >= 0.9
    assert behavior["safe"] <= 0.1
    assert behavior["safe"] < behavior["base"] < behavior["risky"]
    # A second run reuses the trained organisms (the registry), and evaluates afresh.
    assert run_demo(out=out, seeds=[0], n_examples=300, items=20) == 0
    assert "already registered" in capsys.readouterr().out
