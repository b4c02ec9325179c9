"""How much torch's intra-op threads cost a small SB3 training on this machine, as a ratio.

Run ``python -m snnrl_sb3.benchmarks.threads``. It trains the README's usage snippet (stock SB3
``DQN`` with ``SpikingQPolicy(net_arch=[256, 256], num_steps=8)`` on CartPole-v1, SB3's default
hyperparameters) for ``--total-timesteps`` steps twice, each in a fresh process: once with torch's
default thread count and once after ``torch.set_num_threads(1)``, and prints the env-steps/s of
both and their ratio; ``--parallel N`` runs N such trainings at once, as several seeds or jobs
sharing the machine do. Threads only help while cores are free: once other processes compete for
them, torch's threads wait on each other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_RUN = """
import json, sys, time, torch
from stable_baselines3 import DQN
from snnrl_sb3 import SpikingQPolicy
threads, steps, policy = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if threads:
    torch.set_num_threads(threads)
kwargs = dict(net_arch=[256, 256], num_steps=8) if policy == "spiking" else dict(net_arch=[256, 256])
model = DQN(SpikingQPolicy if policy == "spiking" else "MlpPolicy", "CartPole-v1", policy_kwargs=kwargs, seed=0)
start = time.perf_counter()
model.learn(steps)
print("RESULT" + json.dumps({"threads": torch.get_num_threads(), "steps_per_s": steps / (time.perf_counter() - start)}))
"""


def measure(threads: int, total_timesteps: int, policy: str, parallel: int = 1) -> dict[str, float]:
    """Mean env-steps/s of ``parallel`` fresh-process trainings run at once (``threads=0``: torch's default)."""
    procs = [subprocess.Popen([sys.executable, "-c", _RUN, str(threads), str(total_timesteps), policy],
                              stdout=subprocess.PIPE, text=True) for _ in range(parallel)]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"the timed training failed (exit {proc.returncode})")
        results.append(json.loads(out.split("RESULT", 1)[1]))
    return {"threads": results[0]["threads"], "steps_per_s": sum(r["steps_per_s"] for r in results) / parallel}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-timesteps", type=int, default=5000, help="environment steps per training (5000)")
    parser.add_argument("--policy", choices=["spiking", "ann"], default="spiking",
                        help="the README's spiking policy, or SB3's MlpPolicy of the same widths (spiking)")
    parser.add_argument("--parallel", type=int, default=1,
                        help="trainings run at once, as when several seeds or jobs share the machine (1)")
    args = parser.parse_args(argv)
    default = measure(0, args.total_timesteps, args.policy, args.parallel)
    one = measure(1, args.total_timesteps, args.policy, args.parallel)
    print(f"{args.policy} DQN on CartPole-v1, {args.total_timesteps} steps, {args.parallel} training(s) at once "
          f"(env-steps/s of each):")
    print(f"  torch default ({default['threads']} threads): {default['steps_per_s']:.0f} env-steps/s")
    print(f"  torch.set_num_threads(1):            {one['steps_per_s']:.0f} env-steps/s")
    print(f"  one thread is {one['steps_per_s'] / default['steps_per_s']:.2f}x the default's speed")


if __name__ == "__main__":
    main()
