"""Figures 3, 18 and 19: the economic families' behavior and self-reports per organism, mean over seeds.

Figure 3 is risk, 18 myopia, 19 apples; each is `figures.family_figure` (questions on x, one series per
organism, the interval over seeds named in the title), and its table is the organism rows it draws.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from selfaware.report.paper import Drawn, FigureData, PaperFigure, register_figure

if TYPE_CHECKING:
    import pandas as pd

PAPER_NUMBERS = {"risk": 3, "myopia": 18, "apples": 19}
TABLE_COLUMNS = ["family", "question_id", "title", "variant", "protocol", "organism", "n_seeds", "mean", "ci_low",
                 "ci_high", "ci_method", "ci_note", "n", "invalid_sample_rate", "invalid_answer_rate", "methods"]


def organism_table(data: FigureData, family: str) -> pd.DataFrame:
    rows = data.summary[(data.summary["level"] == "organism") & (data.summary["family"] == family)]
    return rows.sort_values(["order", "organism"])[TABLE_COLUMNS].reset_index(drop=True)


def draw_family(family: str, data: FigureData) -> Drawn | None:
    from selfaware.report.figures import family_figure

    table = organism_table(data, family)
    if table.empty:
        return None
    caption = ("Each point is an organism's mean over its seeds (hollow: a single seed, no interval); "
               "'behavior' is P(behavior option) on fresh choices, the rest are self-reports. "
               "Invalid answers are left out of the means and counted in the CSV.")
    return Drawn(table=table, figure=family_figure(data.summary, family), caption=caption)


for _family, _number in PAPER_NUMBERS.items():
    register_figure(PaperFigure(key=f"fig{_number}", label=f"Figure {_number}",
                                title=f"{_family}: behavior and self-reports of each organism",
                                families=(_family,), draw=partial(draw_family, _family), order=_number))
