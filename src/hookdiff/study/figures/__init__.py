"""The study's figures, drawn from the saved dataset alone (``hookdiff plot RUN_DIR`` redraws them).

Nothing here runs a model or an env: every figure reads variables of the study Dataset, so a run
folder can be redrawn anywhere the netCDF file is. Figures are ``matplotlib.figure.Figure``
objects rendered by Agg (no pyplot global state) and saved atomically. The one registry
(:data:`FIGURE_SPECS`: stem, draw, needs, caption) lists them in report order: the answer's, one
per claim of :mod:`hookdiff.study.answer` (:mod:`.answer_figures`); the vector fields and, per
site, the supporting figures and the later-layer selection (:mod:`.support`).
"""

from hookdiff.study.figures.common import OUTPUT_DEPTH, FigureSpec, figure_sites, pick_depths
from hookdiff.study.figures.registry import (
    ANSWER_FIGURES,
    FIGURE_SPECS,
    FIGURES,
    answer_figure_names,
    draw,
    draw_answer_figures,
    draw_figures,
    figure_names,
    figure_spec,
)
from hookdiff.study.figures.support import field_state

__all__ = [
    "ANSWER_FIGURES",
    "FIGURES",
    "FIGURE_SPECS",
    "OUTPUT_DEPTH",
    "FigureSpec",
    "answer_figure_names",
    "draw",
    "draw_answer_figures",
    "draw_figures",
    "field_state",
    "figure_names",
    "figure_sites",
    "figure_spec",
    "pick_depths",
]
