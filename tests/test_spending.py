"""The one approval step before money is spent (finetune/spending.py)."""

from __future__ import annotations

import pytest

from selfaware.finetune.spending import SpendingRefused, approved, assume_yes, require_approval


def test_the_estimate_is_shown_before_any_answer(capsys: pytest.CaptureFixture) -> None:
    asked: list[str] = []
    assert approved("12 requests, about $0.40", "Go?", ask=lambda q: asked.append(q) or "y")
    assert asked == ["Go? [y/N] "] and "about $0.40" in capsys.readouterr().err
    assert not approved("about $0.40", ask=lambda q: "n")
    assert not approved("about $0.40", ask=lambda q: "")  # the default is no


def test_nobody_at_a_terminal_means_no_and_yes_means_yes(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert approved("about $1") is False
    assert approved("about $1", yes=True) is True
    assume_yes()  # `--yes` on the command line: every estimate of the process
    assert approved("about $1") is True and approved("about $1", yes=False) is False
    assume_yes(False)
    with pytest.raises(SpendingRefused, match="base model: not confirmed, nothing was spent.*--yes"):
        require_approval("about $1", "base model")
    assert capsys.readouterr().err.count("about $1") == 5  # shown every time, approved or not


def test_a_refusal_raises_the_callers_error() -> None:
    with pytest.raises(ValueError, match="code pairs: not confirmed"):
        require_approval("about $2", "code pairs", ask=lambda q: "no", error=ValueError)
    require_approval("about $2", "code pairs", ask=lambda q: " Y ")
