"""Every source file of ``src/hookdiff`` fits on a few screens, every function on one.

Limits: 600 lines per file, 80 lines per function or method (its docstring and decorators
included). A file or function that grows past them has more than one job: split it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "hookdiff"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def long_functions(path: Path, limit: int) -> list[str]:
    """``"name:line (N lines)"`` for each function in ``path`` longer than ``limit``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            n = node.end_lineno - start + 1
            if n > limit:
                out.append(f"{node.name}:{start} ({n} lines)")
    return out


def test_no_source_file_is_longer_than_600_lines():
    long = {
        str(p.relative_to(SRC.parent)): n
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_function_is_longer_than_80_lines():
    long = [
        f"{p.relative_to(SRC.parent)} {f}"
        for p in sorted(SRC.rglob("*.py"))
        for f in long_functions(p, MAX_FUNCTION_LINES)
    ]
    assert long == []


def test_the_function_length_counts_decorators_and_docstring(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(3))
    (tmp_path / "m.py").write_text(f'@staticmethod\ndef f():\n    """Doc."""\n{body}\n')
    assert long_functions(tmp_path / "m.py", 6) == []
    assert long_functions(tmp_path / "m.py", 5) == ["f:1 (6 lines)"]
