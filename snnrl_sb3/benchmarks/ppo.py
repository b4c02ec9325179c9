"""PPO benchmark: environment steps per second during ``learn``, spiking actor against SB3's ANN policy.

Run ``python -m snnrl_sb3.benchmarks.ppo``. In one process it builds stock SB3 ``PPO`` with
rl-zoo3's CartPole-v1 settings (8 envs, ``n_steps=32``, ``batch_size=256``, ``n_epochs=20``, the
zoo's ``lin_0.001`` / ``lin_0.2`` schedules) for SB3's ``MlpPolicy`` (the unit) and for
:class:`~snnrl_sb3.SpikingActorCriticPolicy` (spiking actor, T = 8, SB3's deep critic) with each
neuron asked for, and times interleaved rounds (ANN, spiking, ANN, spiking, ...) of
``model.learn(steps, reset_num_timesteps=False)``: rollout collection (one batched actor and critic
forward per vector step) and the training epochs, everything a PPO run spends. It prints the
median env-steps/s over the rounds and the ratio to the ANN policy.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule

from snnrl_sb3.actor_critic import SpikingActorCriticPolicy
from snnrl_sb3.benchmarks._timing import learn_rates, print_table
from snnrl_sb3.utils import tune_allocator

#: rl-zoo3 2.9.2 hyperparams/ppo.yml, CartPole-v1 (n_envs 8), the zoo's lin_X as SB3 schedules.
ZOO_CARTPOLE: dict[str, Any] = dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                                    ent_coef=0.0, learning_rate=LinearSchedule(1e-3, 0.0, 1.0),
                                    clip_range=LinearSchedule(0.2, 0.0, 1.0))
N_ENVS = 8


def ppo_rates(neurons: list[str], num_steps: int, steps: int, rounds: int) -> dict[str, float]:
    """Median env-steps/s of ``PPO.learn`` per policy (``"ann"`` and one entry per neuron)."""
    models = {"ann": PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0), seed=0, **ZOO_CARTPOLE)}
    for neuron in neurons:
        models[neuron] = PPO(SpikingActorCriticPolicy, make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0), seed=0,
                             policy_kwargs=dict(neuron=neuron, num_steps=num_steps), **ZOO_CARTPOLE)
    return learn_rates(models, steps, rounds, N_ENVS * ZOO_CARTPOLE["n_steps"] * 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", nargs="+", default=["ternary", "lif"],
                        help="neuron kinds of the spiking actors (default: ternary lif)")
    parser.add_argument("--num-steps", type=int, default=8, help="simulation steps T of the spiking actor (default: 8)")
    parser.add_argument("--learn-steps", type=int, default=2048,
                        help="environment steps per timed learn round, whole 256-step rollouts (default: 2048)")
    parser.add_argument("--rounds", type=int, default=5, help="timed learn rounds (default: 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    rollout = N_ENVS * ZOO_CARTPOLE["n_steps"]
    if args.learn_steps < rollout or args.learn_steps % rollout:
        parser.error(f"--learn-steps must be a positive multiple of the {rollout}-step rollout")
    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    torch.set_num_threads(args.threads)
    rates = ppo_rates(args.neurons, args.num_steps, args.learn_steps, args.rounds)
    print(f"PPO learn on CartPole-v1, rl-zoo3 settings ({N_ENVS} envs, n_steps 32, batch 256, 20 epochs), "
          f"T={args.num_steps}, {args.threads} thread(s); median of {args.rounds} rounds of {args.learn_steps} "
          "steps\n")
    rows = [["SB3 MlpPolicy (unit)", f"{rates['ann']:.0f}", "1.00x"]]
    rows += [[f"SpikingActorCriticPolicy {n}", f"{rates[n]:.0f}", f"{rates['ann'] / rates[n]:.2f}x"]
             for n in args.neurons]
    print_table(["policy", "env-steps/s", "slower than ANN"], rows)


if __name__ == "__main__":
    main()
