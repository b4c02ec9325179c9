r"""Operation counts and a 45 nm energy estimate for spiking networks against same-shape ANNs.

Counting rules (per sample, averaged over the observations given):

* a synaptic layer fed by spikes costs one *accumulate* (SynOp) per non-zero input spike per
  outgoing synapse, at every step: ternary ±1 spikes are both non-zeros (a subtract is an
  accumulate);
* a synaptic layer fed by real values costs one multiply-accumulate (MAC) per synapse. With
  direct coding the input is the same at every step, so that layer's current is computed once
  (as this library does) and counted once;
* the same-shape ANN costs one MAC per synapse of every layer, once;
* shape-only layers (``Flatten``, ``Unflatten``, ``Identity``) are free; any other layer in the
  spiking core raises :class:`NotImplementedError` rather than being counted as free.

Energy uses Horowitz (ISSCC 2014) 45 nm figures: 0.9 pJ per 32-bit float add (accumulate) and
4.6 pJ per 32-bit float multiply-accumulate (3.7 pJ multiply + 0.9 pJ add). Memory traffic,
neuron state updates and the host-side encoder/decoder are ignored, as in most SNN papers, so
the numbers compare arithmetic only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_observations
from snnrl_sb3.kernels import MultiStepNeuron
from snnrl_sb3.stats import _check_module, preserved_rng_state, record_spikes, spiking_networks

if TYPE_CHECKING:
    from snnrl_sb3.body import SpikingNetwork

__all__ = ["estimate_energy", "PJ_PER_AC", "PJ_PER_MAC"]

PJ_PER_AC = 0.9
PJ_PER_MAC = 4.6
#: Layers that only move values around (no arithmetic to count).
_SHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity)


def _synapse_count(layer: nn.Linear | nn.Conv2d, mask: Tensor) -> float:
    """Sum over the batch of synapses driven by the non-zero entries of ``mask`` ([N, ...])."""
    ones = torch.ones_like(layer.weight)
    if isinstance(layer, nn.Linear):
        return F.linear(mask, ones).sum().item()
    if isinstance(layer, nn.Conv2d):
        return F.conv2d(mask, ones, None, layer.stride, layer.padding, layer.dilation, layer.groups).sum().item()
    raise NotImplementedError(f"no operation count for layer type {type(layer).__name__}")


def _count_network(network: SpikingNetwork, inputs: Tensor) -> list[dict[str, Any]]:
    """Per-layer SynOps and MACs per sample for one SpikingNetwork on ``inputs``."""
    batch = inputs.shape[0]
    steps = network.num_steps
    with torch.no_grad(), record_spikes(network) as spikes:
        current = network.encoder.spikes(inputs, steps, True)
        network(inputs, deterministic=True)
    static = network.encoder.static and network.encoder.synapse is None
    # analog population input (MDC-SAN): real values, the same at every step, so its synapse runs once as MACs
    analog = not static and not getattr(network.encoder, "emits_spikes", True)
    is_spikes = not static and not analog
    rows: list[dict[str, Any]] = []
    last_spikes: Tensor | None = None

    def count(name: str, layer: nn.Linear | nn.Conv2d, current: Tensor, is_spikes: bool, static: bool,
              once: bool = False) -> None:
        folded = current if static else current.flatten(0, 1)
        dense = _synapse_count(layer, torch.ones_like(folded[:1]))  # synapses per sample per step
        if is_spikes:
            synops = _synapse_count(layer, (folded != 0).to(folded.dtype)) / batch
            rows.append({"layer": name, "synops": synops, "macs": 0.0, "ann_macs": dense})
        else:
            macs = dense if static or once else dense * steps
            rows.append({"layer": name, "synops": 0.0, "macs": macs, "ann_macs": dense})

    def run(layer: nn.Module, current: Tensor, static: bool) -> Tensor:
        with torch.no_grad():
            return layer(current) if static else layer(current.flatten(0, 1)).unflatten(0, (steps, -1))

    for name, layer in network.core():
        if isinstance(layer, MultiStepNeuron):
            current = last_spikes = spikes[name]
            is_spikes, static = True, False
        elif isinstance(layer, (nn.Linear, nn.Conv2d)):
            count(name, layer, current, is_spikes, static, once=analog)
            # a synapse outputs real-valued currents: a synapse right after it is a MAC layer
            current, is_spikes, analog = run(layer, current, static), False, False
        elif isinstance(layer, _SHAPE_ONLY):
            current = run(layer, current, static)
        else:  # counting it as free would understate the SNN's cost
            raise NotImplementedError(f"no operation count for layer {name} of type {type(layer).__name__}")
    for name, layer in network.readout_synapses():
        if last_spikes is None:  # nothing spiking feeds the read-out
            raise ValueError("SpikingNetwork has no spiking neuron layer")
        count(name, layer, last_spikes, True, False)
    return rows


def estimate_energy(model: nn.Module, observations: Any, *, verbose: bool = True) -> dict[str, Any]:
    """Count operations of a spiking policy (or :class:`~snnrl_sb3.body.SpikingNetwork`) on
    ``observations`` and estimate its energy against the same-shape ANN.

    :param model: an SB3 policy containing spiking networks (target networks are skipped), or
        a SpikingNetwork (then ``observations`` are its direct inputs)
    :param observations: a batch of observations (array or tensor)
    :param verbose: print a short report
    :return: ``{"layers": [...], "synops", "macs", "ann_macs", "energy_pj", "ann_energy_pj",
        "energy_ratio"}``, all per sample (per decision)
    :raises ValueError: for empty or non-finite ``observations``, or ones that do not fit the network

    Side-effect free: the networks run with ``deterministic=True`` inside
    :func:`~snnrl_sb3.stats.preserved_rng_state`, and their parameters, train/eval mode and
    ``requires_grad`` are left as they were.
    """
    from snnrl_sb3.body import SpikingNetwork

    _check_module("model", model)
    check_bool("verbose", verbose)
    spiking_networks(model)  # TypeError/ValueError for anything that is not a spiking policy or network
    direct = isinstance(model, SpikingNetwork)
    check_observations("observations", observations, batched=direct)
    networks: dict[str, SpikingNetwork]
    with preserved_rng_state(model):
        if isinstance(model, SpikingNetwork):
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            inputs = {"network": torch.as_tensor(np.asarray(observations) if not isinstance(observations, Tensor)
                                                  else observations, dtype=torch.float32, device=device)}
            networks = {"network": model}
        elif isinstance(model, BasePolicy):
            networks = spiking_networks(model)
            captured: dict[str, Tensor] = {}
            handles = [net.register_forward_pre_hook(lambda _m, args, key=name: captured.__setitem__(
                key, args[0].detach())) for name, net in networks.items()]
            try:
                obs, _ = model.obs_to_tensor(observations)
                with torch.no_grad():
                    model._predict(obs, deterministic=True)
                    if isinstance(model, (ActorCriticPolicy, MaskableActorCriticPolicy)):  # a spiking critic, too
                        model.predict_values(obs)
            finally:
                for handle in handles:
                    handle.remove()
            inputs = captured
        else:  # a module holding spiking networks but no policy forward pass to run them with
            raise TypeError(f"model must be an SB3 policy or a SpikingNetwork, got {type(model).__name__}")
        rows = []
        for name, net in networks.items():
            if name not in inputs:
                raise ValueError(f"spiking network {name!r} was not run by the policy's forward pass")
            try:
                counted = _count_network(net, inputs[name])
            except NotImplementedError:  # a RuntimeError too, but not the caller's input
                raise
            except RuntimeError as error:  # shape mismatch deep inside torch: say which argument is wrong
                raise ValueError(f"observations of shape {tuple(inputs[name].shape)} do not fit spiking network "
                                 f"{name!r}: {error}") from error
            rows += [dict(row, layer=f"{name}.{row['layer']}") for row in counted]
    synops = sum(r["synops"] for r in rows)
    macs = sum(r["macs"] for r in rows)
    ann_macs = sum(r["ann_macs"] for r in rows)
    energy = synops * PJ_PER_AC + macs * PJ_PER_MAC
    ann_energy = ann_macs * PJ_PER_MAC
    report = {"layers": rows, "synops": synops, "macs": macs, "ann_macs": ann_macs, "energy_pj": energy,
              "ann_energy_pj": ann_energy, "energy_ratio": energy / ann_energy if ann_energy else float("nan")}
    if verbose:
        print(format_energy_report(report))
    return report


def format_energy_report(report: dict[str, Any]) -> str:
    """A short text table of :func:`estimate_energy`'s result."""
    lines = [f"{'layer':<28} {'SynOps':>12} {'MACs':>12} {'ANN MACs':>12}"]
    for r in report["layers"]:
        lines.append(f"{r['layer']:<28} {r['synops']:>12.4g} {r['macs']:>12.4g} {r['ann_macs']:>12.4g}")
    lines.append(f"{'total':<28} {report['synops']:>12.4g} {report['macs']:>12.4g} {report['ann_macs']:>12.4g}")
    lines.append(f"energy per decision (45 nm, arithmetic only): SNN {report['energy_pj'] / 1e3:.4g} nJ, "
                 f"ANN {report['ann_energy_pj'] / 1e3:.4g} nJ, ratio {report['energy_ratio']:.3g}")
    return "\n".join(lines)
