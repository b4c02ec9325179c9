"""Shared fixtures: the test device, one fresh-process runner and tiny models of every algorithm.

``SNNRL_TEST_DEVICE`` (default ``"cpu"``) names the device of the device-aware tests (the kernel
tests take the ``device`` fixture): ``SNNRL_TEST_DEVICE=cuda python -m pytest tests/test_kernel_contract.py``
runs them on a GPU, and the policy tests build their models there (``make_tiny_model``). CI runs on
the CPU; nothing requires a GPU.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch


def device_from_env() -> torch.device:
    """The device named by ``SNNRL_TEST_DEVICE``; a clear failure if it is not usable here."""
    name = os.environ.get("SNNRL_TEST_DEVICE", "cpu")
    try:
        device = torch.device(name)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as err:
        pytest.fail(f"SNNRL_TEST_DEVICE={name!r} is not usable here: {err}")
    return device


@pytest.fixture
def device() -> torch.device:
    """The device of the device-aware tests (``SNNRL_TEST_DEVICE``, default ``"cpu"``)."""
    return device_from_env()


@pytest.fixture
def one_torch_thread() -> Any:
    """One torch thread for the test: tiny networks and small convolutions only add contention on a shared
    2-core machine (several times slower on two busy cores). The previous count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ one fresh-process runner

ROOT = Path(__file__).resolve().parents[1]


def run_python(args: Sequence[object], cwd: Path = ROOT, timeout: float = 300) -> str:
    """``python ARGS`` in a fresh process (one torch thread, this checkout first on the path): its stdout
    and stderr. Fails the test, showing both, on a non-zero exit."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", MPLBACKEND="Agg", COLUMNS="200")
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, f"{args}\nSTDOUT\n{proc.stdout[-3000:]}\nSTDERR\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


# ------------------------------------------------------------------ the examples' command lines

def field_docs(script: str) -> dict[str, str | None]:
    """``{field: docstring}`` of the example's ``Args`` dataclass (``None`` for a field without one)."""
    tree = ast.parse((ROOT / "examples" / script).read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Args"]
    docs: dict[str, str | None] = {}
    for node, nxt in zip(cls.body, [*cls.body[1:], None]):
        if isinstance(node, ast.AnnAssign):
            doc = nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) else None
            docs[node.target.id] = doc if isinstance(doc, str) else None
    return docs


def check_help(script: str) -> dict[str, str | None]:
    """``--help`` works and shows every field's flag with its docstring and one default."""
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", run_python([ROOT / "examples" / script, "--help"])).split())
    docs = field_docs(script)
    assert [name for name, doc in docs.items() if not doc] == []
    for name, doc in docs.items():
        assert "--" + name.replace("_", "-") in text
        assert " ".join(doc.split()) in text, name
    assert text.count("(default:") == len(docs)  # tyro prints each default once; no docstring repeats one
    assert "steps" not in docs  # --num-steps is T, --total-timesteps the env-step budget
    if "num_steps" in docs:
        assert re.search(r"\bT\b", docs["num_steps"]), docs["num_steps"]
    assert "budget" in docs["total_timesteps"]
    assert "7.3x slower" in docs["threads"]  # measured by python -m snnrl_sb3.benchmarks.threads --parallel 2
    return docs


@pytest.fixture(scope="session")
def run_fresh() -> Callable[..., str]:
    """``run_fresh(script, *args)``: run a Python source string in a fresh process; its output."""

    def run(script: str, *args: object, timeout: float = 300) -> str:
        return run_python(["-c", script, *args], timeout=timeout)

    return run


# ------------------------------------------------------------------ tiny models of every algorithm

def _algorithms() -> dict[str, tuple[type, type]]:
    from sb3_contrib import QRDQN
    from stable_baselines3 import DDPG, DQN, SAC, TD3

    from snnrl_sb3 import PopSpikingSACPolicy, PopSpikingTD3Policy, SpikingQPolicy, SpikingQRDQNPolicy

    return {"DQN": (DQN, SpikingQPolicy), "QRDQN": (QRDQN, SpikingQRDQNPolicy), "TD3": (TD3, PopSpikingTD3Policy),
            "DDPG": (DDPG, PopSpikingTD3Policy), "SAC": (SAC, PopSpikingSACPolicy)}


def make_tiny_model(algo: str, policy_kwargs: dict[str, Any] | None = None, env: Any = None, seed: int | None = 0,
                    policy: type | None = None, **overrides: Any) -> Any:
    """A small, quick model of ``algo`` with a spiking policy, on ``SNNRL_TEST_DEVICE``.

    ``env`` defaults to CartPole-v1 (DQN, QR-DQN) or Pendulum-v1 (the actor-critics); ``overrides`` are
    algorithm arguments."""
    cls, default_policy = _algorithms()[algo]
    if env is None:
        env = "CartPole-v1" if algo in ("DQN", "QRDQN") else "Pendulum-v1"
    settings: dict[str, Any] = dict(learning_starts=20, batch_size=16, buffer_size=500, seed=seed,
                                    device=device_from_env(), policy_kwargs=dict(policy_kwargs or {}))
    if algo in ("DQN", "QRDQN"):
        settings.update(train_freq=8, gradient_steps=2, target_update_interval=20)
    settings.update(overrides)
    return cls(policy or default_policy, env, **settings)


@pytest.fixture
def tiny_model() -> Callable[..., Any]:
    """The :func:`make_tiny_model` factory."""
    return make_tiny_model
