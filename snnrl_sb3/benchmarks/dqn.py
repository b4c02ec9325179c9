"""DQN benchmark: gradient-step time and acting latency of the spiking Q-network, as ratios.

Run ``python -m snnrl_sb3.benchmarks.dqn``. In one process, with interleaved rounds
(:func:`~snnrl_sb3.benchmarks._timing.time_calls`), it times:

* the **DQN gradient step** (SB3's ``DQN.train`` body on a fixed batch: target-network forward
  without grad, online forward, Huber loss, backward, grad clipping, Adam) for CartPole's shape
  (4 inputs, 2 actions, ``net_arch=[256, 256]``, batch 64, T = 8);
* the **acting latency**: ``policy.predict(obs, deterministic=True)`` for one observation (what
  ``DQN.predict`` and ``evaluate_policy`` call per step), and the bare network forward;

for SB3's ANN ``MlpPolicy`` (the unit), the naive snnTorch per-step loop
(:class:`~snnrl_sb3.benchmarks._baselines.NaiveSnnTorchMLP`: every layer called at every step,
``snn.Leaky``, membrane-max read-out), :class:`~snnrl_sb3.SpikingQPolicy` with
binary LIF and asymmetric ternary neurons (with ``--compile`` also their ``backend="compile"``
versions), and the *floor*: the LIF policy with its neurons removed
(:func:`~snnrl_sb3.benchmarks._timing.without_neurons`), the least any neuron kernel can cost.
Then the same gradient step for the Atari NatureCNN
(4x84x84, batch 32) against SB3's ``CnnPolicy``, at T = 8 and T = 20 (``--skip-atari`` to skip).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy
from torch import nn

from snnrl_sb3.benchmarks._baselines import NaiveSnnTorchMLP
from snnrl_sb3.benchmarks._timing import first_call_seconds, print_table, time_calls, without_neurons
from snnrl_sb3.dqn import SpikingQPolicy
from snnrl_sb3.utils import tune_allocator


def dqn_step(q_net: nn.Module, target: nn.Module, optimizer: torch.optim.Optimizer,
             batch: tuple[torch.Tensor, ...], gamma: float = 0.99) -> Callable[[], None]:
    """SB3 ``DQN.train``'s body for one gradient step on a fixed batch."""
    obs, actions, next_obs, rewards, dones = batch
    params = list(q_net.parameters())

    def step() -> None:
        with torch.no_grad():
            next_q = target(next_obs).max(dim=1)[0].reshape(-1, 1)
            target_q = rewards + (1 - dones) * gamma * next_q
        current = torch.gather(q_net(obs), dim=1, index=actions.long())
        loss = F.smooth_l1_loss(current, target_q)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()

    return step


def make_batch(obs_space: spaces.Box, n_actions: int, batch: int) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(0)
    if obs_space.dtype == np.uint8:
        obs, next_obs = (torch.as_tensor(rng.integers(0, 256, (batch, *obs_space.shape), dtype=np.uint8))
                         for _ in range(2))
    else:
        obs, next_obs = (torch.as_tensor(rng.normal(size=(batch, *obs_space.shape)).astype(np.float32))
                         for _ in range(2))
    actions = torch.as_tensor(rng.integers(0, n_actions, (batch, 1)))
    rewards = torch.ones(batch, 1)
    dones = torch.zeros(batch, 1)
    return obs, actions, next_obs, rewards, dones


def policy_step(policy: DQNPolicy, batch: tuple[torch.Tensor, ...]) -> Callable[[], None]:
    policy.set_training_mode(True)
    return dqn_step(policy.q_net, policy.q_net_target, policy.optimizer, batch)


def naive_step(sizes: list[int], num_steps: int,
               batch: tuple[torch.Tensor, ...]) -> tuple[Callable[[], None], nn.Module]:
    net, target = NaiveSnnTorchMLP(sizes, num_steps), NaiveSnnTorchMLP(sizes, num_steps)
    target.load_state_dict(net.state_dict())
    return dqn_step(net, target, torch.optim.Adam(net.parameters(), lr=1e-3), batch), net


def lr(_: float) -> float:
    return 1e-3


