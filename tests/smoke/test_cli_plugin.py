"""The pytest plugin every project in the environment loads: cheap to load, prefixed fixtures."""

from __future__ import annotations

import subprocess
import sys

import torch


def _python(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_loading_the_plugin_imports_neither_torch_nor_transformer_lens():
    proc = _python(
        "-c",
        "import sys, hookdiff.testing, hookdiff.errors; "
        "print(sorted(m for m in ('torch', 'transformer_lens') if m in sys.modules))",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_prefixed_fixtures(
    hookdiff_tiny_transformer, hookdiff_tiny_convnet, hookdiff_no_leaked_hooks
):
    model = hookdiff_no_leaked_hooks(hookdiff_tiny_transformer)
    assert model(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, 23)
    assert hookdiff_tiny_convnet(torch.zeros(2, 3, 8, 8)).shape == (2, 5)


def test_unprefixed_fixture_names_still_work_and_warn(tmp_path):
    (tmp_path / "test_names.py").write_text(
        "def test_old(tiny_convnet):\n"
        "    assert tiny_convnet is not None\n"
        "def test_new(hookdiff_tiny_convnet, hookdiff_no_leaked_hooks):\n"
        "    hookdiff_no_leaked_hooks(hookdiff_tiny_convnet)\n"
    )
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_names.py"]
    proc = _python(*args, cwd=tmp_path)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "'tiny_convnet' is deprecated; use 'hookdiff_tiny_convnet'" in proc.stdout
    strict = _python(*args, "-W", "error::DeprecationWarning", cwd=tmp_path)
    assert "1 passed" in strict.stdout and "1 error" in strict.stdout, strict.stdout
