"""The finished block tasks of a study, kept on disk so that a stopped study can resume.

A study at the published network size, or ``--full`` on a laptop, runs for hours; a kill, a lost
node or the end of a batch job would otherwise lose all of it. Each per-maze block task's result
(its partial Dataset with its wall and CPU seconds) is written to ``OUT/blocks/`` as soon as it
finishes, one file per task. ``hookdiff study --resume`` reruns the driver steps (they are
seeded), takes every finished block from there and computes only the rest, so the resumed
study's dataset equals an uninterrupted run's; its timings add up the blocks' own, so run.json
still says what the whole study cost. A finished study deletes the folder (``study.nc`` holds
it all). The blocks are pickles: resume only from run folders you wrote.

A resume is refused (:class:`~hookdiff.errors.ConfigError`) when the saved blocks came from
another study: other config fields (those that change results; not the run folder, the backend
or the progress bars), other checkpoint contents, other package versions or other hookdiff code
(its source files' hash: an editable install changes without a new version).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookdiff._io import atomic_write, package_versions, write_json
from hookdiff.errors import ConfigError

if TYPE_CHECKING:
    from hookdiff.study.config import StudyConfig

__all__ = ["BLOCKS_DIR", "BlockStore", "code_sha256", "study_fingerprint"]

#: The folder of the run folder the finished blocks go to.
BLOCKS_DIR = "blocks"
#: Config fields that say where and how the study runs, not what it computes.
_NOT_RESULTS = ("out_dir", "resume", "backend", "ray_address", "ray_workers")


def study_fingerprint(config: StudyConfig) -> dict[str, Any]:
    """What a block's result depends on: the config fields that change results, the contents
    of each checkpoint (sha256; the shipped agent's when none is given), package versions and
    the hookdiff code."""
    from hookdiff.agent import checkpoint_sha256, default_checkpoint_path

    fields = {k: v for k, v in config.to_dict().items() if k not in _NOT_RESULTS}
    paths = list(config.checkpoints())
    if not paths and default_checkpoint_path().is_file():
        paths = [str(default_checkpoint_path())]
    hashes = [checkpoint_sha256(Path(p)) for p in paths]
    return {
        "config": fields,
        "checkpoint_sha256": hashes,
        "versions": package_versions(),
        "code_sha256": code_sha256(),
    }


def code_sha256() -> str:
    """sha256 over the hookdiff package's Python files (their paths and contents)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class BlockStore:
    """The finished block tasks of the study in ``config.out_dir`` (see the module docstring).

    Without ``config.resume`` a new study starts: blocks a stopped run left are deleted. With
    it, they are reused when their fingerprint is this study's, else :class:`ConfigError`.
    """

    def __init__(self, config: StudyConfig):
        self.folder = Path(config.out_dir) / BLOCKS_DIR
        self.fingerprint = json.loads(json.dumps(study_fingerprint(config), default=list))
        self.reused = 0
        """Block tasks taken from disk in this run."""
        record = self.folder / "study.json"
        if config.resume and record.is_file():
            self._check(json.loads(record.read_text()))
        else:
            if config.resume:
                print(
                    f"hookdiff study --resume: no finished blocks in {self.folder}; starting anew",
                    file=sys.stderr,
                )
            shutil.rmtree(self.folder, ignore_errors=True)
            write_json(self.fingerprint, record)

    def _check(self, saved: dict[str, Any]) -> None:
        """Refuse blocks of another study, naming what differs."""
        if saved == self.fingerprint:
            return
        ours = self.fingerprint
        differ = [
            f"--{k.replace('_', '-')}"
            for k in ours["config"]
            if saved["config"].get(k) != ours["config"][k]
        ]
        if saved["checkpoint_sha256"] != ours["checkpoint_sha256"]:
            differ.append("the checkpoint contents")
        if saved["versions"] != ours["versions"]:
            differ.append("package versions")
        if saved.get("code_sha256") != ours["code_sha256"]:
            differ.append("hookdiff code")
        raise ConfigError(
            f"cannot resume the study in {self.folder.parent}: its finished blocks were computed "
            f"with other {', '.join(differ) or 'settings'}; rerun with the options of that run, or "
            "without --resume to start anew"
        )

    def path(self, agent: int, step: str, start: int, stop: int, extra: tuple[Any, ...]) -> Path:
        """The file of agent ``agent``'s ``step`` on mazes ``start:stop`` with further
        arguments ``extra`` (their repr, hashed, names them)."""
        digest = hashlib.sha256(repr(extra).encode()).hexdigest()[:12]
        return self.folder / f"{agent}-{step.replace(' ', '_')}-{start}-{stop}-{digest}.pkl"

    def load(self, path: Path) -> Any | None:
        """The saved result at ``path``, or None when that block is not finished."""
        if not path.is_file():
            return None
        self.reused += 1
        with path.open("rb") as f:
            return pickle.load(f)

    def save(self, path: Path, result: Any) -> None:
        """Keep one finished block's result (atomically: a kill leaves no half-written block)."""
        with atomic_write(path) as tmp, tmp.open("wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)

    def finish(self) -> None:
        """The study is complete: its blocks are no longer needed."""
        shutil.rmtree(self.folder, ignore_errors=True)
