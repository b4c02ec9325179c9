"""TD3 benchmark: the Pop-SAN actor against SB3's ANN actor, as ratios.

Run ``python -m snnrl_sb3.benchmarks.td3`` (``--help`` for options). In one process, with
interleaved rounds:

1. **Actor fwd+bwd** at HalfCheetah's shape (obs 17, act 6), T = 5, batch 100, hidden
   [256, 256], Pop-SAN neurons: ``ann`` (SB3's TD3 ``Actor``, the unit), ``naive`` (Pop-SAN's
   own structure: every layer called at every step, autograd through the step functions) and
   ``snnrl`` (:class:`~snnrl_sb3.td3.PopSpikingActor`: layers once over all T, fused kernels),
   plus the forward alone at batch 1 (one action while collecting).
2. **TD3 env-steps/s during** ``learn`` at Pop-SAN's settings (batch 100, 50 gradient steps
   every 50 env steps), ANN vs spiking actor (critic [256, 256] in both), on a synthetic
   HalfCheetah-shaped environment by default (so the simulator does not dilute the ratio);
   ``--env HalfCheetah-v5`` uses MuJoCo. Target: the spiking actor keeps >= 50 % of the ANN's.

Learning curves are plotted by ``python examples/td3.py --plot FOLDER`` (:mod:`snnrl_sb3.results`).
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from snnrl_sb3.benchmarks._baselines import fwd_bwd
from snnrl_sb3.benchmarks._timing import learn_rates, print_table, time_calls
from snnrl_sb3.neurons import current_leaky_step
from snnrl_sb3.surrogate import rectangular
from snnrl_sb3.utils import route_mujoco_warnings

OBS_DIM, ACT_DIM = 17, 6


class NaivePopSAN(nn.Module):
    """Pop-SAN's reference structure: a Python loop over T calling every layer at every step."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], pop_dim: int = 10, num_steps: int = 5) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.pop_dim, self.num_steps = obs_dim, act_dim, pop_dim, num_steps
        self.mean = nn.Parameter(torch.linspace(-3, 3, pop_dim).repeat(obs_dim, 1))
        self.std = nn.Parameter(torch.full((obs_dim, pop_dim), 0.15 ** 0.5))
        sizes = [obs_dim * pop_dim, *hidden, act_dim * pop_dim]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.widths = sizes[1:]  # out_features of each fc
        self.dec_w = nn.Parameter(torch.randn(act_dim, pop_dim) * 0.3)
        self.dec_b = nn.Parameter(torch.zeros(act_dim))
        self.spike = rectangular(0.5)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        act = torch.exp(-0.5 * ((obs.unsqueeze(-1) - self.mean) / self.std).square()).flatten(1)
        volt_in = torch.zeros_like(act)
        states = [[torch.zeros(obs.shape[0], width)] * 3 for width in self.widths]
        rate = torch.zeros(())
        for _ in range(self.num_steps):
            volt_in = volt_in + act
            h = (volt_in > 0.999).float() + (volt_in - volt_in.detach())
            volt_in = volt_in - h * 0.999
            for i, fc in enumerate(self.fcs):
                spike, current, volt = current_leaky_step(fc(h), states[i][1], states[i][2], states[i][0], 0.5, 0.75,
                                                          0.5, self.spike)
                states[i] = [spike, current, volt]
                h = spike
            rate = rate + h
        rate = (rate / self.num_steps).view(-1, self.act_dim, self.pop_dim)
        return torch.tanh((rate * self.dec_w).sum(-1) + self.dec_b)


class SyntheticEnv(gym.Env):
    """HalfCheetah-shaped environment that costs (almost) nothing per step."""

    def __init__(self, obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM, episode: int = 1000) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
        self.episode, self.t = episode, 0
        self.rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self.rng.standard_normal(self.observation_space.shape).astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        obs = self.rng.standard_normal(self.observation_space.shape).astype(np.float32)
        return obs, float(-np.square(action).sum()), False, self.t >= self.episode, {}


def _space_pair() -> tuple[spaces.Box, spaces.Box]:
    return (spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32), spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32))


