"""The examples a user copies run as shipped (through subprocess, like a user would run them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=EXAMPLES.parent
    )


def test_steer_transformer_example_runs():
    out = run(str(EXAMPLES / "steer_transformer.py"))
    assert out.returncode == 0, out.stderr
    assert "‖J·v‖" in out.stdout


def test_plugin_fixtures_work_in_another_codebase(tmp_path):
    out = run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "test_my_hooks.py"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout


def test_plugin_fixture_catches_a_leaked_hook(tmp_path):
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text(
        "def test_leaks(hookdiff_no_leaked_hooks, hookdiff_tiny_transformer):\n"
        "    m = hookdiff_no_leaked_hooks(hookdiff_tiny_transformer)\n"
        "    m.hook_dict['blocks.0.hook_mlp_out'].register_forward_hook(lambda *a: None)\n"
    )
    out = run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(leaky))
    assert out.returncode != 0
    assert "blocks.0.hook_mlp_out" in out.stdout and "left behind" in out.stdout


def test_cheese_vector_field_example_draws_a_figure(tmp_path):
    import torch

    from hookdiff.agent import ImpalaPolicy, save_checkpoint

    torch.manual_seed(0)
    ckpt = save_checkpoint(ImpalaPolicy(scale=1), tmp_path / "agent.pt")
    png = tmp_path / "fields.png"
    out = run(
        str(EXAMPLES / "cheese_vector_field.py"), "--checkpoint", str(ckpt), "--out", str(png)
    )
    assert out.returncode == 0, out.stderr
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_localisation_example_runs():
    out = run(str(EXAMPLES / "localise_cheese_vector.py"), "--mazes", "4")
    assert out.returncode == 0, out.stderr
    assert "4 mazes; exact E(1)" in out.stdout and "fc_policy_out" in out.stdout
