"""Tiny randomly initialised models for the demo, examples and tests (no download, no pytest).

``make_tiny_transformer`` builds a 2-layer TransformerLens ``HookedTransformer`` from a config;
``make_tiny_bridge`` a TransformerLens 3 ``TransformerBridge`` of the same size
(``TransformerBridge.boot_native``); ``make_tiny_gpt2_bridge`` a randomly initialised HuggingFace
GPT-2 wrapped by ``TransformerBridge.boot_transformers`` with a word-level tokenizer built on the
spot, and the HookedTransformer holding the same weights; ``make_tiny_convnet`` a small conv net
as an ``nn.Sequential``. All are seeded, so the same seed gives the same weights, and none
downloads anything. :mod:`hookdiff.testing` re-exports them next to its pytest fixtures.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformer_lens.model_bridge import TransformerBridge

__all__ = [
    "make_tiny_bridge",
    "make_tiny_convnet",
    "make_tiny_gpt2_bridge",
    "make_tiny_transformer",
]


def make_tiny_transformer(
    seed: int = 0, *, act_fn: str = "gelu", dtype: torch.dtype = torch.float32
) -> HookedTransformer:
    """A tiny randomly initialised HookedTransformer (2 layers, d_model 16, vocab 23), offline.

    ``dtype=torch.float64`` builds it in float64 throughout (its config's dtype too), for checks
    that need exact arithmetic.

    Example:
        >>> make_tiny_transformer(seed=1).cfg.n_layers
        2
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=2,
        d_model=16,
        n_ctx=8,
        d_head=4,
        n_heads=4,
        d_mlp=32,
        d_vocab=23,
        act_fn=act_fn,
        normalization_type="LN",
        seed=seed,
        device="cpu",
        dtype=dtype,
    )
    with warnings.catch_warnings():  # TL 3.x announces HookedTransformer's removal in 4.0
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        model = HookedTransformer(cfg)
    model.eval()
    return model


def make_tiny_bridge(seed: int = 0, *, n_layers: int = 2) -> TransformerBridge:
    """A tiny randomly initialised TransformerBridge (d_model 16, vocab 23), built offline by
    ``TransformerBridge.boot_native``.

    Example:
        >>> make_tiny_bridge(n_layers=3).cfg.n_layers
        3
    """
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    cfg = TransformerBridgeConfig(
        n_layers=n_layers,
        d_model=16,
        n_ctx=8,
        d_head=4,
        n_heads=4,
        d_mlp=32,
        d_vocab=23,
        act_fn="gelu",
        normalization_type="LN",
        seed=seed,
    )
    return TransformerBridge.boot_native(cfg, device="cpu").eval()


def make_tiny_gpt2_bridge(
    seed: int = 0, *, n_layers: int = 2
) -> tuple[TransformerBridge, HookedTransformer]:
    """A randomly initialised HuggingFace GPT-2 (d_model 16, vocab 31) wrapped as a
    TransformerBridge (``boot_transformers(..., hf_model=...)`` with a local word-level
    tokenizer), and a HookedTransformer loaded with the same weights: the pair for parity checks.

    Example:
        >>> bridge, hooked = make_tiny_gpt2_bridge()
        >>> bridge.cfg.n_layers == hooked.cfg.n_layers == 2
        True
    """
    import tempfile

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(30)} | {"[UNK]": 30}
    words = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    special = {"unk_token": "[UNK]", "eos_token": "[UNK]", "bos_token": "[UNK]"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = GPT2Config(vocab_size=31, n_positions=16, n_embd=16, n_layer=n_layers, n_head=4)
        hf_model = GPT2LMHeadModel(config).eval()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.filterwarnings("ignore")  # TL's notices about the bridge and HookedTransformer
        PreTrainedTokenizerFast(tokenizer_object=words, **special).save_pretrained(folder)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)  # boot reloads it by path
        bridge = TransformerBridge.boot_transformers("gpt2", hf_model=hf_model, tokenizer=tokenizer)
        cfg = HookedTransformerConfig(
            n_layers=n_layers,
            d_model=16,
            d_head=4,
            n_heads=4,
            d_mlp=64,
            d_vocab=31,
            n_ctx=16,
            act_fn="gelu_new",
            normalization_type="LN",
            device="cpu",
        )
        hooked = HookedTransformer(cfg)
        hooked.load_state_dict(convert_gpt2_weights(hf_model, cfg), strict=False)
    return bridge.eval(), hooked.eval()


def make_tiny_convnet(seed: int = 0) -> nn.Sequential:
    """A tiny randomly initialised conv net (conv, relu, maxpool, flatten, linear) as a Sequential.

    Example:
        >>> make_tiny_convnet()(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 5])
    """
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return net.eval()
