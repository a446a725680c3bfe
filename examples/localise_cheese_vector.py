"""Where does the cheese vector's add/subtract asymmetry arise? A cut scan on the shipped agent.

Each maze is steered by its own cheese vector at the published layer, with the mouse on the
decision square. The readout is P(step toward the cheese). For every valid cut between the
steering layer and the logits, the network is cut there and linearised or symmetrised, and the
even part E(1) = r(+1) + r(−1) − 2 r(0) of the readout is compared with the exact one (means over
mazes with 95 % bootstrap intervals). Symmetrising at ``fc_policy_out`` is the softmax-only test.

Run: ``python examples/localise_cheese_vector.py [--mazes 16] [--checkpoint PATH]``.
"""

import argparse

import xarray as xr

import hookdiff
from hookdiff.agent import load_checkpoint, load_default, obs_to_tensor
from hookdiff.maze import decision_square, next_direction, render, sample_mazes, with_mouse
from hookdiff.stats import bootstrap_mean
from hookdiff.vectors import STEERING_HOOK, cheese_vector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mazes", type=int, default=16, help="decision-square mazes (default 16)")
    parser.add_argument("--checkpoint", help="an IMPALA checkpoint (default: the shipped agent)")
    args = parser.parse_args()
    policy = load_checkpoint(args.checkpoint) if args.checkpoint else load_default()
    mazes = sample_mazes("eval-decision-square", args.mazes, seed=0)
    squares = [decision_square(m) for m in mazes]
    toward = [next_direction(m, s, m.cheese) for m, s in zip(mazes, squares)]
    obs = obs_to_tensor(render([with_mouse(m, s) for m, s in zip(mazes, squares)]))
    vectors = cheese_vector(policy, mazes, per_maze=True)  # each maze's own vector
    _, cache = policy.run_with_cache(obs)
    scan = hookdiff.cut_scan(
        policy, cache[STEERING_HOOK], STEERING_HOOK, vectors, [-1.0, 0.0, 1.0], depth="directions"
    )
    readout = scan.isel(direction=xr.DataArray(toward, dims="sample"))  # P(toward cheese)
    even = hookdiff.even_odd(readout)["even"].sel(t_pos=1.0)
    exact = bootstrap_mean(even.sel(variant="exact").isel(cut=0).values, seed=0)
    print(
        f"{len(mazes)} mazes; exact E(1) = {exact.estimate:+.3f} [{exact.lo:+.3f}, {exact.hi:+.3f}]"
    )
    print(f"{'cut':40} {'linearize':>24} {'symmetrize':>24}")
    for cut in scan["cut"].values:
        cells = []
        for variant in ("linearize", "symmetrize"):
            iv = bootstrap_mean(even.sel(variant=variant, cut=cut).values, seed=0)
            cells.append(f"{iv.estimate:+.3f} [{iv.lo:+.3f}, {iv.hi:+.3f}]")
        print(f"{cut:40} {cells[0]:>24} {cells[1]:>24}")


if __name__ == "__main__":
    main()
