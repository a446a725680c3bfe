"""hookdiff installs and works without its maze extra, and declares ranges, not our pins.

The maze extra (procgen, gym, gym3, numpy<2) is hidden from a fresh interpreter by a meta-path
finder that refuses those imports, as in an environment where they were never installed. The same
tests run in CI's second venv, where they really are absent.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
MAZE_ONLY = {"procgen-mirror", "gym", "gym3"}

HIDE_MAZE_EXTRA = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class HideMazeExtra(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"procgen", "gym", "gym3"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HideMazeExtra())
    """
)


def run_without_maze_extra(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that cannot import procgen, gym or gym3."""
    script = HIDE_MAZE_EXTRA + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def requirements(group: str | None = None) -> dict[str, Requirement]:
    """pyproject.toml's core requirements (``group=None``) or those of one extra, by name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def test_every_public_module_imports_without_the_maze_extra():
    out = run_without_maze_extra(
        """
        import hookdiff, hookdiff.testing, hookdiff.analysis, hookdiff.hooks, hookdiff.agent
        import hookdiff.maze, hookdiff.vectors, hookdiff.rollout, hookdiff.study, hookdiff.cli
        print(sorted(m for m in sys.modules if m.split(".")[0] in {"procgen", "gym", "gym3"}))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_make_env_without_procgen_names_the_extra_to_install():
    out = run_without_maze_extra(
        """
        from hookdiff.errors import HookdiffError, MissingExtraError
        from hookdiff.maze import make_env
        try:
            make_env(1)
        except MissingExtraError as e:
            print(isinstance(e, ImportError), isinstance(e, HookdiffError), e)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True True ")
    assert "need the maze extra" in out.stdout
    assert "pip install 'hookdiff[maze]'" in out.stdout
    assert "No module named 'procgen'" in out.stdout


def test_pytest_plugin_works_in_a_project_without_the_maze_extra(tmp_path):
    (tmp_path / "test_theirs.py").write_text(
        "import torch\n\n"
        "def test_steer(no_leaked_hooks, tiny_transformer):\n"
        "    model = no_leaked_hooks(tiny_transformer)\n"
        "    assert model(torch.zeros(1, 3, dtype=torch.long)).shape[0] == 1\n"
    )
    out = run_without_maze_extra(
        """
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "test_theirs.py"]))
        """,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout


def test_core_requirements_are_ranges_without_the_maze_packages():
    core = requirements()
    assert not MAZE_ONLY & core.keys()
    pinned = [str(r) for r in core.values() if any(s.operator == "==" for s in r.specifier)]
    assert pinned == []
    numpy_caps = [str(s) for s in core["numpy"].specifier if s.operator not in (">=", ">")]
    assert numpy_caps == [], "the core must not cap numpy: users with numpy 2 install it"
    assert MAZE_ONLY <= requirements("maze").keys()


def test_every_pin_of_constraints_lies_inside_the_declared_ranges():
    declared: dict[str, list[Requirement]] = {}
    for group in (None, "maze", "ray", "dev", "docs"):
        for name, req in requirements(group).items():
            declared.setdefault(name, []).append(req)
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    versions = {canonicalize_name(p.name): next(iter(p.specifier)).version for p in pins}
    assert declared.keys() <= versions.keys(), "constraints.txt misses a requirement"
    outside = [
        f"{name}=={versions[name]} vs {req}"
        for name, reqs in declared.items()
        for req in reqs
        if not req.specifier.contains(versions[name], prereleases=True)
    ]
    assert outside == []
