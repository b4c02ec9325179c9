"""Spike statistics, operation counts and a 45 nm energy estimate for a spiking DQN policy.

    python examples/energy_report.py                                     # trains a small spiking DQN first
    python examples/energy_report.py --model-path runs/dqn_cartpole/seed0.zip   # a saved SpikingQPolicy DQN
    python examples/energy_report.py --raster examples/results/energy/raster.png
    python examples/energy_report.py --help

Prints per-layer firing rates (+1 / -1), the SynOps/MACs report of
:func:`snnrl_sb3.estimate_energy` against the same-shape ANN, and draws a spike raster of one
decision (every neuron layer, all T steps). Energy counts arithmetic only (memory traffic ignored).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import tyro
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

from snnrl_sb3 import SpikingQPolicy
from snnrl_sb3.conversion import collect_observations
from snnrl_sb3.energy import estimate_energy
from snnrl_sb3.stats import record_spikes, spike_statistics


@dataclass
class Args:
    """Energy and spike report of a spiking DQN."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id"""
    model_path: str = ""
    """saved DQN (SpikingQPolicy) to analyse, e.g. runs/dqn_cartpole/seed0.zip; empty: train a small one"""
    total_timesteps: int = 5000
    """environment-step budget of the small DQN trained when no --model-path is given"""
    neuron: str = "ternary"
    """neuron of the small DQN trained when no --model-path is given"""
    observations: int = 500
    """observations from the policy's own play to average the statistics over"""
    raster: str = "runs/energy_report/raster.png"
    """PNG of the spike raster of one decision (empty: none)"""
    seed: int = 0
    """random seed"""
    threads: int = 1
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""


def draw_raster(spikes: dict[str, torch.Tensor], path: str) -> None:
    """One panel per neuron layer: neurons (y) x time steps (x) of the first observation's decision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(spikes.items())
    fig, axes = plt.subplots(len(layers), 1, figsize=(7, 1.9 * len(layers)), squeeze=False)
    for ax, (name, train) in zip(axes[:, 0], layers):
        one = train[:, 0].flatten(1).cpu().numpy()  # [T, neurons] of the first observation
        ax.imshow(one.T, aspect="auto", cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
        ax.set(title=f"layer {name}", ylabel="neuron", xlabel="time step")
        ax.title.set_fontsize(9)
    fig.suptitle("spikes of one decision (red +1, blue -1)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    torch.set_num_threads(args.threads)
    env = make_vec_env(args.env_id, n_envs=1, seed=args.seed)
    if args.model_path:
        model = DQN.load(args.model_path, env=env)
    else:
        model = DQN(SpikingQPolicy, env, learning_starts=500, train_freq=64, gradient_steps=32,
                    policy_kwargs=dict(neuron=args.neuron, net_arch=[64, 64]), seed=args.seed)
        model.learn(args.total_timesteps)
    observations = collect_observations(model, env, args.observations, seed=args.seed)
    obs_tensor, _ = model.policy.obs_to_tensor(observations)
    # spikes recorded on the whole policy: its layers are named as in the energy report below
    with torch.no_grad(), record_spikes(model.policy) as spikes:
        model.policy.q_net(obs_tensor, deterministic=True)
    print("firing per layer (fraction of neuron-steps):")
    for name, train in spikes.items():
        stats = spike_statistics(train)
        print(f"  {name:<26} +1 {stats['pos_rate']:.3f}  -1 {stats['neg_rate']:.3f}  dead {stats['dead']:.2f}  "
              f"saturated {stats['saturated']:.2f}")
    print()
    estimate_energy(model.policy, observations)
    if args.raster:
        draw_raster(spikes, args.raster)


if __name__ == "__main__":
    main()
