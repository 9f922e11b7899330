"""The HTML report: every paper figure the logs allow, each with its numbers as CSV beside it.

`write_html_report(log_dir, out)` reads the logs, splits them by base model (eval metadata `base_model`, set
by `selfaware reproduce`; logs without it form one group), and for each base model draws

* every registered paper figure whose families are in the logs (`selfaware.report.paper`),
* an overview (the Figure-3 layout) for each family no paper figure covers,
* the self-report-vs-behavior scatter of each family (`selfaware.report.scatter`),

writing `figures/<base>/<key>.png` and `<key>.csv` (the numbers drawn) and `report.html`, which links both.
A figure whose plug-in fails is shown as failed in the report and listed in `Report.failures`, never
silently dropped. The page is static: no script, images by relative path, so the folder can be served or
zipped as it is.
"""

from __future__ import annotations

import html
import re
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from selfaware.report.paper import Drawn, FigureData, figures_for

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; } h3 { font-size: 1.1rem; }
figure { margin: 1rem 0 2rem; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; max-width: 60rem; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { border: 1px solid #ddd; padding: 0.2rem 0.5rem; }
.failed { color: #a00; } .note { color: #666; font-size: 0.9rem; } nav li { margin: 0.15rem 0; }
"""


@dataclass
class Exhibit:
    key: str
    label: str
    title: str
    caption: str
    csv: str  # relative to the report folder
    image: str | None = None  # None: a table, shown inline
    table: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()


@dataclass
class Section:
    base_model: str | None
    exhibits: list[Exhibit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    path: Path
    sections: list[Section]
    failures: list[str] = field(default_factory=list)

    @property
    def exhibits(self) -> list[Exhibit]:
        return [e for s in self.sections for e in s.exhibits]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "all"


def base_models_of(logs: list[str]) -> dict[str, str | None]:
    """log path -> the eval metadata `base_model` (None when the log does not name one)."""
    from inspect_ai.log import read_eval_log

    out: dict[str, str | None] = {}
    for log in logs:
        meta = read_eval_log(log, header_only=True).eval.metadata or {}
        base = meta.get("base_model")
        out[log] = None if base is None else str(base)
    return out


def _save(drawn: Drawn, folder: Path, key: str, root: Path) -> tuple[str | None, str]:
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{key}.csv"
    drawn.table.to_csv(csv, index=False)
    png = folder / f"{key}.png"
    if drawn.figure is not None:
        drawn.figure.savefig(png, dpi=120, bbox_inches="tight")
    elif drawn.image is not None:
        shutil.copyfile(drawn.image, png)
    else:
        return None, csv.relative_to(root).as_posix()
    return png.relative_to(root).as_posix(), csv.relative_to(root).as_posix()


def _exhibits(data: FigureData, folder: Path, root: Path, failures: list[str]) -> tuple[list[Exhibit], list[str]]:
    from selfaware.report.economic import draw_family
    from selfaware.report.scatter import correlation_label, model_points, scatter_figure

    exhibits: list[Exhibit] = []
    notes: list[str] = []
    covered: set[str] = set()
    for fig in figures_for(data):
        try:
            drawn = fig.draw(data)
        except Exception as e:  # noqa: BLE001 (a broken plug-in is shown as failed; the report goes on)
            failures.append(f"{fig.label} ({fig.key}): {type(e).__name__}: {e}")
            exhibits.append(Exhibit(fig.key, fig.label, fig.title, "", "", notes=(f"failed: {type(e).__name__}: {e}",)))
            continue
        if drawn is None:
            notes.append(f"{fig.label} ({fig.title}): nothing to draw in these logs")
            continue
        covered.update(fig.families)
        image, csv = _save(drawn, folder, fig.key, root)
        exhibits.append(Exhibit(fig.key, fig.label, fig.title, drawn.caption, csv, image,
                                drawn.table if image is None else None, drawn.notes))
    for family in sorted(data.families - covered):
        drawn = draw_family(family, data)
        if drawn is not None:
            image, csv = _save(drawn, folder, f"{family}-overview", root)
            exhibits.append(Exhibit(f"{family}-overview", f"{family} overview", f"{family}: behavior and self-reports",
                                    drawn.caption, csv, image))
    for family in sorted(data.families):
        points = model_points(data.summary, family)
        if points.empty:
            continue
        drawn = Drawn(table=points, figure=scatter_figure(points, family),
                      caption=(f"One point per model (organism × seed, and base models): behavior against the mean of "
                               f"its self-report means. {correlation_label(points)}. Diamonds: the self-report and "
                               f"the behavior fall on opposite sides of 0.5 "
                               f"({int(points['contradicts'].sum())} of {len(points)})."))
        key = f"{family}-self-report-vs-behavior"
        image, csv = _save(drawn, folder, key, root)
        exhibits.append(Exhibit(key, f"{family}: self-report vs behavior", "self-report beside behavior, per model",
                                drawn.caption, csv, image))
    return exhibits, notes


def build_sections(log_dir: Path, out: Path, *, organisms: dict[str, list[str]] | None = None, ci_method: str = "t",
                   n_boot: int = 2000, failures: list[str]) -> list[Section]:
    from selfaware.report.make_me_say import with_make_me_say
    from selfaware.report.results import load_scores, summarize

    # Make-Me-Say samples carry several measures: one row each, as `selfaware report` has them
    samples = with_make_me_say(load_scores(log_dir), log_dir)
    if samples.empty:
        raise ValueError(f"{log_dir}: no selfaware samples in these logs")
    bases = base_models_of(sorted(samples["log"].unique()))
    sections = []
    for base in sorted(set(bases.values()), key=lambda b: (b is None, b or "")):
        logs = sorted(log for log, b in bases.items() if b == base)
        subset = samples[samples["log"].isin(logs)].reset_index(drop=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = summarize(subset, organisms, n_boot=n_boot, ci_method=ci_method)
        data = FigureData(samples=subset, summary=summary, logs=tuple(Path(p) for p in logs), log_dir=log_dir,
                          base_model=base, ci_method=ci_method, organisms=organisms, n_boot=n_boot)
        folder = out / "figures" / slug(base or "all")
        folder.mkdir(parents=True, exist_ok=True)
        summary.to_csv(folder / "summary.csv", index=False)
        exhibits, notes = _exhibits(data, folder, out, failures)
        sections.append(Section(base, exhibits, notes + [str(w.message) for w in caught]))
    return sections


def _exhibit_html(e: Exhibit) -> str:
    anchor = html.escape(e.key)
    parts = [f'<section id="{anchor}"><h3>{html.escape(e.label)}: {html.escape(e.title)}</h3>']
    failed = [n for n in e.notes if n.startswith("failed:")]
    if failed:
        parts.append(f'<p class="failed">{html.escape(failed[0])}</p></section>')
        return "".join(parts)
    parts.append("<figure>")
    if e.image:
        parts.append(f'<img src="{html.escape(e.image)}" alt="{html.escape(e.label + ": " + e.title)}">')
    elif e.table is not None:
        parts.append(e.table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3f}", border=0))
    caption = html.escape(e.caption)
    notes = "".join(f"<br>{html.escape(n)}" for n in e.notes)
    parts.append(f'<figcaption>{caption}{notes} <a href="{html.escape(e.csv)}">numbers (CSV)</a></figcaption>')
    parts.append("</figure></section>")
    return "".join(parts)


def render_html(title: str, sections: list[Section], *, intro: str = "") -> str:
    nav, body = [], []
    for s in sections:
        name = s.base_model or "all models"
        sid = "base-" + slug(name)
        nav.append(f'<li><a href="#{sid}">{html.escape(name)}</a><ul>'
                   + "".join(f'<li><a href="#{html.escape(e.key)}">{html.escape(e.label)}</a></li>' for e in s.exhibits)
                   + "</ul></li>")
        body.append(f'<h2 id="{sid}">Base model: {html.escape(name)}</h2>')
        body += [_exhibit_html(e) for e in s.exhibits]
        if s.notes:
            body.append('<ul class="note">' + "".join(f"<li>{html.escape(n)}</li>" for n in s.notes) + "</ul>")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>'
            f"<h1>{html.escape(title)}</h1><p class=\"note\">Generated {stamp}. Scores: 1 = the family's behavior. "
            f"Each figure's numbers are in the CSV linked beside it.</p>{intro}"
            f"<nav><ul>{''.join(nav)}</ul></nav>{''.join(body)}</body></html>\n")


def write_html_report(log_dir: Path, out: Path, *, title: str = "selfaware report", intro: str = "",
                      organisms: dict[str, list[str]] | None = None, ci_method: str = "t",
                      n_boot: int = 2000) -> Report:
    from selfaware.report.paper import broken_modules

    out.mkdir(parents=True, exist_ok=True)
    unloaded = [f"report module {name} could not be imported: {why}" for name, why in broken_modules().items()]
    failures = list(unloaded)
    sections = build_sections(log_dir, out, organisms=organisms, ci_method=ci_method, n_boot=n_boot,
                              failures=failures)
    path = out / "report.html"
    intro += "".join(f'<p class="failed">{html.escape(f)}</p>' for f in unloaded)
    path.write_text(render_html(title, sections, intro=intro), encoding="utf-8")
    return Report(path, sections, failures)
