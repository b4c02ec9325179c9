"""Train one cell of a study: build (or resume) the model, evaluate on schedule, checkpoint, record.

:func:`train_cell` is what a study worker runs for each trial. It resumes from the run's last
verified checkpoint (losing at most the steps since it), restarts from zero when the checkpoint is
corrupt, and ends by writing ``result.json`` (a record in the format of
:func:`snnrl_sb3.results.write_record`) and the final ``model.zip``. A run whose ``result.json``
exists for the same definition is not trained again.

Evaluations happen when ``num_timesteps`` reaches each multiple of ``eval.freq`` (and once at the
end), on a separate environment seeded ``seed + 10_000``; they, the diagnostics and the checkpoints
are observation only: their time is excluded from the run's env-steps/s.
"""

from __future__ import annotations

import importlib
import math
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecNormalize, sync_envs_normalization

from snnrl_sb3.studies.checkpoint import (
    CHECKPOINT,
    CorruptCheckpoint,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    write_json_atomic,
)
from snnrl_sb3.studies.spec import ALGORITHMS, Cell, normalize_kwargs, resolve_object

__all__ = ["EVAL_SEED_OFFSET", "algorithm_class", "make_env", "algorithm_kwargs", "train_cell", "read_result",
           "gradient_norms"]

#: The evaluation environment of a run with seed ``s`` is seeded ``s + EVAL_SEED_OFFSET``.
EVAL_SEED_OFFSET = 10_000
_STUDY_ONLY = ("n_timesteps", "policy", "n_envs", "env", "seed", "verbose", "tensorboard_log")
_ENV_KEYS = ("normalize",)  # hyperparams that configure the environment, not the algorithm


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    module, name = ALGORITHMS[algo]
    return getattr(importlib.import_module(module), name)


def make_env(env_id: str, n_envs: int, seed: int) -> VecEnv:
    """A seeded VecEnv of ``env_id``: MinAtar ids are registered first, Atari ids get SB3's
    ``make_atari_env`` wrappers (the ones seed 000 evaluates with) and a 4-frame stack."""
    if env_id.startswith("MinAtar/"):
        try:
            import minatar.gym
        except ImportError:
            raise ImportError(f"{env_id} needs MinAtar: pip install 'snnrl-sb3[minatar]'") from None
        if env_id not in gym.registry:
            minatar.gym.register_envs()
    if env_id.startswith("ALE/") or "NoFrameskip" in env_id:
        try:
            import ale_py
        except ImportError:
            raise ImportError(f"{env_id} needs ale-py: pip install 'snnrl-sb3[atari]'") from None
        gym.register_envs(ale_py)
        return VecFrameStack(make_atari_env(env_id, n_envs=n_envs, seed=seed), n_stack=4)
    if env_id not in gym.registry:
        raise ValueError(f"unknown environment id {env_id!r} (not registered with gymnasium)")
    return make_vec_env(env_id, n_envs=n_envs, seed=seed)