def actor_table(batch: int = 100, num_steps: int = 5, rounds: int = 7) -> list[list[str]]:
    from stable_baselines3.common.torch_layers import FlattenExtractor
    from stable_baselines3.td3.policies import Actor

    from snnrl_sb3.td3 import PopSpikingActor

    obs_space, act_space = _space_pair()
    hidden = [256, 256]
    ann = Actor(obs_space, act_space, hidden, FlattenExtractor(obs_space), OBS_DIM)
    snn = PopSpikingActor(obs_space, act_space, hidden, FlattenExtractor(obs_space), OBS_DIM,
                          spiking={"num_steps": num_steps, "encoder_kwargs": {"mean_range": [-3.0, 3.0]}})
    naive = NaivePopSAN(OBS_DIM, ACT_DIM, hidden, num_steps=num_steps)
    torch.manual_seed(0)
    x = torch.randn(batch, OBS_DIM)
    x1 = x[:1]

    def fwd1(model: nn.Module) -> Any:
        def step() -> None:
            with torch.no_grad():
                model(x1)
        return step

    models = {"ann": ann, "naive": naive, "snnrl": snn}
    train = time_calls({k: fwd_bwd(m, x) for k, m in models.items()}, rounds=rounds)
    infer = time_calls({k: fwd1(m) for k, m in models.items()}, rounds=rounds)
    rows = []
    for name in models:
        rows.append([name, f"{train[name] * 1e3:.3f}", f"{train[name] / train['ann']:.2f}x",
                     f"{infer[name] * 1e3:.3f}", f"{infer[name] / infer['ann']:.2f}x"])
    rows.append(["naive / snnrl", "", f"{train['naive'] / train['snnrl']:.2f}x", "",
                 f"{infer['naive'] / infer['snnrl']:.2f}x"])
    return rows


def learn_table(env_id: str | None = None, steps: int = 1000, rounds: int = 3, warmup: int = 500,
                num_steps: int = 5) -> list[list[str]]:
    from stable_baselines3 import TD3

    from snnrl_sb3.td3 import PopSpikingTD3Policy

    def make_env() -> gym.Env:
        return SyntheticEnv() if env_id is None else gym.make(env_id)

    common: dict[str, Any] = dict(learning_rate=1e-3, batch_size=100, train_freq=50, gradient_steps=50,
                                  learning_starts=warmup, buffer_size=100_000, seed=0, verbose=0)
    models = {
        "ann": TD3("MlpPolicy", make_env(), policy_kwargs=dict(net_arch=[256, 256]), **common),
        "snnrl": TD3(PopSpikingTD3Policy, make_env(), policy_kwargs=dict(
            net_arch=[256, 256], num_steps=num_steps, actor_lr_ratio=0.1,
            encoder_kwargs={"mean_range": [-3.0, 3.0]}), **common),
    }
    med = learn_rates(models, steps, rounds, warmup + 100)
    return [[name, f"{med[name]:.0f}", f"{med[name] / med['ann'] * 100:.0f}%"] for name in models]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--env", default=None, help="gymnasium id for the learn benchmark (default: synthetic)")
    parser.add_argument("--learn-steps", type=int, default=1000,
                        help="environment steps per timed learn round (default: 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed learn rounds (default: 3)")
    parser.add_argument("--skip-learn", action="store_true", help="skip the TD3 learn benchmark")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    route_mujoco_warnings()
    print(f"Actor, HalfCheetah shape (obs {OBS_DIM}, act {ACT_DIM}), T=5, hidden [256, 256], "
          f"{args.threads} thread(s); ms per call and ratio to SB3's ANN actor\n")
    print_table(["actor", "fwd+bwd B=100 (ms)", "ratio", "fwd B=1 (ms)", "ratio"], actor_table())
    if not args.skip_learn:
        print(f"\nTD3 learn, Pop-SAN settings (batch 100, 50 grad steps / 50 env steps), "
              f"env {args.env or 'synthetic HalfCheetah-shaped'}; median of {args.rounds} rounds of "
              f"{args.learn_steps} steps\n")
        print_table(["actor", "env-steps/s", "of ANN"], learn_table(args.env, args.learn_steps, args.rounds))


if __name__ == "__main__":
    main()
