"""TD3 with a Pop-SAN (or MDC-SAN) spiking actor; one preset of settings per environment.

    python examples/td3.py                                    # Pendulum-v1, rl-zoo3's TD3 settings, 20k steps
    python examples/td3.py --surrogate trapezoid              # the one-word surrogate switch
    python examples/td3.py --ann                              # SB3's ANN actor, same settings
    python examples/td3.py --env-id HalfCheetah-v5            # Pop-SAN's settings, 50k steps (pip install mujoco)
    python examples/td3.py --env-id HalfCheetah-v5 --neuron dynamic          # MDC-SAN neurons
    python examples/td3.py --env-id HalfCheetah-v5 --total-timesteps 30000 --eval-freq 5000 \\
        --record examples/results/td3/halfcheetah            # one JSON record per run
    python examples/td3.py --plot examples/results/td3/halfcheetah          # curves.png + table.md
    python examples/td3.py --help

Presets (``PRESETS`` below): Pendulum-v1 is rl-zoo3's ``td3.yml`` entry (gamma 0.98, buffer 200k,
10k random steps first, Gaussian action noise 0.1, lr 1e-3, one gradient step per env step,
[400, 300] layers; the raw environment, so the receptive fields spread over the observation
bounds). HalfCheetah-v5 is Pop-SAN's TD3 (actor lr 1e-4 / critic lr 1e-3 via
``actor_lr_ratio=0.1``, batch 100, 50 gradient steps every 50 env steps, gamma 0.99, replay 1M,
observations normalised by ``VecNormalize`` and clipped to +-3, [256, 256] layers; Pop-SAN trains
1M steps). Both: populations of 10 neurons per dimension, T = 5. The ANN baseline (``--ann``)
keeps every RL setting but trains its actor at the critic's rate, as in TD3. Every evaluation is
printed as it happens; the model is saved (``--save``) with the line that loads it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import tyro
from stable_baselines3 import TD3
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from snnrl_sb3 import PopSpikingTD3Policy
from snnrl_sb3.results import (
    LearningCurve,
    ProgressBar,
    plot_curves,
    read_records,
    save_model,
    summary_table,
    write_record,
)

PRESETS: dict[str, dict[str, Any]] = {
    # rl-zoo3 2.9.2 hyperparams/td3.yml, Pendulum-v1 (batch_size and tau: TD3's defaults)
    "Pendulum-v1": dict(total_timesteps=20_000, learning_rate=1e-3, buffer_size=200_000, learning_starts=10_000,
                        batch_size=256, tau=0.005, gamma=0.98, train_freq=1, gradient_steps=1, noise_std=0.1,
                        net_arch=[400, 300], actor_lr_ratio=1.0, normalize=False, eval_freq=1000),
    # Pop-SAN's TD3 (seed 001): 1M steps in the paper, 50k here by default
    "HalfCheetah-v5": dict(total_timesteps=50_000, learning_rate=1e-3, buffer_size=1_000_000, learning_starts=10_000,
                           batch_size=100, tau=0.005, gamma=0.99, train_freq=50, gradient_steps=50, noise_std=0.1,
                           net_arch=[256, 256], actor_lr_ratio=0.1, normalize=True, eval_freq=10_000),
}
CLIP_OBS = 3.0  # VecNormalize clip, and the receptive fields' mean range, of the normalised presets


@dataclass
class Args:
    """TD3 with a Pop-SAN spiking actor (stock SB3 TD3 + snnrl_sb3.PopSpikingTD3Policy)."""

    env_id: str = "Pendulum-v1"
    """environment, a key of PRESETS: Pendulum-v1 (rl-zoo3's settings) or HalfCheetah-v5 (Pop-SAN's; needs mujoco)"""
    total_timesteps: int | None = None
    """environment-step budget (None: the preset's, Pendulum-v1 20k, HalfCheetah-v5 50k; Pop-SAN trains 1M)"""
    seed: int = 0
    """random seed of the agent (the evaluation env uses seed + 1000)"""
    ann: bool = False
    """train SB3's ANN actor (MlpPolicy) instead of the spiking one, with the same RL settings"""
    neuron: str = "current_lif"
    """hidden neuron: current_lif (Pop-SAN), dynamic (MDC-SAN), ternary, lif, symmetric_ternary"""
    surrogate: str = "rectangular"
    """surrogate gradient: rectangular (Pop-SAN), triangular, trapezoid, atan, ..."""
    surrogate_kwargs: str = "{}"
    """surrogate parameters as JSON, e.g. '{"w1": 0.2, "w2": 0.6}'"""
    pop_dim: int = 10
    """population neurons per observation dimension and per action dimension (Pop-SAN: 10)"""
    num_steps: int = 5
    """spiking simulation length T per action (Pop-SAN: 5)"""
    net_arch: tuple[int, ...] | None = None
    """hidden layers of actor and critic, e.g. --net-arch 400 300 (None: the preset's)"""
    learning_starts: int | None = None
    """random-action steps before learning (None: the preset's, 10k)"""
    batch_size: int | None = None
    """minibatch size (None: the preset's)"""
    train_freq: int | None = None
    """env steps between updates, also the gradient steps per update (None: the preset's)"""
    eval_freq: int | None = None
    """env steps between deterministic evaluations (None: the preset's; 0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    save: str = "runs/td3/{env}_seed{seed}.zip"
    """where to save the model ({env}, {seed} filled in; .zip added if missing; VecNormalize stats next to it)"""
    record: str = ""
    """folder to write the run's record into (learning curve and summary, JSON); empty: don't"""
    tag: str = ""
    """run name in the record and its file name (empty: ANN or neuron/surrogate)"""
    plot: str = ""
    """only plot, train nothing: read the records in this folder, write curves.png and table.md there"""
    threads: int = 1
    """torch CPU threads (1: on a 2-core machine, SB3 training with torch's default count ran 5.7x slower)"""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


def population_kwargs(pop_dim: int, mean_range: list[float] | None) -> dict[str, Any]:
    """The encoder and read-out populations of the spiking actor (``pop_dim`` neurons per observation and
    per action dimension; receptive-field means over ``mean_range``, or the observation bounds if ``None``)."""
    encoder = {"pop_dim": pop_dim, **({"mean_range": mean_range} if mean_range is not None else {})}
    return dict(encoder="population", encoder_kwargs=encoder, readout="population", readout_kwargs={"pop_dim": pop_dim})


def policy_and_kwargs(args: Args, settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    net_arch = list(settings["net_arch"])
    if args.ann:
        return "MlpPolicy", dict(net_arch=net_arch)
    mean_range = [-CLIP_OBS, CLIP_OBS] if settings["normalize"] else None  # else: the observation bounds
    return PopSpikingTD3Policy, dict(net_arch=net_arch, num_steps=args.num_steps, neuron=args.neuron,
                                     surrogate=args.surrogate,
                                     surrogate_kwargs=json.loads(args.surrogate_kwargs) or None,
                                     actor_lr_ratio=settings["actor_lr_ratio"],
                                     **population_kwargs(args.pop_dim, mean_range))


def make_env(env_id: str, normalize: bool, training: bool, seed: int | None = None) -> VecEnv:
    env = DummyVecEnv([lambda: Monitor(gym.make(env_id))])
    if seed is not None:
        env.seed(seed)
    if normalize:
        env = VecNormalize(env, training=training, norm_obs=True, norm_reward=False, clip_obs=CLIP_OBS)
    return env


def variant(record: dict[str, Any]) -> str:
    """A record's variant name: its tag (older records: label, else ANN or neuron/surrogate)."""
    old = record.get("args") or {}
    return record.get("tag") or record.get("label") or ("ANN" if old.get("ann") else
                                                        f"{old.get('neuron')}/{old.get('surrogate')}")


def plot(folder: str) -> None:
    records = read_records(folder)
    if not records:
        raise SystemExit(f"no *.json records in {folder}")
    first = records[0]
    env_id = first.get("env_id") or (first.get("args") or {}).get("env_id", "")
    steps = max(max(int(p[0]) for p in r["curve"]) for r in records if r.get("curve"))
    png = plot_curves(records, os.path.join(folder, "curves.png"), group=variant,
                      title=f"TD3 on {env_id}, {steps / 1000:g}k steps", ylabel="deterministic evaluation return")
    table = summary_table(records, group=variant)
    with open(os.path.join(folder, "table.md"), "w") as fh:
        fh.write(table)
    print(table + f"wrote {png} and {os.path.join(folder, 'table.md')}")


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    if args.plot:
        plot(args.plot)
        return
    if args.env_id not in PRESETS:
        raise SystemExit(f"--env-id must be one of {sorted(PRESETS)} (add a preset to PRESETS), got {args.env_id!r}")
    overrides = dict(total_timesteps=args.total_timesteps, net_arch=args.net_arch, learning_starts=args.learning_starts,
                     batch_size=args.batch_size, train_freq=args.train_freq, gradient_steps=args.train_freq,
                     eval_freq=args.eval_freq)
    settings = {**PRESETS[args.env_id], **{k: v for k, v in overrides.items() if v is not None}}
    total = settings["total_timesteps"]
    torch.set_num_threads(args.threads)

    env = make_env(args.env_id, settings["normalize"], training=True)
    eval_env = make_env(args.env_id, settings["normalize"], training=False, seed=args.seed + 1000)
    n_actions = env.action_space.shape[0]
    noise = NormalActionNoise(np.zeros(n_actions), settings["noise_std"] * np.ones(n_actions))
    policy, policy_kwargs = policy_and_kwargs(args, settings)
    model = TD3(policy, env, learning_rate=settings["learning_rate"], buffer_size=settings["buffer_size"],
                learning_starts=min(settings["learning_starts"], total), batch_size=settings["batch_size"],
                tau=settings["tau"], gamma=settings["gamma"], train_freq=settings["train_freq"],
                gradient_steps=settings["gradient_steps"], action_noise=noise, policy_kwargs=policy_kwargs,
                seed=args.seed, verbose=0)
    tag = args.tag or ("ANN" if args.ann else f"{args.neuron}/{args.surrogate}")
    curve = LearningCurve(name=f"{tag} seed {args.seed}: ")
    evaluation = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes, eval_freq=settings["eval_freq"],
                              deterministic=True, callback_after_eval=curve, verbose=0)
    when = f"every {settings['eval_freq']:,} steps" if settings["eval_freq"] > 0 else "at the end"
    print(f"{tag} TD3 on {args.env_id}, seed {args.seed}: {total:,} steps, evaluation {when} "
          f"({args.eval_episodes} episodes)", flush=True)
    start = time.perf_counter()
    model.learn(total, callback=[evaluation] + ([ProgressBar()] if args.progress_bar else []))
    seconds = time.perf_counter() - start
    if not curve.curve or curve.curve[-1][0] != model.num_timesteps:
        curve.evaluate(model)  # no scheduled evaluation at the last step
    final, final_std = curve.curve[-1][1:]
    print(f"{tag} TD3 {args.env_id} seed {args.seed}: best eval mean {curve.best:.1f}, final {final:.1f} ± "
          f"{final_std:.1f} after {model.num_timesteps:,} steps, {model.num_timesteps / seconds:.0f} steps/s",
          flush=True)
    if args.save:
        save_model(model, args.save.format(env=args.env_id, seed=args.seed))
    if args.record:
        record = dict(tag=tag, seed=args.seed, env_id=args.env_id, steps=model.num_timesteps, budget=total,
                      curve=curve.curve, final=final, final_std=final_std, best=curve.best, seconds=seconds,
                      steps_per_second=model.num_timesteps / seconds, settings=settings,
                      policy_kwargs=policy_kwargs, args=asdict(args))
        name = "".join(c if c.isalnum() else "_" for c in tag).strip("_")
        print(f"wrote {write_record(os.path.join(args.record, f'{name}_seed{args.seed}.json'), record)}")


if __name__ == "__main__":
    main()
