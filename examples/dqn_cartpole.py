"""Train a spiking Q-network on CartPole-v1 with stock SB3 DQN and print its evaluation return.

    python examples/dqn_cartpole.py                      # main job: default spiking policy, a few minutes
    python examples/dqn_cartpole.py --seeds 0 1 --record examples/results/dqn_cartpole
    python examples/dqn_cartpole.py --plot examples/results/dqn_cartpole   # curves PNG + table

The settings are rl-zoo3's own tuned ANN DQN configuration for CartPole-v1 (50k steps),
unchanged except the policy. Training is evaluated greedily (10 episodes) every 2500 steps and
stops once the mean reaches 475 (CartPole-v1's threshold; ``--stop-at 0`` trains the full 50k).
``--policy ann`` trains SB3's ``MlpPolicy`` with the same settings, for comparison;
``--policy-kwargs '{"neuron": "lif"}'`` changes the spiking policy.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PRESETS = {
    # rl-zoo3 2.9.2 hyperparams/dqn.yml, CartPole-v1 (ANN DQN), unchanged
    "zoo": dict(steps=50_000, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
                gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                exploration_fraction=0.16, exploration_final_eps=0.04, net_arch=[256, 256]),
}

from snnrl_sb3.cli import parse_args


@dataclass
class Args:
    """Spiking DQN on CartPole-v1 (stock SB3 DQN + snnrl_sb3.SpikingQPolicy)."""

    env_id: str = "CartPole-v1"
    preset: str = "zoo"  # rl-zoo3's ANN DQN settings for CartPole-v1 (50k steps), only the policy changed
    steps: int = 0  # total timesteps; 0: the preset's
    seeds: list[int] = field(default_factory=lambda: [0])
    policy: str = "spiking"  # "spiking" (SpikingQPolicy) or "ann" (SB3 MlpPolicy)
    policy_kwargs: str = "{}"  # JSON, extra SpikingQPolicy kwargs, e.g. '{"neuron": "lif", "num_steps": 8}'
    eval_freq: int = 2500  # steps between evaluations (0: only at the end)
    stop_at: float = 475.0  # stop once a greedy eval mean reaches this (CartPole-v1's threshold); 0: never
    eval_episodes: int = 10
    record: str = ""  # folder for per-run learning curves (JSON); empty: don't record
    tag: str = ""  # run name in the record (default: policy + kwargs)
    plot: str = ""  # only plot: read the JSON curves of this folder, write curves.png + table.md
    threads: int = 1  # torch threads (the CI/dev machine has 2 cores shared by several jobs)
    progress_bar: bool = True


HELP = {
    "preset": "hyperparameter preset: zoo = rl-zoo3's ANN DQN settings for CartPole-v1",
    "steps": "total timesteps (0: the preset's, 50k)",
    "seeds": "one training run per seed",
    "policy": "spiking (snnrl_sb3.SpikingQPolicy) or ann (SB3 MlpPolicy)",
    "policy_kwargs": 'JSON of extra policy kwargs, e.g. \'{"neuron": "lif", "num_steps": 8}\'',
    "eval_freq": "steps between greedy evaluations (0: only at the end)",
    "eval_episodes": "episodes per evaluation",
    "stop_at": "stop once an eval mean reaches this (0: train the whole budget)",
    "record": "folder for per-run learning curves (JSON)",
    "tag": "run name in the record (default: policy + kwargs)",
    "plot": "only plot: read the runs in this folder, write curves.png and table.md",
    "threads": "torch CPU threads",
    "progress_bar": "show SB3's progress bar (tqdm + rich)",
}


class CurveRecorder:
    """Evaluate every ``eval_freq`` steps (greedy, ``n`` episodes) and keep the curve."""

    def __init__(self, eval_env, eval_freq: int, n: int, stop_at: float = 0.0) -> None:
        from stable_baselines3.common.callbacks import BaseCallback

        recorder = self

        class _Callback(BaseCallback):
            def _on_step(self) -> bool:
                if eval_freq and self.num_timesteps % eval_freq == 0:
                    mean = recorder.evaluate(self.model, self.num_timesteps)
                    if stop_at and mean >= stop_at:
                        return False  # solved: stop training
                return True

        self.callback = _Callback()
        self.eval_env, self.n = eval_env, n
        self.curve: list[tuple[int, float, float]] = []

    def evaluate(self, model, timesteps: int) -> float:
        from stable_baselines3.common.evaluation import evaluate_policy

        mean, std = evaluate_policy(model, self.eval_env, n_eval_episodes=self.n, deterministic=True)
        self.curve.append((int(timesteps), float(mean), float(std)))
        return float(mean)


def train_one(args: Args, seed: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    from snnrl_sb3 import SpikingQPolicy

    torch.set_num_threads(args.threads)
    preset = dict(PRESETS[args.preset])
    steps = args.steps or preset.pop("steps")
    preset.pop("steps", None)
    net_arch = preset.pop("net_arch")
    extra = json.loads(args.policy_kwargs)
    if args.policy == "spiking":
        policy, policy_kwargs = SpikingQPolicy, {"net_arch": net_arch, **extra}
    elif args.policy == "ann":
        policy, policy_kwargs = "MlpPolicy", {"net_arch": net_arch, **extra}
    else:
        raise ValueError(f"--policy must be 'spiking' or 'ann', got {args.policy!r}")
    from stable_baselines3.common.monitor import Monitor

    env = gym.make(args.env_id)
    eval_env = Monitor(gym.make(args.env_id))
    eval_env.reset(seed=seed + 1000)
    model = DQN(policy, env, seed=seed, policy_kwargs=policy_kwargs, verbose=0, **preset)
    recorder = CurveRecorder(eval_env, args.eval_freq, args.eval_episodes, args.stop_at)
    start = time.perf_counter()
    model.learn(steps, callback=recorder.callback, progress_bar=args.progress_bar)
    seconds = time.perf_counter() - start
    if not recorder.curve or recorder.curve[-1][0] != model.num_timesteps:
        recorder.evaluate(model, model.num_timesteps)
    final = recorder.curve[-1][1]
    best = max(mean for _, mean, _ in recorder.curve)
    neg_thresholds = [round(m.neg.value.item(), 3) for m in model.policy.modules()
                      if getattr(m, "neg", None) is not None and hasattr(m.neg, "value")][:2]  # online net
    tag = args.tag or (args.policy + ("" if not extra else " " + json.dumps(extra, sort_keys=True)))
    return dict(tag=tag, seed=seed, preset=args.preset, steps=model.num_timesteps, budget=steps, policy_kwargs=policy_kwargs, final=final,
                best=best, seconds=seconds, curve=recorder.curve, neg_thresholds=neg_thresholds)


def plot(folder: str) -> None:
    """Write ``curves.png`` (mean eval return vs steps, one line per run) and ``table.md``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    if not runs:
        raise SystemExit(f"no *.json runs in {folder}")
    tags = sorted({r["tag"] for r in runs})
    fig, ax = plt.subplots(figsize=(7, 4), dpi=80)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = []
    for i, tag in enumerate(tags):
        mine = sorted((r for r in runs if r["tag"] == tag), key=lambda r: r["seed"])
        for j, r in enumerate(mine):
            steps, means = zip(*[(c[0], c[1]) for c in r["curve"]])
            ax.plot(steps, means, color=colors[i % len(colors)], ls=["-", "--", ":", "-."][j % 4],
                    label=f"{tag} s{r['seed']}" if len(tags) < 8 else (tag if j == 0 else None))
        bests = [r["best"] for r in mine]
        finals = [r["final"] for r in mine]
        solved = [next((f"{c[0] / 1000:g}k" for c in r["curve"] if c[1] >= 475), "-") for r in mine]
        rows.append(f"| {tag} | {', '.join(f'{b:.0f}' for b in bests)} | "
                    f"{', '.join(f'{v:.0f}' for v in finals)} | "
                    f"{sum(b >= 475 for b in bests)}/{len(bests)} | {', '.join(solved)} | "
                    f"{np.mean([r['seconds'] for r in mine]):.0f} s |")
    ax.axhline(475, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("greedy eval return (10 episodes)")
    ax.set_title(f"DQN on {runs[0].get('env_id', 'CartPole-v1')}")
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(Path(folder) / "curves.png")
    table = ["| run | best eval mean per seed | last eval mean per seed | best >= 475 | first >= 475 at | "
             "mean wall time |", "|---|---|---|---|---|---|", *rows]
    (Path(folder) / "table.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"wrote {Path(folder) / 'curves.png'} and table.md")


def main() -> None:
    args = parse_args(Args, helps=HELP)
    if args.plot:
        plot(args.plot)
        return
    if args.preset not in PRESETS:
        raise SystemExit(f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}")
    from snnrl_sb3.utils import tune_allocator

    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    for seed in args.seeds:
        result = train_one(args, seed)
        result["env_id"] = args.env_id
        print(f"{result['tag']} seed {seed}: eval return {result['final']:.1f} (best {result['best']:.1f}, "
              f"10 greedy episodes) after {result['steps']} steps in {result['seconds']:.0f} s; theta- {result['neg_thresholds']}")
        if args.record:
            os.makedirs(args.record, exist_ok=True)
            name = "".join(c if c.isalnum() else "_" for c in result["tag"]).strip("_")
            Path(args.record, f"{name}_seed{seed}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
