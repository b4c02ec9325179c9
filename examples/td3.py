"""TD3 with a Pop-SAN (or MDC-SAN) spiking actor; one preset of settings per environment.

    python examples/td3.py                                    # Pendulum-v1, rl-zoo3's TD3 settings, 20k steps
    python examples/td3.py --surrogate trapezoid              # the one-word surrogate switch
    python examples/td3.py --ann                              # SB3's ANN actor, same settings
    python examples/td3.py --env-id HalfCheetah-v5            # Pop-SAN's settings, 50k steps (pip install mujoco)
    python examples/td3.py --env-id HalfCheetah-v5 --neuron dynamic          # MDC-SAN neurons
    python examples/td3.py --preset popsan --surrogate trapezoid   # seed 001 as published: HalfCheetah-v4, 1M steps
    python examples/td3.py --preset mdcsan                         # MDC-SAN's actor, same TD3
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

``--preset popsan|mdcsan`` trains the authors' system: the actor of the library preset of that
name (``policy_kwargs=dict(preset=...)``, only ``--surrogate`` / ``--surrogate-kwargs`` /
``--neuron`` / ``--pop-dim`` / ``--num-steps`` given on the command line override it) under the
reference TD3 (``POPSAN_TD3``, from ``popsan_drl/popsan_td3/td3_cuda_norm.py``, which ILC-SAN's
MDC-SAN script repeats): HalfCheetah-v4 (the closest to the papers' -v3), 1M steps, uniformly
random actions for the first 10,001 steps while the updates start after 1,000
(:class:`WarmupTD3`), 50 gradient steps every 50 env steps, batch 100, actor lr 1e-4 / critic
1e-3, observations normalised with the float32 epsilon and clipped to +-3, evaluation every 10k
steps over 10 deterministic episodes. On Hopper and Walker2d Pop-SAN encodes with Poisson
(Bernoulli) spikes, fresh at evaluation too.
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
from snnrl_sb3.utils import route_mujoco_warnings

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

#: The reference TD3 of Pop-SAN (combra-lab/pop-spiking-deep-rl, popsan_drl/popsan_td3/td3_cuda_norm.py:52-57 and
#: 416-418; ILC-SAN's hybrid_td3_cuda_norm.py:46-51 and 325-327 for MDC-SAN are the same), for ``--preset``.
POPSAN_TD3: dict[str, Any] = dict(
    total_timesteps=1_000_000,  # steps_per_epoch 10000 x epochs 100
    learning_rate=1e-3, actor_lr_ratio=0.1,  # q_lr 1e-3, popsan_lr 1e-4
    buffer_size=1_000_000, batch_size=100, tau=0.005, gamma=0.99,  # replay_size, batch_size, polyak 0.995, gamma
    random_steps=10_001, learning_starts=1000,  # random actions while t <= start_steps 10000; update_after 1000
    train_freq=50, gradient_steps=50,  # update_every 50: 50 updates every 50 steps
    noise_std=0.1, target_policy_noise=0.2, target_noise_clip=0.5, policy_delay=2,  # act/target noise, clip, delay
    net_arch=[256, 256], normalize=True, eval_freq=10_000,  # hidden_sizes; norm_clip_limit 3; one test per epoch
    norm_epsilon=float(np.finfo(np.float32).eps),  # replay_buffer_norm.py:91-93: sqrt(var + float32 eps)
)
#: Environments Pop-SAN encodes with Poisson spikes (td3_cuda_norm.py:401-403).
POISSON_ENVS = ("Hopper", "Walker2d")
PUBLISHED = ("popsan", "mdcsan")


class WarmupTD3(TD3):
    """SB3's TD3 with uniformly random actions for the first ``random_steps`` env steps,
    independently of ``learning_starts`` (when the updates start): Pop-SAN's ``start_steps`` and
    ``update_after``, which SB3's single ``learning_starts`` ties together."""

    def __init__(self, *args: Any, random_steps: int = 0, **kwargs: Any) -> None:
        self.random_steps = int(random_steps)
        super().__init__(*args, **kwargs)

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> Any:
        return super()._sample_action(max(learning_starts, self.random_steps), action_noise, n_envs)


