"""Files written by hookdiff (hookdiff._io): atomic, and readable by collaborators."""

from __future__ import annotations

import os
import stat

import pytest

from hookdiff._io import atomic_write


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_an_atomically_written_file_has_the_mode_a_plain_open_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "run.json") as tmp:
            tmp.write_text("{}")
        plain = tmp_path / "plain.json"
        plain.write_text("{}")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "run.json").stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask


def test_the_hook_assertions_need_no_pytest():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['pytest'] = None\n"  # importing pytest now fails
        "import torch\n"
        "from hookdiff.testing import assert_no_hooks\n"
        "m = torch.nn.Linear(2, 2); assert_no_hooks(m)\n"
        "m.register_forward_hook(lambda *a: None)\n"
        "try:\n    assert_no_hooks(m)\nexcept AssertionError:\n    print('caught')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "caught", proc.stderr[-2000:]
