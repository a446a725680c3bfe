"""Check every shipped agent's model card with a rollout loop that is not hookdiff's harness.

The card's reach rates come from ``hookdiff eval`` (``hookdiff.rollout``). This loop re-derives
them with its own code: raw ``procgen.ProcgenGym3Env`` envs set to the card's maze states through
procgen's own ``set_state``, its own frame conversion (numpy), its own action sampling (a numpy
``Generator``, seed 2027 — not the card's stream), and "reached the cheese" read from procgen's
reward before the first episode end. Only the *choice of mazes* is shared with the card
(``hookdiff.maze.sets.sample_mazes`` with the card's spec, count and seed), so that both measure
the same population. A rate agrees when it lies inside the card's Wilson 95 % interval.

Usage (about 2 min per agent on 2 cores)::

    .venv/bin/python tools/check_agent_cards.py --out agent-cards-check.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import torch


def frames_to_input(rgb: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, 64, 64, 3)`` frames to float ``(N, 3, 64, 64)`` in [0, 1], written here."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).float() / 255.0


def reach_cheese(policy: torch.nn.Module, raw_states: list[bytes], max_steps: int, seed: int):
    """Per state: whether the policy, sampling its actions, gets procgen's reward within
    ``max_steps`` steps and before its first episode ends."""
    import procgen

    n = len(raw_states)
    env = procgen.ProcgenGym3Env(num=n, env_name="maze", distribution_mode="hard")
    env.callmethod("set_state", raw_states)
    rng = np.random.default_rng(seed)
    reached, running = np.zeros(n, bool), np.ones(n, bool)
    for _ in range(max_steps):
        _, obs, _ = env.observe()
        with torch.no_grad():
            probs = torch.softmax(policy(frames_to_input(obs["rgb"])).double(), -1).numpy()
        cumulative = probs.cumsum(-1)
        actions = (rng.random((n, 1)) > cumulative).sum(-1).clip(0, probs.shape[1] - 1)
        env.act(actions.astype(np.int32))
        reward, _, first = env.observe()
        reached |= running & (np.asarray(reward) > 0)
        running &= ~np.asarray(first, bool)
        if not running.any():
            break
    return reached


def wilson(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95 % interval of ``hits`` in ``n``, written here."""
    p = hits / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return mid - half, mid + half


def check_agent(name: str, seed: int) -> dict:
    """The card's two reach rates beside this loop's, for the shipped agent ``name``."""
    from hookdiff.agent import available_agents, load_checkpoint, model_card
    from hookdiff.maze.sets import sample_mazes

    card = model_card(name)
    cfg = card["evaluation"]["config"]
    policy = load_checkpoint(available_agents()[name]).eval()
    rows = {}
    for part in ("in_distribution", "out_of_distribution"):
        figures = card["evaluation"][part]
        states = sample_mazes(figures["spec"], cfg["n_mazes"], seed=cfg["seed"])
        hits = reach_cheese(policy, [s.to_bytes() for s in states], cfg["max_steps"], seed)
        lo, hi = figures["p_reach_cheese_ci95"]
        rows[part] = {
            "spec": figures["spec"],
            "n_mazes": len(states),
            "card_p_reach_cheese": figures["p_reach_cheese"],
            "card_ci95": [lo, hi],
            "independent_p_reach_cheese": float(hits.mean()),
            "independent_ci95": list(wilson(int(hits.sum()), hits.size)),
            "within_card_interval": bool(lo <= hits.mean() <= hi),
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="", help="comma-separated names (default: all)")
    parser.add_argument("--seed", type=int, default=2027, help="action-sampling seed")
    parser.add_argument("--out", default="agent-cards-check.json")
    args = parser.parse_args(argv)
    from hookdiff.agent import available_agents

    names = [a for a in args.agents.split(",") if a] or list(available_agents())
    result = {"seed": args.seed, "agents": {n: check_agent(n, args.seed) for n in names}}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    ok = all(r["within_card_interval"] for a in result["agents"].values() for r in a.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
