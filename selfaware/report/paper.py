"""The paper's figures as plug-ins: each family's report module registers the figures it can draw.

A figure is a `PaperFigure`: a key (the file stem: `fig3`, `table2`), the paper's label ("Figure 3"), the
families whose logs it needs, and a `draw` function. `draw` gets the `FigureData` of one base model's logs
and returns a `Drawn` — the matplotlib figure (or a PNG file the module drew itself; neither for a table such
as Table 2) and the numbers it shows as a DataFrame, which the HTML report writes as CSV beside the image —
or None when these logs hold nothing it can draw (another family, no organisms yet). A report module registers its figures on import:

    # selfaware/report/<family>.py
    from selfaware.report.paper import Drawn, FigureData, PaperFigure, register_figure

    def _fig6(data: FigureData) -> Drawn | None:
        rows = data.summary[(data.summary["family"] == "make_me_say") & (data.summary["level"] == "organism")]
        if rows.empty:
            return None
        return Drawn(figure=..., table=rows[[...]])

    register_figure(PaperFigure(key="fig6", label="Figure 6", title="Make Me Say: codeword and goals",
                                families=("make_me_say",), draw=_fig6, order=6))

`paper_figures()` imports every module of this package that is not part of the report's machinery (and the
`selfaware.figures` entry-point group), so a new report module needs no edit anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

ENTRY_POINT_GROUP = "selfaware.figures"
# Modules of selfaware.report that are machinery, not figure plug-ins.
_MACHINERY = {"cli", "figures", "results", "paper", "html", "scatter"}


@dataclass(frozen=True)
class FigureData:
    """What a figure is drawn from: the logs of one base model (all of them when the logs name none)."""

    samples: pd.DataFrame  # selfaware.report.results.load_scores rows
    summary: pd.DataFrame  # selfaware.report.results.summarize of those rows
    logs: tuple[Path, ...]  # this base model's log files, for figures that read what the tidy frame does not carry
    log_dir: Path | None = None  # the folder the report reads (all base models: keep to `logs` when it matters)
    base_model: str | None = None
    ci_method: str = "t"
    organisms: dict[str, list[str]] | None = None  # the report's organism mapping (--organisms), if any
    n_boot: int = 2000

    @property
    def families(self) -> set[str]:
        return set(self.samples["family"].dropna().unique())

    def log_files(self, family: str | None = None) -> list[str]:
        """This base model's logs (those holding `family`'s samples, when given) as file paths (a `file://`
        location read back as a path), for a figure that reads its own columns from them
        (`inspect_ai.analysis.samples_df` takes the list)."""
        logs = self.logs
        if family is not None:
            keep = {Path(p) for p in self.samples.loc[self.samples["family"] == family, "log"]}
            logs = tuple(p for p in logs if p in keep)
        return [re.sub(r"^file:(//)?", "", str(p)) for p in logs]

    def organisms_among(self, models: Iterable[str]) -> dict[str, list[str]] | None:
        """The organism mapping restricted to `models`, so that a figure summarising one family's rows is not
        warned about the mapping's models of other families."""
        if self.organisms is None:
            return None
        present = set(models)
        return {o: [m for m in ms if m in present] for o, ms in self.organisms.items()}


@dataclass(frozen=True)
class Drawn:
    """A drawn exhibit: the figure (None for a table) and the numbers it shows (written as CSV beside it)."""

    table: pd.DataFrame
    figure: Figure | None = None
    image: Path | None = None  # or a PNG the plug-in saved itself (e.g. with its own plot function); copied
    caption: str = ""  # what the reader needs to read it (interval method, what 1 means, missing cells)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaperFigure:
    key: str  # unique file stem: "fig3", "table2"
    label: str  # "Figure 3"
    title: str
    families: tuple[str, ...]  # drawn when the logs hold samples of any of these families
    draw: Callable[[FigureData], Drawn | None]
    order: float = 100.0  # position in the report (the paper's numbering)
    kind: str = "figure"  # "figure" or "table"
    extra: dict[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, PaperFigure] = {}
_BROKEN: dict[str, str] = {}  # report module -> why it could not be imported
_discovered = False


def register_figure(figure: PaperFigure, *, replace: bool = False) -> PaperFigure:
    """Make `figure` part of every report whose logs hold one of its families."""
    clash = _REGISTRY.get(figure.key)
    if clash is not None and clash is not figure and not replace:
        raise ValueError(f"a paper figure with key {figure.key!r} ({clash.label}) is already registered")
    _REGISTRY[figure.key] = figure
    return figure


def unregister_figure(key: str) -> None:
    _REGISTRY.pop(key, None)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module("selfaware.report")
    names = [f"selfaware.report.{m.name}" for m in pkgutil.iter_modules(package.__path__)
             if m.name not in _MACHINERY and not m.name.startswith("_")]
    for name in names:
        _load(name, lambda name=name: importlib.import_module(name))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _load(f"{ep.name} (entry point {ep.value})", ep.load)


def _load(name: str, load: Callable[[], object]) -> None:
    """Import one report module; one that fails is recorded (the report lists it and fails), not fatal to the
    figures of every other family."""
    try:
        load()
    except Exception as e:  # noqa: BLE001 (any import-time failure of a plug-in)
        _BROKEN[name] = f"{type(e).__name__}: {e}"


def broken_modules() -> dict[str, str]:
    """Report modules that could not be imported, with the reason."""
    _discover()
    return dict(_BROKEN)


def paper_figures() -> list[PaperFigure]:
    """Every registered figure, in the paper's order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda f: (f.order, f.key))


def figures_for(data: FigureData) -> list[PaperFigure]:
    present = data.families
    return [f for f in paper_figures() if present & set(f.families)]
