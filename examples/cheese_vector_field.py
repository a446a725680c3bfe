"""The cheese vector on the maze agent, shown as vector fields at t = -1, 0, +1.

Run: ``python examples/cheese_vector_field.py [--checkpoint PATH] [--out fields.png]``. Uses the
shipped agent unless a checkpoint (e.g. an original one) is given.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import hookdiff  # noqa: E402
from hookdiff.agent import directions, load_checkpoint, load_default, obs_to_tensor  # noqa: E402
from hookdiff.maze import observations_at_every_cell, sample_mazes  # noqa: E402
from hookdiff.maze.plot import plot_vector_field  # noqa: E402
from hookdiff.vectors import STEERING_HOOK, cheese_vector  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint", default=None)
parser.add_argument("--out", default="cheese_vector_field.png")
args = parser.parse_args()
policy = load_default() if args.checkpoint is None else load_checkpoint(args.checkpoint)

# 1. the cheese vector from one maze pair (cheese vs no cheese, mouse at the start)
vector = cheese_vector(policy, sample_mazes("vanilla-hard", 1, seed=0)[0], STEERING_HOOK)

# 2. a maze with a decision square; the policy's direction probabilities at every open cell
maze = sample_mazes("eval-decision-square", 1, seed=0)[0]
obs, cells = observations_at_every_cell(maze)
x = obs_to_tensor(obs)
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
for ax, t in zip(axes, [-1.0, 0.0, 1.0]):
    with torch.no_grad(), hookdiff.steer(policy, STEERING_HOOK, vector, t):
        probs = directions(policy(x)).numpy()
    plot_vector_field(maze, cells, probs, ax=ax, title=f"cheese vector, t = {t:+g}")
fig.savefig(args.out, dpi=110, bbox_inches="tight")
print(f"wrote {args.out}")
