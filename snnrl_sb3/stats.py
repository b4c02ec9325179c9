"""Spike statistics: record the spike trains of a network's neurons and summarise them.

Recording uses forward hooks that exist only inside :func:`record_spikes`, so a network that
is not being watched pays nothing. Observing never changes what is observed: nothing here
touches parameters, train/eval mode or ``requires_grad``, and :func:`preserved_rng_state`
keeps every random number generator a forward pass could draw from where it was.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import Tensor, nn

from snnrl_sb3.kernels import MultiStepNeuron

if TYPE_CHECKING:
    from snnrl_sb3.body import SpikingNetwork

__all__ = ["SpikeStatsCallback", "record_spikes", "spike_statistics", "spiking_networks", "neg_thresholds",
           "preserved_rng_state"]


def _check_module(name: str, value: Any) -> None:
    if not isinstance(value, nn.Module):
        hint = "; for an SB3 model, pass its .policy" if isinstance(getattr(value, "policy", None), nn.Module) else ""
        raise TypeError(f"{name} must be a torch.nn.Module (an SB3 policy or a SpikingNetwork), "
                        f"got {type(value).__name__}{hint}")


def _generator_dicts(module: nn.Module) -> list[tuple[dict, dict[Any, torch.Generator]]]:
    """Every dict attribute of ``module``'s submodules with the generators it holds (e.g. the
    Bernoulli encoder's lazily built per-device generators; possibly none yet)."""
    return [(value, {k: g for k, g in value.items() if isinstance(g, torch.Generator)})
            for sub in module.modules() for value in vars(sub).values() if isinstance(value, dict)]


@contextlib.contextmanager
def preserved_rng_state(module: nn.Module | None = None) -> Iterator[None]:
    """Inside the block, draw random numbers freely: on exit the global Python, NumPy and torch
    (CPU, and CUDA devices holding ``module``'s tensors) RNG states are restored, and so are the
    generators owned by ``module``'s submodules, as attributes or in dict attributes (a generator
    built lazily inside the block is dropped again, so it is rebuilt from its seed later, as it
    would have been). Analysis run inside it cannot change a seeded training run."""
    generators: list[tuple[torch.Generator, torch.Tensor]] = []
    dicts: list[tuple[dict, dict[Any, torch.Generator]]] = []
    devices: list[int] = []
    if module is not None:
        dicts = _generator_dicts(module)
        held = [g for sub in module.modules() for g in vars(sub).values() if isinstance(g, torch.Generator)]
        held += [g for _, entries in dicts for g in entries.values()]
        generators = [(g, g.get_state()) for g in held]
        devices = sorted({t.device.index or 0 for t in [*module.parameters(), *module.buffers()]
                          if t.device.type == "cuda"})
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        for entries, before in dicts:
            for key in [k for k, g in entries.items() if isinstance(g, torch.Generator) and k not in before]:
                del entries[key]
            entries.update(before)
        for generator, state in generators:
            generator.set_state(state)


def spiking_networks(module: nn.Module) -> dict[str, SpikingNetwork]:
    """The spiking networks inside a policy (or the module itself), target networks excluded.

    A "spiking network" is any submodule whose direct children include a
    :class:`MultiStepNeuron` container (e.g. :class:`~snnrl_sb3.body.SpikingNetwork`).
    """
    from snnrl_sb3.body import SpikingNetwork

    _check_module("module", module)
    found = {name: m for name, m in module.named_modules() if isinstance(m, SpikingNetwork)}
    found = {name: m for name, m in found.items() if "target" not in name}
    if not found:
        raise ValueError(f"{type(module).__name__} contains no SpikingNetwork to analyse")
    return found


