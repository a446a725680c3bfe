"""A hook-level unit test as another codebase would write it, with hookdiff's pytest plugin.

Installing hookdiff registers the fixtures ``hookdiff_tiny_transformer``, ``hookdiff_tiny_convnet`` and
``hookdiff_no_leaked_hooks``; nothing needs importing for them. Run: ``pytest examples/test_my_hooks.py``.
"""

import contextlib

import pytest
import torch

from hookdiff.testing import assert_no_hooks


@contextlib.contextmanager
def zero_ablate(model, name):
    """The code under test: a patching context manager from 'your' codebase."""
    handle = model.hook_dict[name].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    try:
        yield
    finally:
        handle.remove()


def test_zero_ablation_changes_logits_and_cleans_up(
    hookdiff_no_leaked_hooks, hookdiff_tiny_transformer
):
    model = hookdiff_no_leaked_hooks(
        hookdiff_tiny_transformer
    )  # fails at teardown if hooks are left behind
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 5))
    clean = model(tokens)
    with zero_ablate(model, "blocks.0.hook_mlp_out"):
        ablated = model(tokens)
    assert not torch.allclose(clean, ablated)


def test_cleanup_on_error(hookdiff_tiny_transformer):
    with (
        pytest.raises(RuntimeError),
        zero_ablate(hookdiff_tiny_transformer, "blocks.0.hook_mlp_out"),
    ):
        raise RuntimeError("boom")
    assert_no_hooks(hookdiff_tiny_transformer)
