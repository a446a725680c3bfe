"""The real agent on a GPU gives the CPU's results: float64 analysis equal within 1e-9 (breakpoints
identical), greedy rollouts taking the same actions, the quick study matching, training and
evaluation running. Every test here is skipped on a machine where torch sees no CUDA GPU."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from hookdiff import line_breakpoints, nonlinearity
from hookdiff._device import ieee_float32
from hookdiff.agent import load_checkpoint, load_default, obs_to_tensor
from hookdiff.maze import decision_square, render, sample_mazes, with_mouse
from hookdiff.rollout import Steering, decision_square_probs, rollout
from hookdiff.study import quick_config, study_dataset
from hookdiff.training.evaluate import EvalConfig, evaluate
from hookdiff.training.train import TrainConfig, train
from hookdiff.vectors import activations_from_obs, cheese_vector

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA GPU: torch.cuda.is_available() is False on this machine",
)

HOOK = "embedder.block2.res1.resadd_out"


@pytest.fixture(scope="module")
def mazes():
    return sample_mazes("eval-decision-square", 6, seed=0)


@pytest.fixture(scope="module")
def line(mazes):
    """The float64 agent, two decision-square activations and their own cheese vectors."""
    policy64 = load_default().double()
    placed = [with_mouse(m, decision_square(m)) for m in mazes[:2]]
    acts = activations_from_obs(policy64, obs_to_tensor(render(placed)).double(), HOOK)
    v = cheese_vector(load_default(), mazes[:2], HOOK, per_maze=True).double()
    return policy64, acts, v


def test_agent_line_breakpoints_on_cuda_equal_the_cpu(line):
    policy64, acts, v = line
    cpu = line_breakpoints(policy64, acts, HOOK, v, (-1.0, 1.0))
    gpu = line_breakpoints(copy.deepcopy(policy64).cuda(), acts.cuda(), HOOK, v.cuda(), (-1.0, 1.0))
    assert cpu["breakpoint_t"].size > 10
    assert gpu["breakpoint_t"].size == cpu["breakpoint_t"].size
    np.testing.assert_allclose(gpu["breakpoint_t"].values, cpu["breakpoint_t"].values, atol=1e-9)
    np.testing.assert_array_equal(gpu["breakpoint_layer"].values, cpu["breakpoint_layer"].values)


def test_agent_nonlinearity_on_cuda_equals_the_cpu_in_float64(line):
    """The study's main step (the analysis of one site) with the same inputs on either device."""
    policy64, acts, v = line
    ts = [-1.0, -0.5, 0.0, 0.5, 1.0]
    cpu = nonlinearity(policy64, acts, HOOK, v, ts, breakpoints=True)
    gpu = nonlinearity(
        copy.deepcopy(policy64).cuda(), acts.cuda(), HOOK, v.cuda(), ts, breakpoints=True
    )
    assert set(gpu.data_vars) == set(cpu.data_vars)
    for name in cpu.data_vars:
        a, b = cpu[name].values, gpu[name].values
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)


def test_greedy_rollout_on_cuda_takes_the_cpu_actions(mazes):
    """Same seed, same greedy actions: float32 rounding differs between the devices (IEEE on
    both), which moves no argmax here; a sampled rollout draws on the CPU with the same seed."""
    policy = load_default()
    v = cheese_vector(policy, mazes[0], HOOK)
    steering = [Steering(HOOK, v, -1.0)]
    with ieee_float32():
        cpu = rollout(policy, mazes, steering=steering, greedy=True, max_steps=60)
        gpu = rollout(
            copy.deepcopy(policy).cuda(), mazes, steering=steering, greedy=True, max_steps=60
        )
        p_cpu = decision_square_probs(policy, mazes, steering=steering)
        p_gpu = decision_square_probs(copy.deepcopy(policy).cuda(), mazes, steering=steering)
    np.testing.assert_array_equal(gpu["path"].values, cpu["path"].values)
    np.testing.assert_array_equal(gpu["outcome"].values, cpu["outcome"].values)
    np.testing.assert_allclose(
        p_gpu["direction_probs"].values, p_cpu["direction_probs"].values, atol=1e-5
    )


def test_quick_study_on_cuda_matches_the_cpu():
    """Float32 steps (vectors, behaviour) agree to float32 rounding; the float64 analysis on top
    of them closely, with the same number of breakpoints."""
    config = dataclasses.replace(quick_config(), n_mazes=2, rollout_mazes=1)
    cpu = study_dataset(dataclasses.replace(config, device="cpu"), progress=False)
    gpu = study_dataset(dataclasses.replace(config, device="cuda"), progress=False)
    assert gpu.attrs["later_hook"] == cpu.attrs["later_hook"]
    assert set(gpu.data_vars) == set(cpu.data_vars) and dict(gpu.sizes) == dict(cpu.sizes)
    for name in (
        "p_toward_cheese",
        "p_toward_top_right",
        "vector_norm",
        "candidate_effect",
        "diff_norm",
        "linear_norm",
        "base_norm",
        "field_probs",
        "loc_base",
    ):
        np.testing.assert_allclose(
            gpu[name].values, cpu[name].values, rtol=1e-4, atol=1e-6, equal_nan=True, err_msg=name
        )
    n_cpu, n_gpu = cpu["n_pieces"].values, gpu["n_pieces"].values
    walked = ~np.isnan(n_cpu)
    assert walked.any() and np.array_equal(np.isnan(n_gpu), ~walked)
    np.testing.assert_allclose(n_gpu[walked], n_cpu[walked], rtol=1e-3)


def test_training_and_evaluation_run_on_cuda(tmp_path):
    config = TrainConfig(
        out_dir=str(tmp_path / "run"),
        total_samples=64 * 4,
        batch_size=64,
        eval_every=2,
        eval_mazes=2,
        chunk_mazes=2,
        threads=1,
        dagger_samples=0,
        device="cuda",
    )
    result = train(config, progress=False)
    assert result.finished and result.steps == 4 and result.val_accuracy is not None
    policy = load_checkpoint(tmp_path / "run" / "policy.pt")  # written from the GPU, read on CPU
    figures = evaluate(policy, EvalConfig(n_mazes=3, max_steps=30, device="cuda"))
    assert next(policy.parameters()).is_cuda
    assert 0.0 <= figures["out_of_distribution"]["mean_p_toward_cheese"] <= 1.0