@dataclass
class Args:
    """TD3 with a Pop-SAN spiking actor (stock SB3 TD3 + snnrl_sb3.PopSpikingTD3Policy)."""

    env_id: str | None = None
    """environment (None: Pendulum-v1, or HalfCheetah-v4 with --preset): a key of PRESETS, Pendulum-v1 (rl-zoo3's
    settings) or HalfCheetah-v5 (Pop-SAN's; needs mujoco); with --preset any MuJoCo task"""
    preset: str | None = None
    """train a published system at its authors' settings: popsan or mdcsan (the actor preset, and POPSAN_TD3)"""
    total_timesteps: int | None = None
    """environment-step budget (None: the preset's, Pendulum-v1 20k, HalfCheetah-v5 50k; Pop-SAN trains 1M)"""
    seed: int = 0
    """random seed of the agent (the evaluation env uses seed + 1000)"""
    ann: bool = False
    """train SB3's ANN actor (MlpPolicy) instead of the spiking one, with the same RL settings"""
    neuron: str | None = None
    """hidden neuron (None: the preset's, else current_lif): current_lif (Pop-SAN), dynamic (MDC-SAN), ternary, ..."""
    surrogate: str = "rectangular"
    """surrogate gradient: rectangular (Pop-SAN), triangular, trapezoid (the seed's three), atan, ..."""
    surrogate_kwargs: str = "{}"
    """surrogate parameters as JSON, e.g. '{"w1": 0.2, "w2": 0.6}'"""
    pop_dim: int | None = None
    """population neurons per observation dimension and per action dimension (None: the preset's, else 10)"""
    num_steps: int | None = None
    """spiking simulation length T per action (None: the preset's, else 5)"""
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
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


def population_kwargs(pop_dim: int, mean_range: list[float] | None) -> dict[str, Any]:
    """The encoder and read-out populations of the spiking actor (``pop_dim`` neurons per observation and
    per action dimension; receptive-field means over ``mean_range``, or the observation bounds if ``None``)."""
    encoder = {"pop_dim": pop_dim, **({"mean_range": mean_range} if mean_range is not None else {})}
    return dict(encoder="population", encoder_kwargs=encoder, readout="population", readout_kwargs={"pop_dim": pop_dim})


