"""Train a spiking Q-network on CartPole-v1 with stock SB3 DQN; print every evaluation as it happens.

    python examples/dqn_cartpole.py                       # main job: spiking policy, stops at 475 (minutes)
    python examples/dqn_cartpole.py --policy ann          # SB3's MlpPolicy, same settings, for comparison
    python examples/dqn_cartpole.py --policy-kwargs '{"neuron": "lif", "num_steps": 16}'
    python examples/dqn_cartpole.py --seeds 0 1 --tag NAME --record examples/results/dqn_cartpole
    python examples/dqn_cartpole.py --plot examples/results/dqn_cartpole --plot-reference ternary_neg2_atan
    python examples/dqn_cartpole.py --help

The settings are rl-zoo3's own tuned ANN DQN configuration for CartPole-v1 (50k environment
steps), unchanged except the policy. Every 2500 steps the greedy policy plays 10 episodes; the
line printed shows the mean ± std return and the best mean so far. Training stops at the first
evaluation whose mean reaches 475 (CartPole-v1's reward threshold; ``--stop-at None`` trains the
whole budget). Each model is saved (``--save``) and the line that loads it is printed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import gymnasium as gym
import torch
import tyro
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from snnrl_sb3 import SpikingQPolicy
from snnrl_sb3.results import (
    LearningCurve,
    ProgressBar,
    planned_timesteps,
    plot_curves,
    read_records,
    save_model,
    summary_table,
    write_record,
)
from snnrl_sb3.utils import tune_allocator

# rl-zoo3 2.9.2 hyperparams/dqn.yml, CartPole-v1 (ANN DQN), unchanged; its n_timesteps (50k) is
# --total-timesteps' default
ZOO_CARTPOLE = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
                    target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                    exploration_final_eps=0.04)
ZOO_NET_ARCH = [256, 256]


@dataclass
class Args:
    """Spiking DQN on CartPole-v1 (stock SB3 DQN + snnrl_sb3.SpikingQPolicy, rl-zoo3's settings)."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id (the settings are rl-zoo3's for CartPole-v1)"""
    total_timesteps: int = 50_000
    """environment-step budget per run (rl-zoo3: 50k), rounded up to whole 256-step rollouts"""
    seeds: list[int] = field(default_factory=lambda: [0])
    """one training run per seed, one after another"""
    policy: Literal["spiking", "ann"] = "spiking"
    """spiking: snnrl_sb3.SpikingQPolicy; ann: SB3's MlpPolicy (same net_arch [256, 256])"""
    policy_kwargs: str = "{}"
    """JSON of extra policy kwargs, e.g. '{"neuron": "lif", "num_steps": 16}' (num_steps: simulation length T)"""
    eval_freq: int = 2500
    """environment steps between greedy evaluations (0: evaluate only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    stop_at: float | None = 475.0
    """stop at the first evaluation whose mean reaches this (CartPole-v1's threshold); None: never"""
    save: str = "runs/dqn_cartpole/seed{seed}.zip"
    """where to save each trained model ({seed} becomes the seed; .zip added if missing); empty: don't"""
    record: str = ""
    """folder to write each run's record into (learning curve and summary, JSON); empty: don't"""
    tag: str = ""
    """run name in the record and its file name (empty: the policy and its kwargs)"""
    plot: str = ""
    """only plot, train nothing: read the records in this folder, write curves.png and table.md there"""
    plot_reference: str = ""
    """with --plot: draw this tag in every panel, for comparison (empty: none)"""
    threads: int = 1
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


def train(args: Args, seed: int) -> tuple[DQN, dict]:
    """One training run; returns the model and its record (curve, best/final return, time)."""
    extra = json.loads(args.policy_kwargs)
    policy = SpikingQPolicy if args.policy == "spiking" else "MlpPolicy"
    policy_kwargs = {"net_arch": ZOO_NET_ARCH, **extra}
    env = gym.make(args.env_id)
    model = DQN(policy, env, seed=seed, policy_kwargs=policy_kwargs, verbose=0, **ZOO_CARTPOLE)
    curve = LearningCurve(stop_at=args.stop_at, name=f"seed {seed}: ")
    evaluation = EvalCallback(make_vec_env(args.env_id, n_envs=1, seed=seed + 1000), eval_freq=args.eval_freq,
                              n_eval_episodes=args.eval_episodes, deterministic=True, callback_after_eval=curve,
                              verbose=0)
    planned = planned_timesteps(model, args.total_timesteps)
    when = f"every {args.eval_freq:,} steps" if args.eval_freq > 0 else "at the end"
    name = ("SpikingQPolicy" if args.policy == "spiking" else "MlpPolicy") + (f" {json.dumps(extra)}" if extra else "")
    print(f"seed {seed}: DQN + {name} on {args.env_id}, rl-zoo3 settings; "
          f"{planned:,} steps at most ({args.total_timesteps:,} asked, whole {model.train_freq.frequency}-step "
          f"rollouts), evaluation {when} ({args.eval_episodes} episodes)"
          + (f", stop at {args.stop_at:g}" if args.stop_at is not None else ""), flush=True)
    start = time.perf_counter()
    model.learn(args.total_timesteps, callback=[evaluation] + ([ProgressBar()] if args.progress_bar else []))
    seconds = time.perf_counter() - start
    if not curve.curve or curve.curve[-1][0] != model.num_timesteps:
        curve.evaluate(model)  # the budget ran out after the last scheduled evaluation
    print(f"seed {seed}: stopped early: {curve.stop_reason}" if curve.stop_reason
          else f"seed {seed}: budget spent ({model.num_timesteps:,} steps)"
          + (f" without reaching {args.stop_at:g}" if args.stop_at is not None else ""), flush=True)
    neg_thresholds = [round(m.neg.value.item(), 3) for m in model.policy.q_net.modules()
                      if hasattr(getattr(m, "neg", None), "value")][:2]  # trained theta- of the ternary layers
    tag = args.tag or (args.policy + ("" if not extra else " " + json.dumps(extra, sort_keys=True)))
    record = dict(tag=tag, seed=seed, env_id=args.env_id, policy=args.policy, policy_kwargs=policy_kwargs,
                  hyperparams=ZOO_CARTPOLE, steps=model.num_timesteps, budget=args.total_timesteps,
                  stop_reason=curve.stop_reason, final=curve.curve[-1][1], best=curve.best, seconds=seconds,
                  curve=curve.curve, neg_thresholds=neg_thresholds, args=asdict(args))
    return model, record


def plot(folder: str, reference: str, threshold: float | None) -> None:
    """curves.png (the shared plotter) and table.md of the records in ``folder``."""
    records = read_records(folder)
    if not records:
        raise SystemExit(f"no *.json records in {folder}")
    png = plot_curves(records, os.path.join(folder, "curves.png"), group="tag", reference=reference or None,
                      title=f"DQN on {records[0].get('env_id', 'CartPole-v1')}, rl-zoo3 settings",
                      ylabel="greedy evaluation return", hline=threshold,
                      hline_label=f"stop at {threshold:g}" if threshold is not None else "")
    table = summary_table(records, group="tag", threshold=threshold)
    with open(os.path.join(folder, "table.md"), "w") as fh:
        fh.write(table)
    print(table + f"wrote {png} and {os.path.join(folder, 'table.md')}")


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    if args.plot:
        plot(args.plot, args.plot_reference, args.stop_at)
        return
    if len(args.seeds) > 1 and args.save and "{seed}" not in args.save:
        raise SystemExit(f"--save {args.save!r} needs {{seed}} with several seeds, or each run overwrites the last")
    torch.set_num_threads(args.threads)
    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    for seed in args.seeds:
        model, record = train(args, seed)
        print(f"{record['tag']} seed {seed}: last eval {record['final']:.1f}, best {record['best']:.1f} "
              f"({args.eval_episodes} greedy episodes) after {record['steps']:,} steps in {record['seconds']:.0f} s"
              + (f"; trained theta- {record['neg_thresholds']}" if record["neg_thresholds"] else ""), flush=True)
        if args.save:
            save_model(model, args.save.format(seed=seed))
        if args.record:
            name = "".join(c if c.isalnum() else "_" for c in record["tag"]).strip("_")
            print(f"wrote {write_record(os.path.join(args.record, f'{name}_seed{seed}.json'), record)}")


if __name__ == "__main__":
    main()
