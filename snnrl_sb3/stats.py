"""Spike statistics: record the spike trains of a network's neurons and summarise them.

Recording uses forward hooks that exist only inside :func:`record_spikes`, so a network that
is not being watched pays nothing.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import Tensor, nn

from snnrl_sb3.multistep import MultiStepNeuron

__all__ = ["SpikeStatsCallback", "record_spikes", "spike_statistics", "spiking_networks", "neg_thresholds"]


def spiking_networks(module: nn.Module) -> dict[str, nn.Module]:
    """The spiking networks inside a policy (or the module itself), target networks excluded.

    A "spiking network" is any submodule whose direct children include a
    :class:`MultiStepNeuron` container (e.g. :class:`~snnrl_sb3.body.SpikingNetwork`).
    """
    from snnrl_sb3.body import SpikingNetwork

    found = {name: m for name, m in module.named_modules() if isinstance(m, SpikingNetwork)}
    found = {name: m for name, m in found.items() if "target" not in name}
    if not found:
        raise ValueError(f"{type(module).__name__} contains no SpikingNetwork to analyse")
    return found


@contextlib.contextmanager
def record_spikes(module: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Inside the block, every :class:`MultiStepNeuron` of ``module`` stores its last output
    spikes ``[T, B, ...]`` (detached) in the yielded dict under its module name."""
    records: dict[str, Tensor] = {}
    handles = []
    for name, sub in module.named_modules():
        if isinstance(sub, MultiStepNeuron):
            def hook(_m: nn.Module, _inp: tuple, out: Tensor, key: str = name) -> None:
                records[key] = out.detach()
            handles.append(sub.register_forward_hook(hook))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def spike_statistics(spikes: Tensor, saturation: float = 0.99) -> dict[str, float]:
    """Summary of one layer's spikes ``[T, B, ...]``.

    * ``pos_rate`` / ``neg_rate`` / ``rate``: fraction of (step, sample, neuron) slots with a
      +1 / -1 / any spike;
    * ``dead``: fraction of neurons that never spike over the batch and all steps;
    * ``saturated``: fraction of neurons spiking in at least ``saturation`` of their slots.
    """
    if spikes.dim() < 3:
        raise ValueError(f"spikes must be [T, B, ...], got shape {tuple(spikes.shape)}")
    active = spikes != 0
    per_neuron = active.float().mean(dim=(0, 1))
    return {
        "pos_rate": (spikes > 0).float().mean().item(),
        "neg_rate": (spikes < 0).float().mean().item(),
        "rate": active.float().mean().item(),
        "dead": (per_neuron == 0).float().mean().item(),
        "saturated": (per_neuron >= saturation).float().mean().item(),
    }


def neg_thresholds(module: nn.Module) -> dict[str, float]:
    """Current negative thresholds of the ternary neurons in ``module``, by module name."""
    out = {}
    for name, sub in module.named_modules():
        value = getattr(sub, "neg_threshold", None)
        if isinstance(sub, MultiStepNeuron) and isinstance(value, torch.Tensor) and getattr(sub, "neg", None) is not None:
            out[name] = float(value.detach())
    return out


def _neuron_layers(network: nn.Module) -> dict[str, str]:
    """Map neuron module names inside ``network`` to short labels ``L0``, ``L1``, ..."""
    names = [name for name, sub in network.named_modules() if isinstance(sub, MultiStepNeuron)]
    return {name: f"L{i}" for i, name in enumerate(names)}


class SpikeStatsCallback(BaseCallback):
    """Log per-layer spike statistics of a spiking policy through SB3's logger.

    Every ``log_freq`` environment steps it runs the policy on ``batch_size`` observations
    (sampled from the replay buffer when there is one, else the latest observations) and
    records, for each neuron layer ``L<i>`` of each spiking network (``q_net``, ``actor``, ...):
    ``pos_rate``, ``neg_rate``, ``rate``, ``dead``, ``saturated`` and, for trainable ternary
    neurons, ``neg_thr``. Keys look like ``spikes/q_net/L0/pos_rate`` (at most 36 characters,
    TensorBoard and CSV friendly). Nothing is hooked between logging steps.
    """

    def __init__(self, log_freq: int = 1000, batch_size: int = 256, verbose: int = 0) -> None:
        super().__init__(verbose)
        from snnrl_sb3._validation import check_int

        self.log_freq = check_int("log_freq", log_freq, low=1)
        self.batch_size = check_int("batch_size", batch_size, low=1)

    def _observations(self) -> torch.Tensor:
        buffer = getattr(self.model, "replay_buffer", None)
        if buffer is not None and buffer.size() > 0:
            return buffer.sample(self.batch_size, env=getattr(self.model, "_vec_normalize_env", None)).observations
        obs, _ = self.model.policy.obs_to_tensor(self.locals["new_obs"])
        return obs

    def collect(self) -> dict[str, float]:
        """Compute the statistics now and return them as a ``{key: value}`` dict."""
        policy = self.model.policy
        obs = self._observations()
        values: dict[str, float] = {}
        with torch.no_grad(), record_spikes(policy) as records:
            policy._predict(obs, deterministic=True)
        for net_name, net in spiking_networks(policy).items():
            short = net_name.split(".")[-1]
            labels = _neuron_layers(net)
            for layer_name, label in labels.items():
                full = f"{net_name}.{layer_name}"
                if full in records:
                    for stat, value in spike_statistics(records[full]).items():
                        values[f"spikes/{short}/{label}/{stat}"] = value
            for layer_name, value in neg_thresholds(net).items():
                values[f"spikes/{short}/{labels[layer_name]}/neg_thr"] = value
        return values

    def _on_step(self) -> bool:
        if self.n_calls % self.log_freq == 0:
            for key, value in self.collect().items():
                self.logger.record(key[:36], value)
        return True
