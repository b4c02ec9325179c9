"""Checkpoints of one run that survive a kill at any instant, and are verified before use.

A checkpoint is a folder: ``model.zip`` (SB3's ``save``), ``replay_buffer.pkl`` (off-policy
algorithms), ``vecnormalize.pkl`` (with observation normalisation), ``rng.pkl`` (Python, NumPy
and torch global generator states), ``state.json`` (the run's progress: curve, diagnostics,
timings) and ``manifest.json``, written last, with the
SHA-256 of every other file and the digest of the run's definition. It is written to a temporary
folder and swapped in with renames, so the folder named ``checkpoint`` is always either the
previous complete checkpoint or the new one; a checkpoint whose manifest is missing or does not
match its files (a half-written or corrupted one) is reported by :func:`load_checkpoint` as
:class:`CorruptCheckpoint` and the caller starts the run again from zero.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

__all__ = ["CHECKPOINT", "CorruptCheckpoint", "save_checkpoint", "load_checkpoint", "restore_rng",
           "write_json_atomic"]

CHECKPOINT = "checkpoint"
_MANIFEST = "manifest.json"


class CorruptCheckpoint(RuntimeError):
    """A checkpoint folder that is incomplete, altered or unreadable."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1, allow_nan=True))
    _fsync(tmp)
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, model: BaseAlgorithm, state: dict[str, Any], digest: str) -> Path:
    """Checkpoint ``model`` (with its replay buffer) and the run's ``state`` under ``run_dir``."""
    final = run_dir / CHECKPOINT
    tmp = run_dir / f".{CHECKPOINT}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        normalizer.save(str(tmp / "vecnormalize.pkl"))
    with (tmp / "rng.pkl").open("wb") as f:
        pickle.dump({"python": random.getstate(), "numpy": np.random.get_state(),
                     "torch": torch.get_rng_state()}, f)
    (tmp / "state.json").write_text(json.dumps(state, allow_nan=True))
    files = sorted(p.name for p in tmp.iterdir())
    for name in files:
        _fsync(tmp / name)
    manifest = {"digest": digest, "files": {name: _sha256(tmp / name) for name in files}}
    (tmp / _MANIFEST).write_text(json.dumps(manifest))
    _fsync(tmp / _MANIFEST)
    old = run_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(run_dir: Path, digest: str) -> tuple[Path, dict[str, Any]] | None:
    """The verified checkpoint folder under ``run_dir`` and its state, or ``None`` when there is none.

    Raises :class:`CorruptCheckpoint` when one exists but is incomplete or does not match its
    manifest, or was written for a different run definition (``digest``)."""
    folder = run_dir / CHECKPOINT
    if not folder.exists():
        old = run_dir / f".{CHECKPOINT}.old"  # killed between the two renames of save_checkpoint
        if not old.exists():
            return None
        folder = old
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptCheckpoint(f"{folder}: no readable manifest ({error})") from None
    if manifest.get("digest") != digest:
        raise CorruptCheckpoint(f"{folder}: written for another run definition ({manifest.get('digest')} != {digest})")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file() or _sha256(path) != expected:
            raise CorruptCheckpoint(f"{folder}: {name} is missing or does not match its checksum")
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as error:
        raise CorruptCheckpoint(f"{folder}: unreadable state.json ({error})") from None
    return folder, state


def restore_rng(folder: Path) -> None:
    """Set the global Python, NumPy and torch generators to the states saved in ``folder``."""
    with (folder / "rng.pkl").open("rb") as f:
        states = pickle.load(f)  # our own file, verified against its manifest checksum
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
