"""Train an ImpalaPolicy on the maze by imitating the exact shortest-path expert.

The published agents were trained with PPO for ~200M steps on GPUs; this machine has two CPU
cores. The maze is fully known from its state, so every open cell of every training maze can be
labelled with the first step of the shortest path to the cheese and learned with a cross-entropy
on the policy's direction probabilities (logsumexp over each direction's actions). Batches are
drawn fresh from the training distribution (``envs/train-top-right-5.json``: hard mazes, cheese in
the inner maze's top-right 5×5), each batch's mazes seeded by (seed, step), so a run that is
interrupted and resumed from its checkpoint sees exactly the same data as one that is not.

Behaviour cloning sees every cell equally often; a sampling policy spends its time on a few, and
the cells where it is wrong trap it in loops. An optional second phase (``dagger_samples``) is
online DAgger: each round rolls the current policy out on fresh training mazes, labels every
state it visited with the expert's step, and trains on those mixed 1:1 with fresh expert cells.
Rounds are short and checkpoints fall between them, so resuming stays exact in this phase too.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from hookdiff._config import option
from hookdiff._device import DEVICE_HELP, check_device_name, resolve_device
from hookdiff._io import atomic_write
from hookdiff.agent import ImpalaPolicy, load_checkpoint, obs_to_tensor, save_checkpoint
from hookdiff.errors import ConfigError
from hookdiff.maze.actions import direction_log_probs

__all__ = [
    "ExpertStream",
    "OnPolicyRound",
    "TrainConfig",
    "TrainResult",
    "on_policy_round",
    "train",
]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; written into every checkpoint."""

    out_dir: str = option(
        "runs/train",
        "Folder for train_state.pt (resumable), policy.pt (original format) and the log; "
        "resumed if it exists.",
        flag="--out",
    )
    spec: str = option(
        "train-top-right-5", "Name of the maze spec in envs/ the mazes are drawn from."
    )
    scale: int = option(
        1, "IMPALA width multiplier (1: 16/32/32 channels, ~0.63M parameters).", min=1
    )
    total_samples: int = option(
        6_000_000, "Labelled observations of behaviour cloning (then the DAgger phase).", min=1
    )
    batch_size: int = option(256, "Observations per optimizer step.", min=1)
    chunk_mazes: int = option(
        24,
        "Mazes per data chunk; every open cell of them is used once, shuffled across batches.",
        min=1,
    )
    lr: float = option(5e-4, "Adam learning rate (cosine-decayed to 10% over the run).", min=0)
    seed: int = option(0, "Seeds the initial weights and every batch's mazes.")
    eval_every: int = option(200, "Steps between validation-accuracy evaluations.", min=1)
    eval_mazes: int = option(
        24, "Held-out mazes (level seeds disjoint from training) for validation accuracy.", min=1
    )
    checkpoint_every_s: float = option(
        180.0,
        "Minutes between resumable checkpoints.",
        flag="--checkpoint-minutes",
        factor=60.0,
        min=0,
    )
    threads: int = option(2, "Torch intra-op threads.", min=1)
    device: str = option("auto", DEVICE_HELP, check=check_device_name)
    max_seconds: float | None = option(
        None,
        "Stop (after checkpointing, resumably) once this many minutes have passed in this "
        "invocation; none: run to the end.",
        flag="--max-minutes",
        factor=60.0,
        min=0,
    )
    stop_after_steps: int | None = option(
        None,
        "Stop (after checkpointing, resumably) after this many steps in this invocation; "
        "none: run to the end.",
        min=0,
    )
    dagger_samples: int = option(
        2_000_000,
        "Samples of the DAgger phase after behaviour cloning (0: behaviour cloning only).",
        min=0,
    )
    dagger_lr: float = option(
        1e-4,
        "Adam learning rate of the DAgger phase (cosine-decayed to 10% over the phase).",
        min=0,
    )
    dagger_mazes: int = option(
        64, "Fresh training mazes the policy is rolled out on per DAgger round.", min=1
    )
    dagger_max_steps: int = option(
        100, "Step limit of each DAgger rollout (a policy stuck in a loop is cut off here).", min=1
    )
    dagger_max_visits: int = option(
        4,
        "At most this many samples of one (maze, cell) per round, so one loop cannot fill a round.",
        min=1,
    )
    init_from: str | None = option(
        None,
        "Start from this checkpoint's weights (fine-tuning, e.g. the control agent from the "
        "shipped one); none: a fresh seeded initialisation. A resumed run ignores it.",
    )