def cartpole(args: argparse.Namespace) -> None:
    obs_space, act_space = spaces.Box(-np.inf, np.inf, (4,), np.float32), spaces.Discrete(2)
    arch, steps = [256, 256], args.num_steps
    batch = make_batch(obs_space, 2, args.batch)
    ann = DQNPolicy(obs_space, act_space, lr, net_arch=arch)
    variants = {"lif": ("lif", "eager"), "ternary": ("ternary", "eager")}
    if args.compile:
        variants.update({"lif+compile": ("lif", "compile"), "ternary+compile": ("ternary", "compile")})
    spiking = {name: SpikingQPolicy(obs_space, act_space, lr, net_arch=arch, num_steps=steps, neuron=neuron,
                                    backend=backend)
               for name, (neuron, backend) in variants.items()}
    floor = without_neurons(spiking["lif"])
    naive, naive_net = naive_step([4, *arch, 2], steps, batch)
    steps_of = {"ann": policy_step(ann, batch), "naive": naive, "floor": policy_step(floor, batch),
                **{name: policy_step(policy, batch) for name, policy in spiking.items()}}
    for name in variants:
        if name.endswith("+compile"):
            print(f"compiling {name}: {first_call_seconds(steps_of[name]):.1f} s")
    timing = dict(rounds=args.rounds, stat=args.stat, clock=args.clock)
    train = time_calls(steps_of, **timing)

    one = np.random.default_rng(1).normal(size=(4,)).astype(np.float32)
    one_t = torch.as_tensor(one)[None]
    policies = {"ann": ann, "floor": floor, **spiking}
    for p in policies.values():
        p.set_training_mode(False)

    def bare(net: nn.Module) -> Callable[[], object]:
        def call() -> object:
            with torch.no_grad():
                return net(one_t)
        return call

    def acting(policy: DQNPolicy) -> Callable[[], object]:
        return lambda: policy.predict(one, deterministic=True)

    act = time_calls({name: acting(p) for name, p in policies.items()}, **timing)
    fwd = time_calls({"ann": bare(ann.q_net), "naive": bare(naive_net),
                      **{name: bare(p.q_net) for name, p in policies.items() if name != "ann"}}, **timing)

    print(f"\nCartPole shape (4-256-256-2), T={steps}, {torch.get_num_threads()} thread(s); ratios to SB3 MlpPolicy")
    labels = {"naive": "naive snnTorch loop", "floor": "layer-once floor (neurons removed)",
              **{name: f"SpikingQPolicy {name}" for name in variants}}
    rows = []
    for name, label in labels.items():
        rows.append([label, f"{train[name] / train['ann']:.2f}x", f"{train['naive'] / train[name]:.1f}x",
                     f"{act[name] / act['ann']:.2f}x" if name != "naive" else "-",
                     f"{fwd[name] / fwd['ann']:.2f}x"])
    rows.append(["SB3 MlpPolicy (unit)", f"{train['ann'] * 1e6:.0f} µs", "-", f"{act['ann'] * 1e6:.0f} µs",
                 f"{fwd['ann'] * 1e6:.0f} µs"])
    print_table([f"batch {args.batch} grad step / batch-1 acting", "grad step", "faster than naive",
                 "predict()", "bare forward"], rows)


def atari(args: argparse.Namespace) -> None:
    obs_space, act_space = spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(4)
    batch = make_batch(obs_space, 4, 32)
    rows = []
    for steps in (8, 20):
        ann = CnnPolicy(obs_space, act_space, lr)
        cands = {"ann": policy_step(ann, batch)}
        for enc in ("direct", "bernoulli"):
            pol = SpikingQPolicy(obs_space, act_space, lr, num_steps=steps, encoder=enc,
                                 readout="spike_count" if enc == "bernoulli" else "membrane_max")
            cands[enc] = policy_step(pol, batch)
        t = time_calls(cands, rounds=max(3, args.rounds // 2), min_seconds=0.3, warmup=2, stat=args.stat,
                       clock=args.clock)
        rows.append([str(steps), f"{t['ann'] * 1e3:.1f} ms", f"{t['direct'] / t['ann']:.1f}x",
                     f"{t['bernoulli'] / t['ann']:.1f}x"])
    print("\nAtari NatureCNN (4x84x84, 4 actions), batch 32 grad step, ternary; ratios to SB3 CnnPolicy")
    print_table(["T", "SB3 CnnPolicy", "spiking direct", "spiking bernoulli (seed 000)"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="CartPole gradient-step batch size (default: 64)")
    parser.add_argument("--num-steps", type=int, default=8, help="simulation steps T of the CartPole nets (default: 8)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default: 7)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default: 1, stable ratios on shared CPUs)")
    parser.add_argument("--stat", choices=["median", "min"], default="min",
                        help="per-candidate statistic over the rounds (default: min)")
    parser.add_argument("--clock", choices=["wall", "thread"], default="thread",
                        help="thread (default): CPU time of this thread (needs --threads 1); wall: elapsed time")
    parser.add_argument("--skip-atari", action="store_true", help="skip the Atari NatureCNN gradient step")
    parser.add_argument("--compile", action="store_true",
                        help="also time backend='compile' (torch.compile'd kernels; needs a C++ compiler)")
    args = parser.parse_args(argv)
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread needs --threads 1; use --clock wall with more threads")
    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cartpole(args)
    if not args.skip_atari:
        atari(args)


if __name__ == "__main__":
    main()
