"""The HTML report: every paper figure the logs allow with its numbers as CSV beside it, the self-report vs
behavior scatter with its correlation, figure plug-ins, and the page itself in a real headless Chromium.

Logs: the demo's evaluations answered by synthetic organisms (`tests/demo_logs.py`), so every number drawn
is known: behavior P(risky) 0.9 / 0.7 (risky seeds), 0.2 / 0.1 (safe seeds), 0.5 (base).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_logs import demo_logs
from headless_chromium import check_page, find_browser

from selfaware.report.html import write_html_report
from selfaware.report.paper import Drawn, PaperFigure, paper_figures, register_figure, unregister_figure
from selfaware.report.results import t_quantile
from selfaware.report.scatter import pearson_ci

APT_LINE = "apt-get install -y --no-install-recommends chromium"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return write_html_report(demo_logs(), tmp_path_factory.mktemp("report"), title="selfaware test report",
                             n_boot=200)


def test_every_exhibit_has_its_image_and_numbers_beside_it(report):
    root = report.path.parent
    keys = [e.key for e in report.exhibits]
    assert keys == ["fig3", "risk-self-report-vs-behavior"]  # the economic family: Figure 3, then the scatter
    page = report.path.read_text()
    for e in report.exhibits:
        assert (root / e.image).read_bytes()[:4] == b"\x89PNG"
        assert (root / e.csv).with_suffix(".png") == root / e.image  # the CSV sits beside its figure
        assert f'src="{e.image}"' in page and f'href="{e.csv}"' in page
    assert report.failures == []
    assert [s.base_model for s in report.sections] == ["tiny"]  # split by the logs' base_model


def test_figure3_numbers_are_the_organism_means_over_seeds(report):
    table = pd.read_csv(report.path.parent / "figures" / "tiny" / "fig3.csv")
    behavior = table[table["question_id"] == "behavior"].set_index("organism")
    assert behavior.loc["risky", "mean"] == pytest.approx(0.8) and behavior.loc["risky", "n_seeds"] == 2
    half = t_quantile(0.975, 1) * np.std([0.9, 0.7], ddof=1) / math.sqrt(2)
    assert behavior.loc["risky", "ci_low"] == pytest.approx(max(0.0, 0.8 - half))
    assert behavior.loc["safe", "mean"] == pytest.approx(0.15)
    assert behavior.loc["base", "mean"] == pytest.approx(0.5) and behavior.loc["base", "ci_note"] == "1 seed: no CI"
    assert behavior.loc["junk", "n_seeds"] == 0  # all invalid: in the table, with no mean


def test_scatter_puts_each_model_at_its_behavior_and_self_report(report):
    points = pd.read_csv(report.path.parent / "figures" / "tiny" / "risk-self-report-vs-behavior.csv")
    assert len(points) == 5  # base + 2 risky + 2 safe seeds; junk has no valid behavior
    by = points.set_index(["organism", points["seed"].fillna(-1).astype(int)])
    assert by.loc[("risky", 0), "behavior"] == pytest.approx(0.9)
    assert by.loc[("safe", 1), "behavior"] == pytest.approx(0.1)
    # Ratings are exact (logprobs): the self-report mean is the mean of the question means shown beside it.
    questions = [c for c in points.columns if c.startswith("q:")]
    assert by.loc[("risky", 0), "q:risk_predisposition_scale"] == pytest.approx(0.8)
    assert np.allclose(points[questions].mean(axis=1), points["self_report"])
    caption = report.exhibits[1].caption
    r, lo, hi = pearson_ci(points["behavior"].to_numpy(), points["self_report"].to_numpy())
    assert f"r = {r:.3f}, 95% CI [{lo:.3f}, {hi:.3f}]" in caption


def test_pearson_interval_is_fisher_z():
    rng = np.random.default_rng(0)
    x = rng.random(28)
    y = x + rng.normal(0, 0.3, 28)
    r, lo, hi = pearson_ci(x, y)
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1])
    half = 1.959963984540054 / math.sqrt(25)
    assert (lo, hi) == pytest.approx((math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)))
    assert math.isnan(pearson_ci(x[:3], y[:3])[1])  # 3 points: r, but no interval
    assert math.isnan(pearson_ci(np.ones(5), y[:5])[0])  # no variation: no r


def test_a_family_report_module_registers_figures(tmp_path, monkeypatch):
    """The plug-in interface: a registered figure appears where its family's logs are; one that fails is
    shown as failed (and listed), one with nothing to draw is noted, a module that cannot be imported is
    listed; none of them silently dropped, none stops the other figures."""
    from selfaware.report import paper
    assert {"fig3", "fig18", "fig19"} <= {f.key for f in paper_figures()}

    def table_only(data):
        rows = data.summary[data.summary["level"] == "organism"][["organism", "question_id", "mean"]]
        return Drawn(table=rows, caption="organism means as a table")

    def broken(data):
        raise RuntimeError("plug-in bug")

    def own_plot(data):  # a module whose plot function writes its own file (as figure6(summary, path) does)
        from selfaware.report.figures import plot_family

        [png] = plot_family(data.summary, "risk", tmp_path / "own" / "risk.png")
        assert data.log_dir == demo_logs() and len(data.logs) == 12  # this base model's logs, and their folder
        return Drawn(table=data.summary.head(3), image=png)

    figures = [PaperFigure(key="tableX", label="Table X", title="a table", families=("risk",), draw=table_only,
                           order=1, kind="table"),
               PaperFigure(key="figY", label="Figure Y", title="broken", families=("risk",), draw=broken, order=2),
               PaperFigure(key="figZ", label="Figure Z", title="empty", families=("risk",), draw=lambda d: None),
               PaperFigure(key="figV", label="Figure V", title="its own file", families=("risk",), draw=own_plot,
                           order=2.5),
               PaperFigure(key="figW", label="Figure W", title="other family", families=("apples",), draw=broken)]
    for f in figures:
        register_figure(f)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_figure(PaperFigure(key="tableX", label="T", title="t", families=(), draw=table_only))
        monkeypatch.setattr(paper, "_BROKEN", {"selfaware.report.broken": "ImportError: no module named x"})
        rep = write_html_report(demo_logs(), tmp_path, n_boot=50)
    finally:
        for f in figures:
            unregister_figure(f.key)
    page = rep.path.read_text()
    assert [e.key for e in rep.exhibits][:3] == ["tableX", "figY", "figV"]  # in the paper's order
    assert (tmp_path / "figures" / "tiny" / "figV.png").read_bytes()[:4] == b"\x89PNG"
    assert "<table" in page and (tmp_path / "figures" / "tiny" / "tableX.csv").is_file()
    unimported = "report module selfaware.report.broken could not be imported: ImportError: no module named x"
    assert rep.failures == [unimported, "Figure Y (figY): RuntimeError: plug-in bug"]
    assert "failed: RuntimeError" in page and "could not be imported" in page and "fig3" in page
    assert "Figure Z (empty): nothing to draw in these logs" in page
    assert "figW" not in page  # no apples logs


def test_report_renders_in_headless_chromium(report, tmp_path):
    if find_browser() is None:
        if os.environ.get("SELFAWARE_REQUIRE_CHROMIUM"):
            pytest.fail(f"SELFAWARE_REQUIRE_CHROMIUM is set but no Chromium is installed: `{APT_LINE}`")
        pytest.skip(f"no Chromium on this machine; CI installs it with `{APT_LINE}`")
    seen = check_page(report.path, tmp_path / "report.png")
    assert seen.console_errors == []
    assert len(seen.images) == len(report.exhibits)
    for image in seen.images:  # every figure loaded and laid out at a readable size
        assert image["loaded"], image
        assert image["width"] > 300 and image["height"] > 200, image
    shot = Path(seen.screenshot).read_bytes()
    assert shot[:4] == b"\x89PNG" and len(shot) > 20_000