@dataclass
class TrainResult:
    """What a run reached: steps, samples, time, and the last validation accuracy."""

    steps: int
    samples: int
    wall_seconds: float
    val_accuracy: float | None
    finished: bool
    history: list[dict[str, Any]] = field(default_factory=list)


class ExpertStream:
    """Training batches drawn fresh from the spec: chunks of mazes, every open cell labelled.

    Chunk ``c`` holds every open cell of ``chunk_mazes`` mazes sampled with seed
    ``(seed, c)``, shuffled, and cut into batches. The position ``(chunk, offset)`` is saved in
    checkpoints; regenerating a chunk gives identical data, so resuming changes nothing. The next
    chunk is rendered in a background thread while the current one trains (procgen releases the
    GIL).
    """

    def __init__(self, config: TrainConfig, chunk: int = 0, offset: int = 0):
        self.config = config
        self.chunk, self.offset = chunk, offset
        self._pool = ThreadPoolExecutor(1)
        self._current = self._make(chunk)
        self._next = self._pool.submit(self._make, chunk + 1)

    def _make(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        from hookdiff.maze.sets import expert_batch

        seed = _chunk_seed(self.config.seed, chunk)
        b = expert_batch(self.config.spec, self.config.chunk_mazes, seed=seed, threads=1)
        order = np.random.default_rng(seed).permutation(len(b.labels))
        return b.obs[order], b.labels[order]

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next ``batch_size`` observations and labels (a chunk's remainder is dropped)."""
        bs = self.config.batch_size
        obs, labels = self._current
        if self.offset + bs > len(labels):
            self.chunk, self.offset = self.chunk + 1, 0
            self._current = obs, labels = self._next.result()
            self._next = self._pool.submit(self._make, self.chunk + 1)
        batch = obs[self.offset : self.offset + bs], labels[self.offset : self.offset + bs]
        self.offset += bs
        return batch

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class OnPolicyRound:
    """One DAgger round's data: what the policy saw, the expert's labels, and how it fared."""

    obs: np.ndarray
    labels: np.ndarray
    from_policy: np.ndarray
    """Per sample: True for a state the policy visited, False for an expert cell."""
    reach_rate: float
    """Fraction of the round's mazes where the policy reached the cheese within the step limit."""


def on_policy_round(policy: nn.Module, config: TrainConfig, round_index: int) -> OnPolicyRound:
    """Roll ``policy`` out on fresh mazes, label what it saw; mix 1:1 with fresh expert cells.

    Deterministic in (weights, config, round_index): mazes, action sampling and the expert cells
    are all seeded by the round.
    """
    from hookdiff.maze.paths import direction_field
    from hookdiff.maze.sets import expert_batch, sample_mazes
    from hookdiff.rollout import rollout

    seed = _round_seed(config.seed, round_index)
    mazes = sample_mazes(config.spec, config.dagger_mazes, seed=seed)
    fields = np.stack([direction_field(m, m.cheese) for m in mazes])
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def record(envs: np.ndarray, obs: np.ndarray, cells: np.ndarray) -> None:
        seen.append((envs, obs, cells))

    ds = rollout(
        policy,
        mazes,
        max_steps=config.dagger_max_steps,
        seed=seed,
        stop_at_top_right=False,
        on_step=record,
    )
    envs = np.concatenate([e for e, _, _ in seen])
    cells = np.concatenate([c for _, _, c in seen])
    obs = np.concatenate([o for _, o, _ in seen])
    labels = fields[envs, cells[:, 0], cells[:, 1]]
    # the k-th visit of a (maze, cell) is kept for k < dagger_max_visits
    key = (envs * fields.shape[1] + cells[:, 0]) * fields.shape[2] + cells[:, 1]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, sorted_key, side="left")
    visit = np.empty_like(order)
    visit[order] = np.arange(len(order)) - first
    keep = (labels >= 0) & (visit < config.dagger_max_visits)
    obs, labels = obs[keep], labels[keep]
    n_mix = len(labels)
    expert_obs, expert_labels = [], []
    k = 0
    while n_mix > 0 and sum(len(x) for x in expert_labels) < n_mix:
        b = expert_batch(config.spec, 8, seed=_round_seed(config.seed, round_index, k + 1))
        expert_obs.append(b.obs)
        expert_labels.append(b.labels)
        k += 1
    if expert_labels:
        obs = np.concatenate([obs, np.concatenate(expert_obs)[:n_mix]])
        labels = np.concatenate([labels, np.concatenate(expert_labels)[:n_mix]])
    from_policy = np.arange(len(labels)) < n_mix
    perm = np.random.default_rng(seed).permutation(len(labels))
    return OnPolicyRound(
        obs=obs[perm],
        labels=labels[perm].astype(np.int64),
        from_policy=from_policy[perm],
        reach_rate=float(ds.reached_cheese.mean()),
    )


def _round_seed(seed: int, round_index: int, part: int = 0) -> int:
    """Seeds of DAgger rounds: above training chunks (below 2**30) and validation (2**30 + seed)."""
    return 3 * 2**30 + (seed * 1_000_003 + round_index * 104_729 + part * 7919) % (2**29)


def _chunk_seed(seed: int, chunk: int) -> int:
    """Sampling seeds of training chunks; validation uses seeds at or above 2**30."""
    return (seed * 1_000_003 + chunk * 7919) % (2**30)


def _validation_set(config: TrainConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    from hookdiff.maze.sets import expert_batch

    b = expert_batch(config.spec, config.eval_mazes, seed=2**30 + config.seed)
    labels = torch.as_tensor(b.labels, dtype=torch.long, device=device)
    return obs_to_tensor(b.obs, device=device), labels


def _loss(
    policy: ImpalaPolicy, obs: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and the accuracy of a batch, both left on the device (reading them syncs)."""
    logp = direction_log_probs(policy(obs))  # (N, 5): left, down, up, right, none
    loss = F.nll_loss(logp, labels)
    acc = (logp.argmax(-1) == labels).float().mean()
    return loss, acc


@torch.no_grad()
def _accuracy(policy: ImpalaPolicy, obs: torch.Tensor, labels: torch.Tensor) -> float:
    policy.eval()
    correct = 0
    for i in range(0, len(labels), 512):
        x = obs[i : i + 512].contiguous(memory_format=torch.channels_last)
        correct += int((direction_log_probs(policy(x)).argmax(-1) == labels[i : i + 512]).sum())
    policy.train()
    return correct / max(1, len(labels))


def _lr_at(config: TrainConfig, step: int) -> float:
    total = max(1, config.total_samples // config.batch_size)
    frac = min(1.0, step / total)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def train(config: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Train (or resume) a run; checkpoints every few minutes and at the end.

    Behaviour cloning runs for ``total_samples``, then DAgger rounds for ``dagger_samples``.
    Resuming reads ``out_dir/train_state.pt`` if present (its config must match, except
    ``max_seconds``/``threads``/``out_dir``, and DAgger settings while that phase has not begun)
    and continues from the saved step with the same data.

    Usage (minutes): ``train(TrainConfig(out_dir="runs/tiny", total_samples=512))``; the command
    line's ``hookdiff train`` calls it.
    """
    run = _Run(config, progress)
    stopped = run.step < run.bc_steps and _behaviour_cloning(run)
    if not stopped:
        _dagger(run)
    run.bar.close()
    run.checkpoint()
    return TrainResult(
        steps=run.step,
        samples=run.samples,
        wall_seconds=run.wall_before + time.monotonic() - run.t0,
        val_accuracy=run.val_acc,
        finished=run.samples >= run.end_samples,
        history=run.history,
    )


class _Run:
    """One run of :func:`train`: the seeded policy and optimiser (or the saved ones, resumed), the
    counters, history and data position that its checkpoint holds, its clock and progress bar.

    Built in the order the run's random state depends on: threads, seed, the policy's
    initialisation, the optimiser, the saved state, then the validation set.
    """

    def __init__(self, config: TrainConfig, progress: bool) -> None:
        self.config, self.progress = config, progress
        torch.set_num_threads(config.threads)
        self.device = resolve_device(config.device)
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state_path = self.out / "train_state.pt"
        torch.manual_seed(config.seed)
        policy = ImpalaPolicy(scale=config.scale)
        self.policy = policy.to(self.device, memory_format=torch.channels_last)
        self.optim = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.step, self.samples, self.wall_before, self.history = 0, 0, 0.0, []
        self.cpu_before: float | None = 0.0
        self.chunk, self.offset, self.round_index = 0, 0, 0
        if self.state_path.exists():
            self._resume()
        elif config.init_from is not None:
            self._start_from(config.init_from)
        self.policy.train()
        self.val_obs, self.val_labels = _validation_set(config, self.device)
        self.bc_steps = math.ceil(config.total_samples / config.batch_size)
        self.bc_samples = self.bc_steps * config.batch_size
        self.end_samples = self.bc_samples + config.dagger_samples
        self.first_step = self.step
        self.t0 = self.last_ckpt = time.monotonic()
        self.c0 = time.process_time()  # this process's CPU seconds, all threads
        scored = [h["val_accuracy"] for h in self.history if "val_accuracy" in h]
        self.val_acc = scored[-1] if scored else None
        self.bar = tqdm(
            total=self.end_samples,
            initial=self.samples,
            disable=not progress,
            desc="train",
            unit="obs",
        )

    def _start_from(self, path: str) -> None:
        """Copy the weights of the checkpoint at ``path`` (its scale must be the run's)."""
        start = load_checkpoint(path)
        if start.scale != self.config.scale:
            raise ConfigError(
                f"--init-from {path}: a scale-{start.scale} policy; this run trains scale "
                f"{self.config.scale} (set --scale {start.scale})"
            )
        self.policy.load_state_dict(start.state_dict())

    def _resume(self) -> None:
        """Load the saved weights, optimiser, counters, history and data position."""
        saved = torch.load(self.state_path, map_location="cpu", weights_only=False)
        _check_resumable(saved["config"], self.config, saved["samples"])
        self.policy.load_state_dict(saved["model_state_dict"])
        self.optim.load_state_dict(saved["optimizer"])
        self.step, self.samples = saved["step"], saved["samples"]
        self.wall_before, self.history = saved["wall_seconds"], saved["history"]
        self.cpu_before = saved.get("cpu_seconds")  # None: an older run that did not count it
        self.chunk, self.offset = saved["data_position"]
        self.round_index = saved.get("dagger_round", 0)
        planned = saved["config"]["total_samples"]
        if planned != self.config.total_samples:  # behaviour cloning shortened (checked above)
            self.history.append(
                {
                    "step": self.step,
                    "samples": self.samples,
                    "schedule_change": {
                        "total_samples": [planned, self.config.total_samples],
                    },
                }
            )

    def checkpoint(self) -> None:
        """Save the resumable state, the policy and the history."""
        wall = self.wall_before + time.monotonic() - self.t0
        cpu = None if self.cpu_before is None else self.cpu_before + time.process_time() - self.c0
        _atomic_save(
            {
                "config": asdict(self.config),
                "model_state_dict": self.policy.state_dict(),
                "optimizer": self.optim.state_dict(),
                "step": self.step,
                "samples": self.samples,
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "history": self.history,
                "data_position": (self.chunk, self.offset),
                "dagger_round": self.round_index,
            },
            self.state_path,
        )
        save_checkpoint(self.policy, self.out / "policy.pt")
        (self.out / "history.json").write_text(json.dumps(self.history, indent=1))

    def checkpoint_if_due(self) -> None:
        """:meth:`checkpoint` when ``checkpoint_every_s`` has passed since the last one."""
        if time.monotonic() - self.last_ckpt >= self.config.checkpoint_every_s:
            self.checkpoint()
            self.last_ckpt = time.monotonic()

    def learn(self, obs_u8: np.ndarray, labels: np.ndarray, lr: float, **log: Any) -> None:
        """One optimiser step on a batch at learning rate ``lr``; evaluate when due."""
        obs = obs_to_tensor(obs_u8, device=self.device, memory_format=torch.channels_last)
        for group in self.optim.param_groups:
            group["lr"] = lr
        target = torch.as_tensor(labels, dtype=torch.long).to(self.device)
        loss, acc = _loss(self.policy, obs, target)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        self.step += 1
        self.samples += len(labels)
        self.bar.update(len(labels))
        if self.progress and self.step % _POSTFIX_EVERY == 0:  # reading the loss waits for a GPU
            self.bar.set_postfix(
                loss=f"{loss.item():.3f}", acc=f"{acc.item():.2f}", val=self.val_acc, **log
            )
        if self.step % self.config.eval_every == 0 or self.step == self.bc_steps:
            self._evaluate(loss, log)

    def _evaluate(self, loss: torch.Tensor, log: dict[str, Any]) -> None:
        """Validation accuracy now, appended to the history with the batch's loss."""
        self.val_acc = _accuracy(self.policy, self.val_obs, self.val_labels)
        self.history.append(
            {
                "step": self.step,
                "samples": self.samples,
                "wall_seconds": round(self.wall_before + time.monotonic() - self.t0, 1),
                "train_loss": round(loss.item(), 4),
                "val_accuracy": round(self.val_acc, 4),
                **log,
            }
        )

    def out_of_time(self) -> bool:
        """Whether ``max_seconds`` or ``stop_after_steps`` (this session's) has run out."""
        now = time.monotonic()
        if self.config.max_seconds is not None and now - self.t0 >= self.config.max_seconds:
            return True
        stop = self.config.stop_after_steps
        return stop is not None and self.step - self.first_step >= stop


def _behaviour_cloning(run: _Run) -> bool:
    """Phase 1: behaviour cloning on every cell of fresh mazes; whether the run stopped early."""
    stream = ExpertStream(run.config, run.chunk, run.offset)
    stopped = False
    while run.step < run.bc_steps:
        run.learn(*stream.next_batch(), _lr_at(run.config, run.step))
        run.chunk, run.offset = stream.chunk, stream.offset
        run.checkpoint_if_due()
        if run.out_of_time():
            stopped = True
            break
    stream.close()
    return stopped


def _dagger(run: _Run) -> None:
    """Phase 2: DAgger rounds (checkpoints only between rounds, where resuming is exact)."""
    config, stopped = run.config, False
    while not stopped and run.samples < run.end_samples:
        run.policy.eval()
        data = on_policy_round(run.policy, config, run.round_index)
        run.policy.train()
        frac = (run.samples - run.bc_samples) / max(1, config.dagger_samples)
        lr = config.dagger_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
        bs = config.batch_size
        # full batches (the remainder is dropped); a round smaller than a batch is one step
        for i in range(0, max(1, len(data.labels) - bs + 1), bs):
            run.learn(
                data.obs[i : i + bs],
                data.labels[i : i + bs],
                lr,
                phase="dagger",
                round=run.round_index,
                round_reach=round(data.reach_rate, 3),
            )
        run.round_index += 1
        run.checkpoint_if_due()
        stopped = run.out_of_time()


#: Steps between progress-bar updates of the loss and accuracy.
_POSTFIX_EVERY = 20

_RESUME_FREE = {
    "out_dir",
    "max_seconds",
    "stop_after_steps",
    "threads",
    "checkpoint_every_s",
    "device",
}
_DAGGER_KEYS = {
    "dagger_samples",
    "dagger_lr",
    "dagger_mazes",
    "dagger_max_steps",
    "dagger_max_visits",
}


def _check_resumable(saved: dict[str, Any], config: TrainConfig, samples_done: int) -> None:
    """Refuse to resume with other settings, except DAgger's before that phase has begun.

    Behaviour cloning may also be *shortened* while it runs (``total_samples`` lowered, never
    below the samples already learned): the phase ends there and DAgger starts. The learning rate
    then follows the shorter cosine from the step reached, so a shortened run is a different
    schedule; :meth:`_Run._resume` records the change in the history.
    """
    now = asdict(config)
    bc_samples = math.ceil(saved["total_samples"] / saved["batch_size"]) * saved["batch_size"]
    in_bc = samples_done <= bc_samples
    free = _RESUME_FREE | (_DAGGER_KEYS if in_bc else set())
    if in_bc and samples_done <= now["total_samples"] <= saved["total_samples"]:
        free = free | {"total_samples"}  # behaviour cloning cut short, never below what is done
    differ = {k: (saved.get(k), v) for k, v in now.items() if k not in free and saved.get(k) != v}
    if differ:
        raise ConfigError(
            f"cannot resume {config.out_dir}: its checkpoint was trained with other settings "
            f"{ {k: f'{a!r} (saved) vs {b!r} (now)' for k, (a, b) in differ.items()} }; use a new "
            f"--out folder or the saved settings"
        )