def published_kwargs(args: Args, env_id: str) -> dict[str, Any]:
    """The policy kwargs of ``--preset``: the library preset, overridden only by what was given."""
    kwargs: dict[str, Any] = dict(preset=args.preset, surrogate=args.surrogate)
    if json.loads(args.surrogate_kwargs):
        kwargs["surrogate_kwargs"] = json.loads(args.surrogate_kwargs)
    for name in ("neuron", "num_steps"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.pop_dim is not None:
        kwargs.update(encoder_kwargs={"pop_dim": args.pop_dim}, readout_kwargs={"pop_dim": args.pop_dim})
    if args.preset == "popsan" and env_id.startswith(POISSON_ENVS):
        kwargs["encoder_kwargs"] = {**kwargs.get("encoder_kwargs", {}), "spikes": "bernoulli",
                                    "deterministic_noise": "fresh"}
    return kwargs


def policy_and_kwargs(args: Args, settings: dict[str, Any], env_id: str = "") -> tuple[Any, dict[str, Any]]:
    net_arch = list(settings["net_arch"])
    if args.ann:
        return "MlpPolicy", dict(net_arch=net_arch)
    if args.preset is not None:
        return PopSpikingTD3Policy, dict(net_arch=net_arch, **published_kwargs(args, env_id))
    mean_range = [-CLIP_OBS, CLIP_OBS] if settings["normalize"] else None  # else: the observation bounds
    return PopSpikingTD3Policy, dict(net_arch=net_arch, num_steps=args.num_steps or 5,
                                     neuron=args.neuron or "current_lif", surrogate=args.surrogate,
                                     surrogate_kwargs=json.loads(args.surrogate_kwargs) or None,
                                     actor_lr_ratio=settings["actor_lr_ratio"],
                                     **population_kwargs(args.pop_dim or 10, mean_range))


def make_env(env_id: str, normalize: bool, training: bool, seed: int | None = None, epsilon: float = 1e-8) -> VecEnv:
    env = DummyVecEnv([lambda: Monitor(gym.make(env_id))])
    if seed is not None:
        env.seed(seed)
    if normalize:
        env = VecNormalize(env, training=training, norm_obs=True, norm_reward=False, clip_obs=CLIP_OBS,
                           epsilon=epsilon)
    return env


def tag_of(args: Args) -> str:
    """The run's name: --tag, else ANN, preset/surrogate or neuron/surrogate."""
    if args.tag:
        return args.tag
    if args.ann:
        return "ANN"
    return f"{args.preset or args.neuron or 'current_lif'}/{args.surrogate}"


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
    route_mujoco_warnings()  # MuJoCo would write its warnings to MUJOCO_LOG.TXT in the working directory
    if args.plot:
        plot(args.plot)
        return
    if args.preset is not None and args.preset not in PUBLISHED:
        raise SystemExit(f"--preset must be one of {list(PUBLISHED)}, got {args.preset!r}")
    env_id = args.env_id or ("HalfCheetah-v4" if args.preset else "Pendulum-v1")
    if args.preset is None and env_id not in PRESETS:
        raise SystemExit(f"--env-id must be one of {sorted(PRESETS)} (add a preset to PRESETS), got {env_id!r}")
    overrides = dict(total_timesteps=args.total_timesteps, net_arch=args.net_arch, learning_starts=args.learning_starts,
                     batch_size=args.batch_size, train_freq=args.train_freq, gradient_steps=args.train_freq,
                     eval_freq=args.eval_freq)
    base = POPSAN_TD3 if args.preset is not None else PRESETS[env_id]
    settings = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    total = settings["total_timesteps"]
    torch.set_num_threads(args.threads)

    epsilon = settings.get("norm_epsilon", 1e-8)
    env = make_env(env_id, settings["normalize"], training=True, epsilon=epsilon)
    eval_env = make_env(env_id, settings["normalize"], training=False, seed=args.seed + 1000, epsilon=epsilon)
    n_actions = env.action_space.shape[0]
    noise = NormalActionNoise(np.zeros(n_actions), settings["noise_std"] * np.ones(n_actions))
    policy, policy_kwargs = policy_and_kwargs(args, settings, env_id)
    random_steps = min(settings.get("random_steps", 0), total)
    algo = WarmupTD3 if random_steps > settings["learning_starts"] else TD3
    model = algo(policy, env, learning_rate=settings["learning_rate"], buffer_size=settings["buffer_size"],
                learning_starts=min(settings["learning_starts"], total), batch_size=settings["batch_size"],
                tau=settings["tau"], gamma=settings["gamma"], train_freq=settings["train_freq"],
                gradient_steps=settings["gradient_steps"], action_noise=noise, policy_kwargs=policy_kwargs,
                policy_delay=settings.get("policy_delay", 2),
                target_policy_noise=settings.get("target_policy_noise", 0.2),
                target_noise_clip=settings.get("target_noise_clip", 0.5),
                **({"random_steps": random_steps} if algo is WarmupTD3 else {}), seed=args.seed, verbose=0)
    tag = tag_of(args)
    curve = LearningCurve(name=f"{tag} seed {args.seed}: ")
    evaluation = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes, eval_freq=settings["eval_freq"],
                              deterministic=True, callback_after_eval=curve, verbose=0)
    when = f"every {settings['eval_freq']:,} steps" if settings["eval_freq"] > 0 else "at the end"
    print(f"{tag} TD3 on {env_id}, seed {args.seed}: {total:,} steps, evaluation {when} "
          f"({args.eval_episodes} episodes)", flush=True)
    start = time.perf_counter()
    model.learn(total, callback=[evaluation] + ([ProgressBar()] if args.progress_bar else []))
    seconds = time.perf_counter() - start
    if not curve.curve or curve.curve[-1][0] != model.num_timesteps:
        curve.evaluate(model)  # no scheduled evaluation at the last step
    final, final_std = curve.curve[-1][1:]
    print(f"{tag} TD3 {env_id} seed {args.seed}: best eval mean {curve.best:.1f}, final {final:.1f} ± "
          f"{final_std:.1f} after {model.num_timesteps:,} steps, {model.num_timesteps / seconds:.0f} steps/s",
          flush=True)
    if args.save:
        model.__class__ = TD3  # the warm-up only chose exploration actions: the saved model is a plain TD3
        save_model(model, args.save.format(env=env_id, seed=args.seed))
    if args.record:
        record = dict(tag=tag, seed=args.seed, env_id=env_id, steps=model.num_timesteps, budget=total,
                      curve=curve.curve, final=final, final_std=final_std, best=curve.best, seconds=seconds,
                      steps_per_second=model.num_timesteps / seconds, settings=settings,
                      policy_kwargs=policy_kwargs, args=asdict(args))
        name = "".join(c if c.isalnum() else "_" for c in tag).strip("_")
        print(f"wrote {write_record(os.path.join(args.record, f'{name}_seed{args.seed}.json'), record)}")


if __name__ == "__main__":
    main()
