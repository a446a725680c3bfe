"""The top-level API: every exported name resolves, and the lazy table and ``__all__`` agree."""

from __future__ import annotations

import hookdiff


def test_all_and_the_lazy_table_agree_and_resolve() -> None:
    assert set(hookdiff.__all__) == set(hookdiff._HOMES) | {"errors"}
    for name in hookdiff.__all__:
        assert getattr(hookdiff, name) is not None, name


def test_a_misspelled_name_is_an_attribute_error() -> None:
    try:
        hookdiff.line_respons  # noqa: B018
    except AttributeError as e:
        assert "line_respons" in str(e)
    else:  # pragma: no cover
        raise AssertionError("no AttributeError")
