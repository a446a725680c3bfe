"""Steer a HookedTransformer with hookdiff: a contrast vector, one batched sweep, f_n per depth.

Run: ``python examples/steer_transformer.py``. Uses a tiny random model so it runs offline; swap in
``HookedTransformer.from_pretrained(...)`` where you have weights.
"""

import torch

import hookdiff
from hookdiff.tiny import make_tiny_transformer

model = make_tiny_transformer(seed=0)
tokens = torch.randint(0, model.cfg.d_vocab, (8, 6), generator=torch.Generator().manual_seed(0))
hook = "blocks.0.hook_resid_post"

# 1. a steering vector from a contrast pair (the activation's shape without the batch dim)
with hookdiff.capture(model, [hook]) as acts:
    model(tokens[:2])
vector = acts[hook][0] - acts[hook][1]  # (pos, d_model)

# 2. steer one forward, at a few positions only
mask = torch.tensor([False, False, True, True, True, True])
with hookdiff.steer(model, hook, vector, 1.5, mask=mask):
    steered = model(tokens)

# 3. or as a TransformerLens hook function in a fwd_hooks list
same = model.run_with_hooks(
    tokens, fwd_hooks=[(hook, hookdiff.steering_hook(vector, 1.5, mask=mask))]
)
assert torch.allclose(steered, same)

# 4. all coefficients in one batched forward, captured downstream, as an xarray Dataset
coeffs = [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0]
ds = hookdiff.sweep(
    model, tokens, hook, vector, coeffs, capture=["output", "blocks.1.hook_resid_post"]
)
diff = ds.output - ds.output_baseline  # (coeff, batch, pos, vocab)
print("‖diff(t)‖ of the logits per coefficient:")
print((diff**2).sum(["batch", "pos", "vocab"]) ** 0.5)

# 5. f_1: only the segment after the hook (block 1), differentiable
f1 = hookdiff.downstream(model, hook, 1)
a = acts[hook]
_, jv = torch.func.jvp(f1, (a,), (vector.expand_as(a),))
print("‖J·v‖ at the first layer after the hook:", float(jv.detach().norm()))
