"""Train a spiking actor on CartPole-v1 with stock SB3 PPO (or A2C); print every evaluation as it happens.

    python examples/ppo_cartpole.py                       # spiking actor + SB3's deep critic, PPO, stops at 475
    python examples/ppo_cartpole.py --ann                 # SB3's MlpPolicy, same settings, for comparison
    python examples/ppo_cartpole.py --algo a2c --neuron lif
    python examples/ppo_cartpole.py --seed 1 --record examples/results/ppo_cartpole
    python examples/ppo_cartpole.py --plot examples/results/ppo_cartpole
    python examples/ppo_cartpole.py --help

The settings are rl-zoo3's own ANN configuration for CartPole-v1 (PPO: 8 envs, 1e5 steps; A2C: 8
envs, 5e5 steps), unchanged except the policy (snnrl_sb3.SpikingActorCriticPolicy). Every
``--eval-freq`` environment steps the greedy policy plays ``--eval-episodes`` episodes; the line
printed shows the mean ± std return and the best mean so far. Training stops at the first
evaluation whose mean reaches 475 (CartPole-v1's reward threshold; ``--stop-at None`` trains the
whole budget). The model is saved (``--save``) and the line that loads it is printed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import tyro
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule

from snnrl_sb3 import SpikingActorCriticPolicy
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

# rl-zoo3 2.9.2 hyperparams/ppo.yml and a2c.yml, CartPole-v1 (ANN), unchanged; "lin_X" is the zoo's
# linear schedule from X to 0. n_envs and n_timesteps (--total-timesteps' default) are listed apart.
ZOO: dict[str, dict[str, Any]] = {
    "ppo": dict(n_envs=8, n_timesteps=100_000, hyperparams=dict(n_steps=32, batch_size=256, gae_lambda=0.8,
                                                                gamma=0.98, n_epochs=20, ent_coef=0.0,
                                                                learning_rate="lin_0.001", clip_range="lin_0.2")),
    "a2c": dict(n_envs=8, n_timesteps=500_000, hyperparams=dict(ent_coef=0.0)),
}
ALGOS = {"ppo": PPO, "a2c": A2C}


def zoo_hyperparams(algo: str) -> dict[str, Any]:
    """The zoo's hyperparameters with its ``lin_X`` strings as SB3 schedules (as rl-zoo3 turns them)."""
    out: dict[str, Any] = {}
    for key, value in ZOO[algo]["hyperparams"].items():
        out[key] = LinearSchedule(float(value[4:]), 0.0, 1.0) if isinstance(value, str) else value
    return out


