"""The maze agent's life cycle: train it (behaviour cloning, then DAgger), evaluate it, ship it.

Separate from the hook engine and the analysis: nothing outside this subpackage imports it except
the command line.
"""

from hookdiff.training.evaluate import EvalConfig, evaluate
from hookdiff.training.ship import ship_agent
from hookdiff.training.train import TrainConfig, TrainResult, train

__all__ = ["EvalConfig", "TrainConfig", "TrainResult", "evaluate", "ship_agent", "train"]
