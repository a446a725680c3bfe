"""The asymmetry answer for any model, checked against hand-solved cases and plain forwards.

A one-relu network has E and O in closed form; its relu held at t = 0 makes the line affine
(E = 0 exactly, O = the mask times 2t·v); a random direction's matched coefficient is checked by
re-running the model at it. Real tiny models (HookedTransformer, TransformerBridge, conv net)
run the whole answer, and the command line gets one line and status 2 on bad input.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from hookdiff.asymmetry import SteeringTask, answer, steering_vector
from hookdiff.cli import main
from hookdiff.errors import ConfigError, ShapeMismatchError
from hookdiff.stats import bootstrap_mean

A = np.array([[1.0, -2.0], [-0.5, 0.3], [0.2, 0.9], [-1.5, 1.2], [0.7, -0.1], [2.0, -0.4]])
V = np.array([1.0, 0.5])
W = np.array([1.0, -2.0])


def _relu_task(**kw) -> SteeringTask:
    """a ↦ w · relu(a), the vector v given; the pairs make v when given instead."""
    net = nn.Sequential(nn.Identity(), nn.ReLU()).double()
    w = torch.tensor(W)
    fields = dict(
        vector=torch.tensor(V),
        positives=None,
        negatives=None,
        inputs=torch.tensor(A),
        readout=lambda y: y @ w,
        t=1.5,
        name="relu",
    )
    return SteeringTask(net, "0", **(fields | kw))


def _by_hand(t: float) -> tuple[np.ndarray, np.ndarray]:
    def r(s: float) -> np.ndarray:
        return np.maximum(A + s * V, 0.0) @ W

    return r(t) + r(-t) - 2 * r(0.0), r(t) - r(-t)


@pytest.fixture(scope="module")
def relu_answer():
    return answer(_relu_task(), random_draws=2, progress=False)


def test_even_and_odd_are_the_hand_solved_ones(relu_answer):
    e, o = _by_hand(1.5)
    ds = relu_answer.dataset
    np.testing.assert_allclose(ds["even"].values, e, atol=1e-12)
    np.testing.assert_allclose(ds["odd"].values, o, atol=1e-12)
    (c,) = [c for c in relu_answer.claims if c.kind == "asymmetry"]
    assert c.estimate == pytest.approx(e.mean()) and c.n == len(A)
    assert (c.ci95[0], c.ci95[1]) == pytest.approx(bootstrap_mean(e, seed=0).as_list())
    assert c.odd == pytest.approx(o.mean())


def test_holding_the_relu_makes_the_line_affine(relu_answer):
    """Knock-out of the only relu: E = 0 and O = mask₀ · 2t·v · w per input, by hand."""
    ds = relu_answer.dataset
    assert list(ds["frozen"].values) == ["1"]
    np.testing.assert_allclose(ds["ko_even"].sel(frozen="1").values, 0.0, atol=1e-12)
    mask = (A > 0).astype(float)
    np.testing.assert_allclose(
        ds["ko_odd"].sel(frozen="1").values, (mask * 3.0 * V) @ W, atol=1e-12
    )
    (c,) = [c for c in relu_answer.claims if c.kind == "knockout"]
    assert c.where == "1" and c.estimate == pytest.approx(ds["even"].values.mean())


def test_cuts_after_the_relu_are_zero_by_construction_not_a_finding(relu_answer):
    (c,) = [c for c in relu_answer.claims if c.kind == "created"]
    assert c.detail["by_construction"] == ["1"] and c.where is None
    cut = relu_answer.dataset["cut_even"].sel(cut="1", variant=["linearize", "symmetrize"])
    np.testing.assert_allclose(cut, 0.0, atol=1e-12)


def test_random_directions_are_matched_in_effect(relu_answer):
    """At each matched t*, a forward along a + t*·u has |O| equal to the vector's own |O|."""
    ds = relu_answer.dataset
    net = nn.Sequential(nn.Identity(), nn.ReLU()).double()
    _, o = _by_hand(1.5)
    checked = 0
    for d in ds["draw"].values:
        gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([0, int(d)]).generate_state(1)[0])
        )
        u = torch.randn(2, generator=gen, dtype=torch.float64)
        u = (u * (torch.tensor(V).norm() / u.norm())).numpy()
        for i, t in enumerate(ds["rm_t"].sel(draw=d).values):
            if not math.isfinite(t):
                continue
            r = [float(net(torch.tensor(A[i] + s * u)) @ torch.tensor(W)) for s in (-t, 0.0, t)]
            # reached, to within the bisection's step (16 / 8 / 2**12 in t)
            assert abs(o[i]) * (1 - 1e-9) <= abs(r[2] - r[0]) <= abs(o[i]) + 2 * 5e-4 * 3
            assert float(ds["rm_even"].sel(draw=d, input=i)) == pytest.approx(
                r[2] + r[0] - 2 * r[1]
            )
            checked += 1
    assert checked >= len(A)