def _schedule(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            start = float(value[4:])
        except ValueError:
            raise ValueError(f"hyperparams.{name}: {value!r} is not 'lin_<number>'") from None
        return LinearSchedule(start, 0.0, 1.0)
    return value


def algorithm_kwargs(cell: Cell, env: VecEnv) -> dict[str, Any]:
    """The algorithm's constructor kwargs of ``cell`` (rl-zoo3's string forms resolved)."""
    hyper = {k: v for k, v in cell.hyperparams.items() if k not in _ENV_KEYS}
    for key in _STUDY_ONLY:
        if key in hyper:
            raise ValueError(f"hyperparams.{key} is set by the study itself (budget, n_envs, seeds, variants), "
                             f"not by hyperparams")
    noise_type, noise_std = hyper.pop("noise_type", None), hyper.pop("noise_std", 0.1)
    if noise_type is not None:
        n = int(np.prod(env.action_space.shape or (1,)))
        noises: dict[str, Callable[..., Any]] = {"normal": NormalActionNoise,
                                                 "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}
        if noise_type not in noises:
            raise ValueError(f"hyperparams.noise_type must be one of {sorted(noises)}, got {noise_type!r}")
        hyper["action_noise"] = noises[noise_type](np.zeros(n), float(noise_std) * np.ones(n))
    for key in ("learning_rate", "clip_range"):
        if key in hyper:
            hyper[key] = _schedule(key, hyper[key])
    if isinstance(hyper.get("train_freq"), list):
        hyper["train_freq"] = tuple(hyper["train_freq"])
    policy_kwargs = dict(cell.policy_kwargs)
    for key in ("features_extractor_class", "activation_fn"):
        if isinstance(policy_kwargs.get(key), str):
            policy_kwargs[key] = resolve_object(policy_kwargs[key], f"policy_kwargs.{key}")
    if policy_kwargs:
        hyper["policy_kwargs"] = policy_kwargs
    return hyper


def gradient_norms(module: torch.nn.Module) -> dict[str, float]:
    """L2 norm of each weight's gradient now held in ``module`` (after SB3's last gradient step:
    SB3 zeroes gradients before each backward, so they are those of the last update), keyed
    ``<network>/layer<i>`` (``network``: the policy's child, e.g. ``q_net``, ``actor``, ``critic``;
    ``i``: the order the weights are registered, input to output), so that an ANN's and a spiking
    network's layers line up; reading them changes nothing."""
    norms: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, param in module.named_parameters():
        if param.grad is None or not name.endswith("weight") or "target" in name:
            continue
        network = name.split(".")[0]
        i = counts[network] = counts.get(network, -1) + 1
        norms[f"{network}/layer{i}"] = float(param.grad.detach().norm())
    return norms


def _clocks() -> tuple[float, float]:
    """(wall, this process's CPU) clock readings, in seconds."""
    return time.perf_counter(), time.process_time()


class _StudyCallback(BaseCallback):
    """Evaluations, diagnostics and checkpoints at fixed ``num_timesteps``, robust to resuming."""

    def __init__(self, cell: Cell, run_dir: Path, eval_env: VecEnv, state: dict[str, Any],
                 stop_after: int | None, verbose: int) -> None:
        super().__init__(verbose)
        self.cell, self.run_dir, self.eval_env, self.state = cell, run_dir, eval_env, state
        self.stop_after = stop_after
        self.call_start = time.perf_counter()
        self.learn_start = _clocks()
        self.observed = (0.0, 0.0)  # (wall, CPU) seconds spent evaluating and checkpointing
        self._stats: Any = None

    def _init_callback(self) -> None:
        if self.cell.diagnostics:
            from snnrl_sb3.stats import SpikeStatsCallback, spiking_networks

            try:
                spiking_networks(self.model.policy)
            except ValueError:
                return  # an ANN variant: gradient norms only
            self._stats = SpikeStatsCallback(batch_size=256, seed=0)
            self._stats.init_callback(self.model)

    def _on_training_start(self) -> None:
        self.learn_start, self.observed = _clocks(), (0.0, 0.0)
        if not self.state["curve"]:
            self.evaluate()  # the untrained agent: every curve starts at step 0

    def evaluate(self) -> None:
        from snnrl_sb3.stats import preserved_rng_state

        start = _clocks()
        train_env = self.model.get_vec_normalize_env()
        if train_env is not None:
            sync_envs_normalization(train_env, self.eval_env)  # evaluate with the statistics trained with
        with preserved_rng_state(self.model.policy):  # a stochastic encoder's generator is training state too
            returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.cell.eval.episodes,
                                         deterministic=self.cell.eval.deterministic, return_episode_rewards=True,
                                         warn=False)
        assert isinstance(returns, list)
        steps = int(self.model.num_timesteps)
        self.state["curve"].append([steps, float(np.mean(returns)), float(np.std(returns))])
        if self.cell.diagnostics:
            values: dict[str, Any] = {"steps": steps}
            values.update({f"grad/{k}": v for k, v in gradient_norms(self.model.policy).items()})
            if self._stats is not None:
                values.update(self._stats.collect())
            self.state["diagnostics"].append(values)
        self.state["next_eval"] = (steps // self.cell.eval.freq + 1) * self.cell.eval.freq
        if self.verbose:
            best = max(p[1] for p in self.state["curve"])
            print(f"{self.cell.key}: eval at {steps:,} steps: {self.state['curve'][-1][1]:.1f} "
                  f"± {self.state['curve'][-1][2]:.1f} (best {best:.1f})", flush=True)
        self._observed_since(start)

    def checkpoint(self) -> None:
        start = _clocks()
        steps = int(self.model.num_timesteps)
        self.state["steps"] = steps
        self.state["next_checkpoint"] = (steps // self.cell.checkpoint_freq + 1) * self.cell.checkpoint_freq
        self.state["train_seconds"] = self.state["train_seconds_before"] + self.train_seconds()
        self.state["train_cpu_seconds"] = self.state["train_cpu_seconds_before"] + self.train_cpu_seconds()
        self.state["wall_seconds"] = self.state["wall_seconds_before"] + time.perf_counter() - self.call_start
        save_checkpoint(self.run_dir, self.model, self.state, self.cell.digest)
        self._observed_since(start)

    def _observed_since(self, start: tuple[float, float]) -> None:
        wall, cpu = _clocks()
        self.observed = (self.observed[0] + wall - start[0], self.observed[1] + cpu - start[1])

    def _trained(self) -> tuple[float, float]:
        wall, cpu = _clocks()
        return wall - self.learn_start[0] - self.observed[0], cpu - self.learn_start[1] - self.observed[1]

    def train_seconds(self) -> float:
        return self._trained()[0]

    def train_cpu_seconds(self) -> float:
        # this process's CPU time: unlike wall time, not inflated by a stopped worker or by other
        # processes sharing the cores (with one torch thread per worker, it is the training's own cost)
        return self._trained()[1]

    def _on_step(self) -> bool:
        if self.model.num_timesteps >= self.state["next_eval"]:
            self.evaluate()
        if self.stop_after is not None and self.model.num_timesteps >= self.stop_after:
            return False  # tests: behave as if killed here (after the last checkpoint)
        return True

    def _on_rollout_start(self) -> None:
        # between rollouts: after the algorithm's gradient steps, before new data (nothing half-collected)
        if self.model.num_timesteps >= self.state["next_checkpoint"] and self.model.num_timesteps < self.cell.budget:
            self.checkpoint()


def _fresh_state(cell: Cell) -> dict[str, Any]:
    return {"curve": [], "diagnostics": [], "next_eval": cell.eval.freq, "next_checkpoint": cell.checkpoint_freq,
            "steps": 0,
            "train_seconds_before": 0.0, "train_cpu_seconds_before": 0.0, "wall_seconds_before": 0.0, "resumed": 0,
            "restarted_corrupt": 0}


def read_result(run_dir: Path, digest: str) -> dict[str, Any] | None:
    """The finished run's record in ``run_dir`` if it is there, complete and of this definition."""
    import json

    path = run_dir / "result.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("digest") == digest else None


def train_cell(cell: Cell, run_dir: str | Path, *, device: str = "auto", verbose: int = 1,
               stop_after: int | None = None) -> dict[str, Any]:
    """Train ``cell`` to its budget in ``run_dir`` (resuming from a checkpoint there) and return
    its record (also written to ``run_dir/result.json``).

    :param stop_after: tests only: return early once this many steps are done, leaving the
        checkpoints as a killed worker would (no ``result.json``)
    """
    call_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    done = read_result(run_dir, cell.digest)
    if done is not None:
        return done
    state = _fresh_state(cell)
    normalize = normalize_kwargs(cell)
    env = make_env(cell.env, cell.n_envs, cell.seed)
    eval_env = make_env(cell.env, 1, cell.seed + EVAL_SEED_OFFSET)
    if normalize is not None:
        obs_only = {k: v for k, v in normalize.items() if k in ("norm_obs", "clip_obs", "epsilon")}
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False, **obs_only)
    algo = algorithm_class(cell.algo)
    model: BaseAlgorithm
    checkpoint = None
    try:
        checkpoint = load_checkpoint(run_dir, cell.digest)
    except CorruptCheckpoint as error:
        warnings.warn(f"{cell.key}: {error}; restarting this run from step 0", RuntimeWarning, stacklevel=2)
        shutil.rmtree(run_dir / CHECKPOINT, ignore_errors=True)
        shutil.rmtree(run_dir / f".{CHECKPOINT}.old", ignore_errors=True)
        state["restarted_corrupt"] = 1
    if checkpoint is not None:
        folder, saved = checkpoint
        corrupt = state["restarted_corrupt"]
        state = saved
        state["restarted_corrupt"] = corrupt + saved.get("restarted_corrupt", 0)
        state["resumed"] = saved.get("resumed", 0) + 1
        state["train_seconds_before"] = saved["train_seconds"]
        # checkpoints of earlier snnrl_sb3 versions lack these
        state["wall_seconds_before"] = saved.get("wall_seconds", 0.0)
        state["train_cpu_seconds_before"] = saved.get("train_cpu_seconds", 0.0)
        kwargs = algorithm_kwargs(cell, env)
        custom: dict[str, Any] = {k: kwargs[k] for k in ("learning_rate", "clip_range", "action_noise") if k in kwargs}
        if normalize is not None:
            env = VecNormalize.load(str(folder / "vecnormalize.pkl"), env)
        model = algo.load(folder / "model.zip", env=env, device=device, custom_objects=custom)
        if isinstance(model, OffPolicyAlgorithm) and (folder / "replay_buffer.pkl").exists():
            model.load_replay_buffer(folder / "replay_buffer.pkl")
        restore_rng(folder)
        if verbose:
            print(f"{cell.key}: resumed at {model.num_timesteps:,} steps", flush=True)
    else:
        policy = resolve_object(cell.policy, "policy")
        if normalize is not None:
            env = VecNormalize(env, **normalize)
        model = algo(policy, env, seed=cell.seed, device=device, verbose=0, **algorithm_kwargs(cell, env))
    callback = _StudyCallback(cell, run_dir, eval_env, state, stop_after, verbose)
    callback.call_start = call_start
    remaining = cell.budget - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=callback, reset_num_timesteps=checkpoint is None)
    if stop_after is not None and model.num_timesteps < cell.budget:
        env.close()
        eval_env.close()
        return {}
    train_seconds = state["train_seconds_before"] + callback.train_seconds()
    train_cpu_seconds = state["train_cpu_seconds_before"] + callback.train_cpu_seconds()
    wall_seconds = state["wall_seconds_before"] + time.perf_counter() - callback.call_start
    if not state["curve"] or state["curve"][-1][0] != model.num_timesteps:
        if getattr(callback, "model", None) is None:
            callback.init_callback(model)
        callback.evaluate()  # the final evaluation, at the last step
    env.close()
    eval_env.close()
    curve = state["curve"]
    record = {"tag": cell.variant, "variant": cell.variant, "env_id": cell.env, "seed": cell.seed,
              "key": cell.key, "digest": cell.digest, "definition": cell.definition,
              "steps": int(model.num_timesteps), "budget": cell.budget, "curve": curve,
              "final": curve[-1][1], "best": max(p[1] for p in curve),
              "train_seconds": train_seconds, "wall_seconds": wall_seconds,
              "steps_per_second": model.num_timesteps / train_seconds if train_seconds > 0 else math.nan,
              "train_cpu_seconds": train_cpu_seconds,
              "steps_per_cpu_second": (model.num_timesteps / train_cpu_seconds if train_cpu_seconds > 0
                                       else math.nan),
              "resumed": state["resumed"], "restarted_corrupt": state["restarted_corrupt"],
              "diagnostics": state["diagnostics"]}
    model.save(run_dir / "model.zip")
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        normalizer.save(str(run_dir / "vecnormalize.pkl"))
    write_json_atomic(run_dir / "result.json", record)
    shutil.rmtree(run_dir / CHECKPOINT, ignore_errors=True)
    return record