@contextlib.contextmanager
def record_spikes(module: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Inside the block, every :class:`MultiStepNeuron` of ``module`` stores its last output
    spikes ``[T, B, ...]`` (detached) in the yielded dict under its module name. The hooks only
    read: the module's state, its outputs and the RNGs are untouched, and they are removed on exit."""
    _check_module("module", module)
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
    * ``saturated``: fraction of neurons spiking in at least ``saturation`` of their slots,
      ``saturation`` in (0, 1].
    """
    from snnrl_sb3._validation import check_real

    if not isinstance(spikes, torch.Tensor):
        raise TypeError(f"spikes must be a torch.Tensor [T, B, ...], got {type(spikes).__name__}")
    if spikes.dim() < 3:
        raise ValueError(f"spikes must be [T, B, ...], got shape {tuple(spikes.shape)}")
    if spikes.numel() == 0:  # the means below would be NaN
        raise ValueError(f"spikes must hold at least one step, sample and neuron, got shape {tuple(spikes.shape)}")
    if spikes.is_floating_point() and not bool(torch.isfinite(spikes).all()):
        raise ValueError("spikes must be finite: it contains NaN or inf")
    check_real("saturation", saturation, low=0.0, high=1.0, low_inclusive=False)
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
        trainable = getattr(sub, "neg", None) is not None
        if isinstance(sub, MultiStepNeuron) and isinstance(value, torch.Tensor) and trainable:
            out[name] = float(value.detach())
    return out


def _neuron_layers(network: nn.Module) -> dict[str, str]:
    """Map neuron module names inside ``network`` to short labels ``L0``, ``L1``, ..."""
    names = [name for name, sub in network.named_modules() if isinstance(sub, MultiStepNeuron)]
    return {name: f"L{i}" for i, name in enumerate(names)}


class SpikeStatsCallback(BaseCallback):
    """Log per-layer spike statistics of a spiking policy through SB3's logger.

    Every ``log_freq`` environment steps it runs the policy on ``batch_size`` observations
    (sampled from the replay buffer when there is one, from the rollout being collected for
    on-policy algorithms, else the latest observations) and
    records, for each neuron layer ``L<i>`` of each spiking network, ``pos_rate``, ``neg_rate``,
    ``rate``, ``dead``, ``saturated`` and, for trainable ternary neurons, ``neg_thr``. Keys are
    ``spikes/<network>/<layer>/<stat>``, ``<network>`` being the last part of the network's
    module name (``q_net`` for the Q-networks, ``snn`` for the population actors, ``policy_net``
    and, with ``critic="spiking"``, ``value_net`` for the actor-critics), e.g.
    ``spikes/q_net/L0/pos_rate`` (at most 36 characters, TensorBoard and CSV friendly).
    Nothing is hooked between logging steps.

    Observing never changes the training run: replay samples are drawn with the callback's own
    ``numpy.random.Generator`` (seeded by ``seed``; SB3's ``buffer.sample`` would draw from the
    global NumPy RNG the algorithm itself uses; rollout samples likewise), and the policy runs
    with ``deterministic=True``, so stochastic encoders use their frozen noise instead of
    advancing their generator. As a
    safeguard the whole measurement runs inside :func:`preserved_rng_state`. The statistics are
    therefore those of greedy (deterministic) forward passes.

    :param log_freq: log every ``log_freq`` calls (environment steps), >= 1
    :param batch_size: observations per measurement, >= 1
    :param seed: seed of the callback's own sampling generator (``None``: fresh OS entropy)
    """

    def __init__(self, log_freq: int = 1000, batch_size: int = 256, verbose: int = 0, seed: int | None = 0) -> None:
        super().__init__(verbose)
        from snnrl_sb3._validation import check_int

        self.log_freq = check_int("log_freq", log_freq, low=1)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.seed = None if seed is None else check_int("seed", seed, low=0)
        self.rng = np.random.default_rng(self.seed)

    def _init_callback(self) -> None:
        spiking_networks(self.model.policy)  # fail at the start of learn(), not at the first logging step

    def _sample_buffer(self, buffer: Any) -> Any:
        """``batch_size`` observations of ``buffer`` drawn with :attr:`rng`, as SB3's ``sample`` would."""
        from stable_baselines3.common.buffers import ReplayBuffer

        env = getattr(self.model, "_vec_normalize_env", None)
        if not isinstance(buffer, ReplayBuffer):  # unknown layout: its own sample(), global RNGs restored after
            return buffer.sample(self.batch_size, env=env).observations
        n = self.batch_size
        if buffer.optimize_memory_usage and buffer.full:
            # obs and next_obs share one array: the transition starting at pos is invalid (SB3 skips it too)
            batch = (self.rng.integers(1, buffer.buffer_size, size=n) + buffer.pos) % buffer.buffer_size
        else:
            batch = self.rng.integers(0, buffer.buffer_size if buffer.full else buffer.pos, size=n)
        envs = self.rng.integers(0, buffer.n_envs, size=n)
        observations = buffer.observations
        if isinstance(observations, dict):
            obs = buffer._normalize_obs({k: v[batch, envs] for k, v in observations.items()}, env)
        else:
            obs = buffer._normalize_obs(observations[batch, envs], env)
        if isinstance(obs, dict):
            return {k: buffer.to_torch(v) for k, v in obs.items()}
        return buffer.to_torch(obs)

    def _sample_rollout(self, buffer: Any) -> Any:
        """``batch_size`` observations of the rollout being collected, drawn with :attr:`rng` (on-policy
        algorithms store the observations the policy saw, already normalised)."""
        batch = self.rng.integers(0, buffer.buffer_size if buffer.full else buffer.pos, size=self.batch_size)
        envs = self.rng.integers(0, buffer.n_envs, size=self.batch_size)
        observations = buffer.observations
        if isinstance(observations, dict):
            return {k: buffer.to_torch(v[batch, envs]) for k, v in observations.items()}
        return buffer.to_torch(observations[batch, envs])

    def _observations(self) -> Any:
        buffer = getattr(self.model, "replay_buffer", None)
        if buffer is not None and buffer.size() > 0:
            return self._sample_buffer(buffer)
        rollout = getattr(self.model, "rollout_buffer", None)
        # while a rollout is collected (not after get(), which flattens the arrays for training)
        if rollout is not None and (rollout.full or rollout.pos > 0) and not rollout.generator_ready:
            return self._sample_rollout(rollout)
        latest = self.locals.get("new_obs", getattr(self.model, "_last_obs", None))
        if latest is None:
            raise RuntimeError("SpikeStatsCallback has no observations yet: the replay buffer is empty and the model "
                               "has not stepped its environment")
        obs, _ = self.model.policy.obs_to_tensor(latest)
        return obs

    def collect(self) -> dict[str, float]:
        """Compute the statistics now and return them as a ``{key: value}`` dict."""
        if getattr(self, "model", None) is None:
            raise RuntimeError("SpikeStatsCallback.collect() needs a model: pass the callback to model.learn() "
                               "or call callback.init_callback(model) first")
        policy = self.model.policy
        values: dict[str, float] = {}
        with preserved_rng_state(policy):
            obs = self._observations()
            with torch.no_grad(), record_spikes(policy) as records:
                policy._predict(obs, deterministic=True)
                if isinstance(policy, (ActorCriticPolicy, MaskableActorCriticPolicy)):  # a spiking critic, too
                    policy.predict_values(obs)
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
