"""Training: a tiny real run learns, and an interrupted + resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses

import torch

from hookdiff.agent import load_checkpoint
from hookdiff.train import ExpertStream, TrainConfig, train


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


def test_loss_falls_and_batch_accuracy_rises_on_a_fixed_batch(tmp_path):
    """Overfit one real expert batch for a few steps: the loss must fall and accuracy rise."""
    from hookdiff.agent import ImpalaPolicy, direction_log_probs, obs_to_tensor

    cfg = tiny(tmp_path, batch_size=128)
    obs_u8, labels = ExpertStream(cfg).next_batch()
    obs, y = obs_to_tensor(obs_u8), torch.as_tensor(labels)
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1)
    opt = torch.optim.Adam(policy.parameters(), lr=2e-3)
    losses, accs = [], []
    for _ in range(25):
        logp = direction_log_probs(policy(obs))
        loss = torch.nn.functional.nll_loss(logp, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        accs.append((logp.argmax(-1) == y).float().mean().item())
    assert losses[-1] < 0.8 * losses[0]
    assert max(accs[-5:]) > accs[0] + 0.1


def test_resume_refuses_other_settings(tmp_path):
    train(tiny(tmp_path, total_samples=64, eval_every=1), progress=False)
    import pytest

    with pytest.raises(ValueError, match="other settings"):
        train(dataclasses.replace(tiny(tmp_path, total_samples=64), lr=1e-4), progress=False)
