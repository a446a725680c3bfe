"""Training: a tiny real run learns, and an interrupted + resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses

import torch

from hookdiff.agent import load_checkpoint
from hookdiff.training.train import TrainConfig, train


def tiny(out_dir, **kw) -> TrainConfig:
    base = dict(
        out_dir=str(out_dir),
        total_samples=64 * 6,
        batch_size=64,
        eval_every=3,
        eval_mazes=2,
        chunk_mazes=2,
        threads=1,
        lr=2e-3,
        dagger_samples=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    full = train(tiny(tmp_path / "full"), progress=False)
    part = train(tiny(tmp_path / "part", stop_after_steps=2), progress=False)
    assert part.steps == 2 and not part.finished
    rest = train(tiny(tmp_path / "part"), progress=False)
    assert rest.finished and rest.steps == full.steps == 6
    a = load_checkpoint(tmp_path / "full" / "policy.pt").state_dict()
    b = load_checkpoint(tmp_path / "part" / "policy.pt").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def _held_out_loss(policy_path) -> float:
    """Expert cross-entropy of saved weights on mazes no run trains or validates on."""
    from hookdiff.agent import direction_log_probs, obs_to_tensor
    from hookdiff.maze.sets import expert_batch

    b = expert_batch("train-top-right-5", 3, seed=987_654)
    policy = load_checkpoint(policy_path).eval()
    with torch.no_grad():
        logp = direction_log_probs(policy(obs_to_tensor(b.obs)))
    return float(torch.nn.functional.nll_loss(logp, torch.as_tensor(b.labels)))


def test_a_short_run_lowers_the_loss_on_held_out_mazes(tmp_path):
    """Eight steps of ``train`` lower the cross-entropy, recomputed here from the saved weights.

    Not read from the trainer's log: a trainer that climbed its loss would log its own numbers.
    """
    start = train(tiny(tmp_path / "start", total_samples=0), progress=False)
    assert start.steps == 0  # the seeded initial weights, saved
    run = train(tiny(tmp_path / "run", total_samples=64 * 8, lr=3e-3, eval_every=4), progress=False)
    assert run.finished and run.steps == 8 and [h["step"] for h in run.history] == [4, 8]
    before = _held_out_loss(tmp_path / "start" / "policy.pt")
    after = _held_out_loss(tmp_path / "run" / "policy.pt")
    assert after < 0.85 * before, (before, after)


def test_expert_stream_keeps_each_observation_with_its_label(tmp_path):
    """The shuffled training batches pair every frame with the expert's label for that frame."""
    from hookdiff.maze.sets import expert_batch
    from hookdiff.training.train import ExpertStream, _chunk_seed

    cfg = tiny(tmp_path)
    stream = ExpertStream(cfg)
    try:
        obs, labels = stream.next_batch()
    finally:
        stream.close()
    b = expert_batch(cfg.spec, cfg.chunk_mazes, seed=_chunk_seed(cfg.seed, 0), threads=1)
    truth = {o.tobytes(): int(y) for o, y in zip(b.obs, b.labels)}
    assert len(truth) == len(b.labels)  # every frame differs (the mouse moves)
    assert [truth[o.tobytes()] for o in obs] == labels.tolist()
    assert len(set(labels.tolist())) > 1


def test_resume_refuses_other_settings(tmp_path):
    train(tiny(tmp_path, total_samples=64, eval_every=1), progress=False)
    import pytest

    with pytest.raises(ValueError, match="other settings"):
        train(dataclasses.replace(tiny(tmp_path, total_samples=64), lr=1e-4), progress=False)