def test_the_vector_from_pairs_is_the_mean_activation_difference():
    pos, neg = torch.tensor(A[:3]), torch.tensor(A[3:])
    task = _relu_task(vector=None, positives=pos, negatives=neg)
    torch.testing.assert_close(steering_vector(task), (pos - neg).mean(dim=0))


def test_bad_tasks_are_refused_with_what_was_expected():
    with pytest.raises(ConfigError, match="pairs.*or a vector"):
        answer(_relu_task(vector=None), progress=False)
    with pytest.raises(ConfigError, match="one to one"):
        answer(_relu_task(vector=None, positives=torch.tensor(A), negatives=torch.tensor(A[:2])))
    with pytest.raises(ShapeMismatchError, match=r"expected \(2,\)"):
        answer(_relu_task(readout=lambda y: y), progress=False)
    with pytest.raises(ConfigError, match="at least 2"):
        answer(_relu_task(inputs=torch.tensor(A[:1])), progress=False)


@pytest.mark.parametrize("kind", ["hooked", "bridge"])
def test_the_whole_answer_on_real_tiny_transformers(kind):
    from hookdiff.tiny import make_tiny_bridge, make_tiny_transformer

    model = make_tiny_transformer() if kind == "hooked" else make_tiny_bridge()
    tokens = torch.randint(0, 23, (14, 5), generator=torch.Generator().manual_seed(0))
    task = SteeringTask(
        model, "blocks.0.hook_resid_post", tokens[:4], tokens[4:8], tokens[8:],
        readout=lambda logits: logits[:, -1, 1] - logits[:, -1, 2],
    )  # fmt: skip
    result = answer(task, random_draws=1, random_steps=6, progress=False)
    kinds = [c.kind for c in result.claims]
    assert kinds == ["asymmetry", "random_matched", "created", "made", "knockout"]
    ds = result.dataset
    assert set(ds["cut"].values) == {"blocks.1.hook_resid_post", ds.attrs["depth"]}
    assert len(ds["frozen"]) == 5  # block 1's four states and ln_final
    by_hand = []
    with torch.no_grad():
        for s in (-1.0, 0.0, 1.0):
            import hookdiff

            v = steering_vector(task)
            with hookdiff.steer(model, "blocks.0.hook_resid_post", v, s):
                by_hand.append(task.readout(model(tokens[8:])).double().numpy())
    np.testing.assert_allclose(ds["even"], by_hand[2] + by_hand[0] - 2 * by_hand[1], atol=1e-4)
    assert all(
        c.verdict in ("positive", "negative", "equivalent", "inconclusive") for c in result.claims
    )


def test_the_command_line_writes_the_answer_and_refuses_bad_files(tmp_path, capsys):
    task_file = tmp_path / "task.py"
    task_file.write_text(
        "import torch\n"
        "from hookdiff.asymmetry import SteeringTask\n"
        "from hookdiff.tiny import make_tiny_convnet\n"
        "def task():\n"
        "    x = torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(0))\n"
        "    return SteeringTask(make_tiny_convnet(), '0', x[:3], x[3:6], x[6:],\n"
        "                        readout=lambda y: y[:, 0] - y[:, 1], name='demo')\n"
    )
    out = tmp_path / "out"
    argv = ["answer", str(task_file), "--out", str(out), "--random-draws", "1", "--no-progress"]
    assert main(argv) == 0
    saved = json.loads((out / "answer.json").read_text())
    assert [c["kind"] for c in saved["answer"]][0] == "asymmetry"
    assert all(c["claim"] and c["verdict"] for c in saved["answer"])
    assert "| claim | where |" in (out / "report.md").read_text()
    capsys.readouterr()
    (tmp_path / "empty.py").write_text("x = 1\n")
    for bad in ("missing.py", "empty.py"):
        assert main(["answer", str(tmp_path / bad), "--out", str(tmp_path / "no")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("hookdiff answer: error:")