@dataclass
class Args:
    """Spiking actor on CartPole-v1 (stock SB3 PPO / A2C + snnrl_sb3.SpikingActorCriticPolicy, rl-zoo3's settings)."""

    algo: Literal["ppo", "a2c"] = "ppo"
    """the algorithm, with rl-zoo3's CartPole-v1 settings for it"""
    ann: bool = False
    """train SB3's MlpPolicy instead (the ANN baseline, same settings)"""
    neuron: str = "ternary"
    """spiking neuron kind: ternary, lif, symmetric_ternary, current_lif, dynamic, sj_lif"""
    policy_kwargs: str = "{}"
    """JSON of extra policy kwargs, e.g. '{"num_steps": 16}' (num_steps: simulation length T)"""
    seed: int = 0
    """the run's seed (the evaluation env uses seed + 1000)"""
    total_timesteps: int | None = None
    """environment-step budget of the run (None: rl-zoo3's, 1e5 for PPO, 5e5 for A2C), rounded up to whole
    rollouts"""
    eval_freq: int = 5000
    """environment steps (summed over the envs) between greedy evaluations (0: evaluate only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    stop_at: float | None = 475.0
    """stop at the first evaluation whose mean reaches this (CartPole-v1's threshold); None: never"""
    save: str = "runs/ppo_cartpole/{algo}_seed{seed}.zip"
    """where to save the trained model ({algo} and {seed} are filled in; .zip added if missing); empty: don't"""
    record: str = ""
    """folder to write the run's record into (learning curve and summary, JSON); empty: don't"""
    tag: str = ""
    """run name in the record and its file name (empty: algo, policy and neuron)"""
    plot: str = ""
    """only plot, train nothing: read the records in this folder, write curves.png and table.md there"""
    threads: int = 1
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


def train(args: Args) -> tuple[Any, dict[str, Any]]:
    """One training run; returns the model and its record (curve, best/final return, time)."""
    zoo = ZOO[args.algo]
    extra = json.loads(args.policy_kwargs)
    if args.ann and (extra or args.neuron != "ternary"):
        raise SystemExit("--ann trains SB3's MlpPolicy: --neuron and --policy-kwargs do not apply")
    policy_kwargs = {} if args.ann else {"neuron": args.neuron, **extra}
    budget = zoo["n_timesteps"] if args.total_timesteps is None else args.total_timesteps
    env = make_vec_env("CartPole-v1", n_envs=zoo["n_envs"], seed=args.seed)
    model = ALGOS[args.algo]("MlpPolicy" if args.ann else SpikingActorCriticPolicy, env, seed=args.seed,
                             policy_kwargs=dict(policy_kwargs), verbose=0, **zoo_hyperparams(args.algo))
    # (a copy: A2C writes its RMSprop optimizer_class into the dict it is given)
    curve = LearningCurve(stop_at=args.stop_at, name=f"seed {args.seed}: ")
    evaluation = EvalCallback(make_vec_env("CartPole-v1", n_envs=1, seed=args.seed + 1000),
                              eval_freq=max(args.eval_freq // zoo["n_envs"], 1) if args.eval_freq > 0 else 10**12,
                              n_eval_episodes=args.eval_episodes, deterministic=True, callback_after_eval=curve,
                              verbose=0)
    planned = planned_timesteps(model, budget)
    name = "MlpPolicy" if args.ann else f"SpikingActorCriticPolicy {json.dumps(policy_kwargs)}"
    when = f"every {args.eval_freq:,} steps" if args.eval_freq > 0 else "at the end"
    print(f"seed {args.seed}: {args.algo.upper()} + {name} on CartPole-v1, rl-zoo3 settings ({zoo['n_envs']} envs); "
          f"{planned:,} steps at most ({budget:,} asked, whole rollouts), evaluation {when} "
          f"({args.eval_episodes} episodes)" + (f", stop at {args.stop_at:g}" if args.stop_at is not None else ""),
          flush=True)
    start = time.perf_counter()
    model.learn(budget, callback=[evaluation] + ([ProgressBar()] if args.progress_bar else []))
    seconds = time.perf_counter() - start
    if not curve.curve or curve.curve[-1][0] != model.num_timesteps:
        curve.evaluate(model)  # the budget ran out after the last scheduled evaluation
    print(f"seed {args.seed}: stopped early: {curve.stop_reason}" if curve.stop_reason
          else f"seed {args.seed}: budget spent ({model.num_timesteps:,} steps)"
          + (f" without reaching {args.stop_at:g}" if args.stop_at is not None else ""), flush=True)
    tag = args.tag or (f"{args.algo}_" + ("ann" if args.ann else args.neuron)
                       + (f"_{json.dumps(extra, sort_keys=True)}" if extra else ""))
    record = dict(tag=tag, seed=args.seed, env_id="CartPole-v1", algo=args.algo, policy=name,
                  policy_kwargs=policy_kwargs, hyperparams=zoo, steps=model.num_timesteps, budget=budget,
                  stop_reason=curve.stop_reason, final=curve.curve[-1][1], best=curve.best, seconds=seconds,
                  curve=curve.curve, args=asdict(args))
    return model, record


def plot(folder: str, threshold: float | None) -> None:
    """curves.png (the shared plotter) and table.md of the records in ``folder``."""
    records = read_records(folder)
    if not records:
        raise SystemExit(f"no *.json records in {folder}")
    png = plot_curves(records, os.path.join(folder, "curves.png"), group="tag",
                      title="PPO / A2C on CartPole-v1, rl-zoo3 settings, spiking actor",
                      ylabel="greedy evaluation return", hline=threshold,
                      hline_label=f"stop at {threshold:g}" if threshold is not None else "")
    table = summary_table(records, group="tag", threshold=threshold)
    with open(os.path.join(folder, "table.md"), "w") as fh:
        fh.write(table)
    print(table + f"wrote {png} and {os.path.join(folder, 'table.md')}")


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    if args.plot:
        plot(args.plot, args.stop_at)
        return
    torch.set_num_threads(args.threads)
    model, record = train(args)
    print(f"{record['tag']} seed {args.seed}: last eval {record['final']:.1f}, best {record['best']:.1f} "
          f"({args.eval_episodes} greedy episodes) after {record['steps']:,} steps in {record['seconds']:.0f} s",
          flush=True)
    if args.save:
        save_model(model, args.save.format(seed=args.seed, algo=args.algo))
    if args.record:
        name = "".join(c if c.isalnum() else "_" for c in record["tag"]).strip("_")
        print(f"wrote {write_record(os.path.join(args.record, f'{name}_seed{args.seed}.json'), record)}")


if __name__ == "__main__":
    main()
