"""Train a binary spiking DQN on CartPole-v1, export it to NIR, re-import it elsewhere, check it takes the same actions.

    python examples/deploy_nir.py                          # ~20k steps (minutes), then the table
    python examples/deploy_nir.py --total-timesteps 2000 --no-progress-bar   # a quick look
    python examples/deploy_nir.py --help

The agent is trained for deployment: binary LIF neurons that reset to zero (``neuron_kwargs={"reset":
"zero"}``), the dynamics NIR can express, so ``export_nir`` writes it exactly. The greedy agent then plays
``--n-observations`` CartPole steps; on those observations every importer installed here (snnTorch's, and
norse's and spikingjelly's where installed with ``pip install --no-deps``) runs the graph written for it
(``export_nir(..., target=importer)``, saved under ``--out``), on the agent's own encoded inputs, with the
read-out integration on the host (``host_readout``). The table shows how often the re-imported network takes
the agent's action and the largest Q-value difference.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
import tyro
from stable_baselines3 import DQN

from snnrl_sb3 import SpikingQPolicy, export_nir, verify_nir
from snnrl_sb3.nir_verify import IMPORTERS
from snnrl_sb3.results import ProgressBar

# rl-zoo3 2.9.2's tuned CartPole-v1 DQN settings (as examples/dqn_cartpole.py), smaller network
ZOO_CARTPOLE = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
                    target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                    exploration_final_eps=0.04)


@dataclass
class Args:
    """Binary (zero-reset LIF) spiking DQN on CartPole-v1 -> NIR -> snnTorch / norse / spikingjelly."""

    total_timesteps: int = 20_000
    """environment-step budget of the training run, rounded up to whole 256-step rollouts"""
    seed: int = 0
    """seed of the training run and of the observations played"""
    num_steps: int = 8
    """simulation steps T per decision"""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """hidden widths of the spiking Q-network"""
    n_observations: int = 500
    """greedy CartPole steps whose observations the importers are checked on"""
    importers: list[str] = field(default_factory=lambda: list(IMPORTERS))
    """importers to check (those not installed are reported, not run)"""
    out: str = "runs/deploy_nir"
    """folder for the exported graphs (policy_<importer>.nir); empty: don't write them"""
    threads: int = 1
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


def play(model: DQN, n: int, seed: int) -> tuple[np.ndarray, float]:
    """Observations of ``n`` greedy steps (new episodes as needed) and the mean return of the finished episodes."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    seen, returns, total = [], [], 0.0
    for _ in range(n):
        seen.append(obs)
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(int(action))
        total += float(reward)
        if terminated or truncated:
            returns.append(total)
            total = 0.0
            obs, _ = env.reset()
    return np.asarray(seen, dtype=np.float32), float(np.mean(returns)) if returns else total


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    unknown = sorted(set(args.importers) - set(IMPORTERS))
    if unknown:
        raise SystemExit(f"unknown importers {unknown}; allowed: {list(IMPORTERS)}")
    torch.set_num_threads(args.threads)
    policy_kwargs = dict(neuron="lif", neuron_kwargs={"reset": "zero"}, num_steps=args.num_steps,
                         net_arch=args.net_arch)
    model = DQN(SpikingQPolicy, "CartPole-v1", seed=args.seed, policy_kwargs=policy_kwargs, verbose=0, **ZOO_CARTPOLE)
    print(f"training DQN + SpikingQPolicy {policy_kwargs} on CartPole-v1 for {args.total_timesteps:,} steps",
          flush=True)
    start = time.perf_counter()
    model.learn(args.total_timesteps, callback=[ProgressBar()] if args.progress_bar else [])
    observations, mean_return = play(model, args.n_observations, args.seed + 1000)
    print(f"trained in {time.perf_counter() - start:.0f} s; greedy return {mean_return:.1f} while playing "
          f"{len(observations)} observations", flush=True)
    rows = []
    for importer in args.importers:
        try:
            result = verify_nir(model.policy, observations, importer)
        except ImportError as error:
            rows.append(f"{importer:<22} | {'-':>9} | {'-':>10} | not installed ({IMPORTERS[importer][1]})")
            print(f"{importer}: {error}")
            continue
        except NotImplementedError as error:  # refused: the graph would compute another network there
            rows.append(f"{importer:<22} | {'-':>9} | {'-':>10} | refused: {error}")
            continue
        rows.append(result.row())
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, f"policy_{importer}.nir")
            export_nir(model.policy, path, target=importer)
            print(f"wrote {path}")
    print(f"\n{'importer':<22} | agreement | max |ΔQ| (of max |Q|) | status")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
