"""A griffe extension that reads hookdiff's docstrings the way the source writes them.

mkdocstrings renders the API pages (docs/api/) through griffe's Google-style parser. Three habits of
the source need a word to it, so that no docstring has to change for the site:

- ``Example:`` (singular) opens the runnable examples; griffe knows only ``Examples:`` as a
  section and would show the ``>>>`` lines as prose, so the title is read as ``Examples:``.
- A module constant is documented by ``#:`` comment lines right above its assignment (as Sphinx
  reads them); they become the constant's docstring.
- reST roles (``:func:`steer```, ``:data:`~hookdiff.contract.INPUT```) become code spans.

mkdocs.yml loads it with ``extensions: [tools/griffe_hookdiff.py]``; it changes nothing in the
package.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|exc|obj):`~?([^`]+)`")


def markdown_docstring(text: str) -> str:
    """``text`` with ``Example:`` read as the examples section and reST roles as code spans.

    Examples:
        >>> markdown_docstring("See :func:`~hookdiff.steer`.\\n\\nExample:\\n    >>> 1\\n    1")
        'See `hookdiff.steer`.\\n\\nExamples:\\n    >>> 1\\n    1'
    """
    return _ROLE.sub(r"`\1`", _EXAMPLE.sub(r"\1Examples:", text))


def comment_doc(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment lines right above line ``lineno`` (1-based), joined, or ``None``.

    Examples:
        >>> comment_doc(["#: The kinds.", "#: Two of them.", "KINDS = (1, 2)"], 3)
        'The kinds. Two of them.'
    """
    found: list[str] = []
    n = lineno - 2
    while n >= 0 and lines[n].lstrip().startswith("#:"):
        found.insert(0, lines[n].lstrip()[2:].strip())
        n -= 1
    return " ".join(found) if found else None


class HookdiffDocstrings(griffe.Extension):
    """Reads the docstrings as :func:`markdown_docstring` says, gives module attributes their ``#:``
    comment, hides undocumented dunder methods, and warns (so ``mkdocs build --strict`` fails) about
    every name in an ``__all__`` that has no docstring."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        """Called by griffe for every object it creates while reading the source."""
        if obj.docstring is None and obj.is_attribute and isinstance(node, ast.AST):
            text = comment_doc(obj.lines_collection[obj.filepath], node.lineno)
            if text:
                obj.docstring = griffe.Docstring(
                    text,
                    lineno=node.lineno,
                    parent=obj,
                    parser=getattr(agent, "docstring_parser", None),
                    parser_options=getattr(agent, "docstring_options", None),
                )
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
        elif obj.is_special and obj.parent is not None and obj.parent.is_class:
            obj.public = False  # __repr__, __len__, ...: what they do is the class's business

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Called once the whole package is loaded: warns about undocumented exported names."""
        for name in undocumented(pkg):
            griffe.logger.warning(f"{name} is in an __all__ but has no docstring")


def undocumented(module: griffe.Module) -> list[str]:
    """The exported names of ``module`` and its submodules whose object has no docstring."""
    found: list[str] = []
    for name in module.exports or ():
        member = module.members.get(name)
        if member is None or member.is_module:
            continue
        try:
            target = member.final_target if member.is_alias else member
        except griffe.AliasResolutionError:
            continue  # defined outside the package (torch, ...): not ours to document
        if not target.docstring or not target.docstring.value.strip():
            found.append(f"{module.path}.{name}")
    for sub in module.modules.values():
        if not sub.is_alias:
            found += undocumented(sub)
    return found
