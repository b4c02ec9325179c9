"""Train an ANN DQN on CartPole-v1 (rl-zoo3 settings), convert it to a spiking DQN, and compare.

    python examples/convert_dqn.py                             # train (or reuse) the ANN, convert at T = 8..64
    python examples/convert_dqn.py --ann-path runs/ann_cartpole --plot examples/results/convert_dqn/return_vs_T.png
    python examples/convert_dqn.py --method tan2021 --num-steps 8 16 32 64 128   # Tan et al. 2021's conversion
    python examples/convert_dqn.py --help

The ANN is trained once: its best checkpoint of periodic evaluation is kept as
``ANN_PATH/best_model.zip`` and every later run with the same ``--ann-path`` loads it from there
(``--retrain`` trains again). For each simulation length T it prints the converted agent's
evaluation return, its ratio to the ANN's, and the fraction of calibration observations on which
both choose the same action; ``--plot`` draws return vs T. ``--method`` converts as a published
method does (``tan2021``: Tan et al. 2021; ``seed002``: seed 002's x10 per layer, which needs
observations in [0, 1]); see ``snnrl_sb3.conversion.convert_dqn``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Literal

import torch
import tyro
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from snnrl_sb3.conversion import METHODS, action_agreement, collect_observations, convert_dqn
from snnrl_sb3.results import ProgressBar

# rl-zoo3 2.9.2 hyperparams/dqn.yml, CartPole-v1 (ANN DQN)
ZOO_CARTPOLE = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
                    target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                    exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))
ANN_EVAL_FREQ = 2500  # steps between the ANN's evaluations (10 episodes) that pick its best checkpoint


@dataclass
class Args:
    """ANN -> SNN conversion of a DQN on CartPole-v1."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id"""
    total_timesteps: int = 50_000
    """environment-step budget of the ANN's training (rl-zoo3: 50k)"""
    seed: int = 0
    """random seed"""
    ann_path: str = "runs/convert_dqn"
    """folder of the ANN: loaded from ANN_PATH/best_model.zip when it is there, else trained and saved there"""
    retrain: bool = False
    """train the ANN even when ANN_PATH/best_model.zip exists (and replace it)"""
    num_steps: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    """simulation lengths T to convert at"""
    method: Literal["tan2021", "seed002"] | None = None
    """a published conversion: tan2021 (Tan et al. 2021: data normalisation of every layer, output included,
    IF neurons, Q = output spike count + final membrane, one step of delay per layer, calibration from the ANN's
    epsilon = 0.05 play) or seed002 (x10 per layer, LIF, Poisson input, Q = output spike count); it fixes
    normalization, neuron and encoder (None: those flags decide)"""
    normalization: Literal["data", "fixed", "none"] = "data"
    """weight normalisation: data (99.9th percentile), fixed (seed 002: x10 per layer) or none"""
    neuron: Literal["if", "lif"] = "if"
    """neuron of the converted network: if (integrate-and-fire) or lif"""
    encoder: Literal["direct", "bernoulli"] = "direct"
    """input coding of the converted network: direct, or bernoulli (inputs in [0, 1] only)"""
    calibration_steps: int = 2000
    """observations gathered from the ANN's own play for normalisation and agreement"""
    eval_episodes: int = 20
    """evaluation episodes per model"""
    plot: str = ""
    """write return vs T to this PNG (empty: no plot)"""
    threads: int = 1
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""
    progress_bar: bool = True
    """show a progress bar while the ANN trains"""


def ann_dqn(args: Args, env) -> DQN:
    """The ANN: loaded from ``ANN_PATH/best_model.zip``, or trained and its best checkpoint saved there."""
    best = os.path.join(args.ann_path, "best_model.zip")
    if os.path.exists(best) and not args.retrain:
        print(f"loaded the ANN from {best} (--retrain trains a new one)")
        return DQN.load(best, env=env)
    ann = DQN("MlpPolicy", env, seed=args.seed, **ZOO_CARTPOLE)
    callback = EvalCallback(make_vec_env(args.env_id, n_envs=1, seed=args.seed + 100), eval_freq=ANN_EVAL_FREQ,
                            n_eval_episodes=10, best_model_save_path=args.ann_path, verbose=0)
    start = time.perf_counter()
    ann.learn(args.total_timesteps, callback=[callback] + ([ProgressBar()] if args.progress_bar else []))
    print(f"trained the ANN for {ann.num_timesteps:,} steps in {time.perf_counter() - start:.0f} s")
    if callback.best_mean_reward > -math.inf:  # an evaluation ran: EvalCallback saved its best checkpoint there
        print(f"saved its best checkpoint (evaluation mean {callback.best_mean_reward:.1f}) as {best}")
        return DQN.load(best, env=env)
    ann.save(best)  # the budget ended before the first evaluation: keep the last model
    print(f"no evaluation ran within {args.total_timesteps:,} steps: saved the last model as {best}")
    return ann


def plot(path: str, num_steps: list[int], returns: list[float], ann_return: float, args: Args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    name = f"method {args.method}" if args.method else f"{args.neuron}, {args.normalization} normalisation"
    ax.plot(num_steps, returns, "o-", label=f"converted SNN ({name})")
    ax.axhline(ann_return, color="k", ls="--", label="ANN")
    ax.set_xscale("log", base=2)
    ax.set_xticks(num_steps, [str(t) for t in num_steps])
    ax.minorticks_off()  # a log axis labels its minor ticks too (2x10^1, ...), over the T labels
    ax.set(xlabel="simulation steps T", ylabel=f"evaluation return ({args.eval_episodes} episodes)",
           title=args.env_id)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    torch.set_num_threads(args.threads)
    env = make_vec_env(args.env_id, n_envs=1, seed=args.seed)
    ann = ann_dqn(args, env)
    def evaluate(model: DQN) -> float:  # every model plays the same episodes: a fresh env, seeded alike
        eval_env = make_vec_env(args.env_id, n_envs=1, seed=args.seed + 1000)
        return float(evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes)[0])

    ann_return = evaluate(ann)
    epsilon = METHODS[args.method].get("calibration_epsilon", 0.0) if args.method else 0.0
    observations = collect_observations(ann, env, args.calibration_steps, seed=args.seed, epsilon=epsilon)
    if args.method:
        print(f"method {args.method}: " + ", ".join(f"{k}={v}" for k, v in METHODS[args.method].items()))
    print(f"ANN return {ann_return:.1f}")
    print("| T | SNN return | SNN / ANN | action agreement |\n|---|---|---|---|")
    returns = []
    for steps in args.num_steps:
        snn = convert_dqn(ann, method=args.method, observations=observations, num_steps=steps, neuron=args.neuron,
                          normalization=args.normalization, encoder=args.encoder)
        mean = evaluate(snn)
        agreement = action_agreement(ann, snn, observations)
        returns.append(mean)
        print(f"| {steps} | {mean:.1f} | {mean / ann_return:.0%} | {agreement:.3f} |")
    if args.plot:
        plot(args.plot, args.num_steps, returns, ann_return, args)
    best = max(range(len(returns)), key=lambda i: returns[i])
    print(f"best: T={args.num_steps[best]} reaches {returns[best] / ann_return:.0%} of the ANN's return "
          f"({returns[best]:.1f} / {ann_return:.1f})")


if __name__ == "__main__":
    main()