def test_behaviour_cloning_may_be_shortened_but_not_below_what_is_done(tmp_path):
    import pytest

    part = train(tiny(tmp_path, stop_after_steps=2), progress=False)
    assert part.steps == 2 and not part.finished
    for total in (64, 64 * 7):  # below the 128 samples learned; longer than planned
        with pytest.raises(ValueError, match="total_samples"):
            train(tiny(tmp_path, total_samples=total), progress=False)
    short = train(tiny(tmp_path, total_samples=64 * 3), progress=False)
    assert short.finished and (short.steps, short.samples) == (3, 64 * 3)
    changes = [h["schedule_change"] for h in short.history if "schedule_change" in h]
    assert changes == [{"total_samples": [64 * 6, 64 * 3]}]


def tiny_dagger(out_dir, **kw) -> TrainConfig:
    """Two BC steps, then DAgger rounds of 3 short rollouts (one or two batches each)."""
    base = dict(total_samples=64 * 2, dagger_samples=64 * 4, dagger_mazes=3, dagger_max_steps=12)
    base.update(kw)
    return tiny(out_dir, **base)


def test_dagger_phase_resumes_exactly_and_only_takes_new_settings_before_it_begins(tmp_path):
    full = train(tiny_dagger(tmp_path / "full"), progress=False)
    assert full.finished and full.samples >= 64 * 6
    dagger_rows = [h for h in full.history if h.get("phase") == "dagger"]
    assert dagger_rows and all(0 <= h["round_reach"] <= 1 for h in dagger_rows)

    # behaviour cloning alone, finished; DAgger settings may then be added to the same run
    bc = train(tiny(tmp_path / "part", total_samples=64 * 2), progress=False)
    assert bc.finished and bc.samples == 64 * 2
    part = train(tiny_dagger(tmp_path / "part", stop_after_steps=1), progress=False)
    assert not part.finished and part.samples > bc.samples
    rest = train(tiny_dagger(tmp_path / "part"), progress=False)
    assert rest.finished and (rest.steps, rest.samples) == (full.steps, full.samples)
    a = load_checkpoint(tmp_path / "full" / "policy.pt").state_dict()
    b = load_checkpoint(tmp_path / "part" / "policy.pt").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)

    import pytest

    with pytest.raises(ValueError, match="dagger_lr"):
        train(tiny_dagger(tmp_path / "part", dagger_lr=1e-3), progress=False)


def test_on_policy_round_labels_the_states_the_policy_visited(tmp_path):
    """Every on-policy sample's label is the expert's step at a cell the rollout recorded."""
    import numpy as np

    from hookdiff.agent import ImpalaPolicy
    from hookdiff.maze.envs import render
    from hookdiff.maze.paths import direction_field
    from hookdiff.maze.sets import sample_mazes
    from hookdiff.rollout import rollout
    from hookdiff.training.train import _round_seed, on_policy_round

    cfg = tiny_dagger(tmp_path, dagger_max_visits=100)
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1).eval()
    data = on_policy_round(policy, cfg, round_index=5)
    again = on_policy_round(policy, cfg, round_index=5)
    assert np.array_equal(data.obs, again.obs) and np.array_equal(data.labels, again.labels)

    # recompute independently: the same rollout, its recorded paths, the expert's directions
    seed = _round_seed(cfg.seed, 5)
    mazes = sample_mazes(cfg.spec, cfg.dagger_mazes, seed=seed)
    ds = rollout(policy, mazes, max_steps=cfg.dagger_max_steps, seed=seed, stop_at_top_right=False)
    expected = []
    for i, m in enumerate(mazes):
        field = direction_field(m, m.cheese)
        steps = int(ds.steps[i])
        cells = ds.path.values[i, :steps]  # the cells acted from (the last one is never acted on)
        expected.extend(int(field[r, c]) for r, c in cells)
    mask = data.from_policy
    assert sorted(data.labels[mask].tolist()) == sorted(expected)
    assert (~mask).sum() == mask.sum()  # mixed 1:1 with fresh expert cells
    assert set(np.unique(data.labels[~mask])) <= {0, 1, 2, 3}
    # the first thing each policy saw is its maze's start frame, as procgen renders it
    seen = {o.tobytes() for o in data.obs[mask]}
    assert all(o.tobytes() in seen for o in render(mazes))
