# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The asymmetry question for your own model
#
# The maze study asks one question of one network: with f the layers after the steering layer,
# does f(a + t·v) move the output differently from f(a − t·v), and which nonlinearity makes it
# so? This notebook asks it of a model trained here, in seconds, with
# [`hookdiff.asymmetry.answer`](../api/asymmetry.md): a model, a hook, contrast pairs, base
# inputs and a readout go in; the asymmetry with intervals, a random push matched in effect, the
# cut scan, knock-outs and verdicts come out.
#
# The model is a TransformerLens 3 `TransformerBridge` (built offline with `boot_native`), two
# layers, trained to read five words and say whether most are "good" (tokens 0–7) or "bad"
# (8–15). The concept to steer is the words' sentiment.

# %%
import time

import torch
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge

from hookdiff.asymmetry import SteeringTask, answer

GOOD, BAD = range(0, 8), range(8, 16)
SAYS_GOOD, SAYS_BAD, QUERY = 16, 17, 18


def sentences(n: int, gen: torch.Generator, n_good: int | None = None):
    """n sentences of five words and a query token; the label: most words are good."""
    k = torch.randint(0, 6, (n,), generator=gen) if n_good is None else torch.full((n,), n_good)
    good = torch.randint(GOOD.start, GOOD.stop, (n, 5), generator=gen)
    bad = torch.randint(BAD.start, BAD.stop, (n, 5), generator=gen)
    chosen = torch.rand(n, 5, generator=gen).argsort(dim=1) < k[:, None]
    words = torch.where(chosen, good, bad)
    return torch.cat([words, torch.full((n, 1), QUERY)], dim=1), (k >= 3).long()


# %% [markdown]
# ## Train it (seconds on a laptop CPU)

# %%
config = TransformerBridgeConfig(
    n_layers=2, d_model=32, n_ctx=8, d_head=8, n_heads=4, d_mlp=64, d_vocab=19, act_fn="gelu",
    seed=0,
)  # fmt: skip
model = TransformerBridge.boot_native(config)
optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
gen = torch.Generator().manual_seed(0)
start = time.time()
for _ in range(60):
    tokens, label = sentences(128, gen)
    logits = model(tokens)[:, -1, [SAYS_BAD, SAYS_GOOD]]
    loss = torch.nn.functional.cross_entropy(logits, label)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
model.eval()
test, label = sentences(2000, torch.Generator().manual_seed(1))
with torch.no_grad():
    said = model(test)[:, -1]
accuracy = ((said[:, SAYS_GOOD] > said[:, SAYS_BAD]).long() == label).float().mean()
print(f"trained in {time.time() - start:.0f} s; held-out accuracy {accuracy:.3f}")

# %% [markdown]
# ## The question, as a task
#
# - **Vector** (ActAdd): the mean difference, at `blocks.0.hook_resid_post`, between sentences
#   of five good words and sentences of five bad words (16 pairs).
# - **Inputs**: 32 sentences that lean bad (two good words, three bad), then 32 that lean good.
# - **Readout**: the logit of "good" minus the logit of "bad" at the query.
#
# E = r(+t) + r(−t) − 2 r(0) is the add/subtract asymmetry, O = r(+t) − r(−t) the steering;
# t = 0.5 (the vector, five good words minus five bad, is a large push).

# %%
pairs = torch.Generator().manual_seed(2)
positives, _ = sentences(16, pairs, n_good=5)
negatives, _ = sentences(16, pairs, n_good=0)


def good_minus_bad(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, -1, SAYS_GOOD] - logits[:, -1, SAYS_BAD]


def task_on(inputs: torch.Tensor) -> SteeringTask:
    return SteeringTask(
        model,
        "blocks.0.hook_resid_post",
        positives,
        negatives,
        inputs,
        readout=good_minus_bad,
        t=0.5,
        name="sentiment",
        readout_name="logit(good) − logit(bad)",
    )


leans_bad, _ = sentences(32, pairs, n_good=2)
leans_good, _ = sentences(32, pairs, n_good=3)
start = time.time()
on_bad = answer(task_on(leans_bad), seed=0, random_draws=2, progress=False)
on_good = answer(task_on(leans_good), seed=0, random_draws=2, progress=False)
print(f"answered in {time.time() - start:.0f} s")

# %% [markdown]
# ## The answer
#
# Each row is a claim with its 95 % bootstrap interval over the 32 inputs and its verdict
# (Holm-adjusted over the family). Before reading it, what would mean the opposite: an
# asymmetry interval around 0 (adding and subtracting act alike); a matched random push with
# the same E (the asymmetry is any push's, not the sentiment's); a knock-out that removes E
# but also O (it kills the steering, so it does not locate the asymmetry).
#
# On sentences that lean bad:

# %%
from IPython.display import Markdown  # noqa: E402

Markdown(on_bad.report())

# %% [markdown]
# On sentences that lean good:

# %%
Markdown(on_good.report())

# %% [markdown]
# Read together: the sign of E·O says which push moves the readout more, and it flips with the
# side the sentence already leans to. Pushing a sentence across its decision moves the logits
# more than pushing it further into its own side, where the final LayerNorm (the span into
# `unembed.hook_out`) bounds the response: the same shape as the maze agent's asymmetry, which
# the maze study tests with controls, held-out mazes and a confirmatory run.
#
# %% [markdown]
# The claims are data, too: `on_bad.claims` (each with `estimate`, `ci95`, `n`, `verdict`),
# `on_bad.dataset` (E and O per input, per cut, per knock-out) and `on_bad.save(folder)` for
# `answer.nc`, `answer.json` and `report.md`. From the command line, put the task in a file
# with a `task()` function and run `hookdiff answer task.py`.

# %%
for claim in on_bad.claims + on_good.claims:
    print(f"{claim.kind:15s} {claim.where or '—':45s} {claim.estimate:+.3f}  {claim.verdict}")
