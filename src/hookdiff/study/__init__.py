"""The one-command study: steering vectors, nonlinearity per depth, behaviour, figures, report.

``run_study(config)`` writes one run folder (``study.nc``, ``run.json``, ``figures/``,
``report.md``, ``report.html``); ``draw_figures`` and ``write_report`` redraw the figures and the
report from the saved dataset alone (``hookdiff plot RUN_DIR``).

The parts, in the order the data flows: ``config`` (the one frozen configuration), ``inputs``
(the policy, the studied mazes, the vectors), ``measure`` (one function per measurement, each
returning its labelled part), ``localise`` (where the add/subtract asymmetry is created: cut and
freeze scans, controls, kink sums), ``dataset`` (coordinates, records of the inputs, merging, attrs,
netCDF I/O), ``run`` (orchestration, progress, timings, ``run.json``), ``figures``, ``report``.
"""

from hookdiff.study.config import (
    PUBLISHED_TS,
    StudyConfig,
    default_config,
    full_config,
    quick_config,
)
from hookdiff.study.dataset import DATASET_NAME, POSITIONS, SITES, VECTORS, load_dataset
from hookdiff.study.inputs import load_policy
from hookdiff.study.measure import pick_later
from hookdiff.study.run import run_study, study_dataset

__all__ = [
    "DATASET_NAME",
    "POSITIONS",
    "PUBLISHED_TS",
    "SITES",
    "VECTORS",
    "StudyConfig",
    "default_config",
    "full_config",
    "load_dataset",
    "load_policy",
    "pick_later",
    "quick_config",
    "run_study",
    "study_dataset",
]
