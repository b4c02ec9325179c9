r"""Export the spiking core of a policy to NIR (Neuromorphic Intermediate Representation).

What is exported: the synaptic layers (``Affine``, ``Conv2d``, ``Flatten``), the spiking neurons
and the read-out integrator, as one chain ``input -> ... -> output``. What stays on the host:
the encoder (the ``input`` node receives the encoded currents/spikes at every step; for a
population actor, the population spikes), the read-out statistic (max/mean/last over time) or
the population decoder (rates, weighted sum), SB3's observation preprocessing, and the
``argmax`` (DQN) or ``tanh``/rescaling (actors).

Discrete-time parameters map to NIR's continuous ones as snnTorch's own exporter does, with
``dt = 1e-4``: :math:`\tau = dt/(1-\beta)`, :math:`R = \tau/dt`, so one Euler step of NIR's
equation is :math:`U_t = \beta U_{t-1} + I_t`. NIR's neurons reset to ``v_reset``: the LIF
neuron with ``reset="zero"`` (and Pop-SAN's current LIF) is written exactly. NIR has no
subtractive reset, so a network with the default ``reset="subtract"`` is refused unless the caller
asks for the approximation (``approximate=True``: written with ``v_reset = 0``, as snnTorch's own
exporter does, with a warning: it is a different network). Ternary neurons have no NIR
counterpart: exporting them raises :class:`NotImplementedError` rather than writing a binary
neuron that would silently compute something else.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snnrl_sb3._validation import check_bool
from snnrl_sb3.body import SpikingNetwork
from snnrl_sb3.coding import Readout
from snnrl_sb3.kernels import MultiStepCurrentLeaky, MultiStepLeaky, MultiStepNeuron
from snnrl_sb3.stats import _check_module, spiking_networks

__all__ = ["export_nir", "DT"]

DT = 1e-4


def _arr(value: float | torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, float(value), dtype=np.float32)


def _tau(decay: float, name: str) -> float:
    if decay >= 1.0:  # no leak: tau would be infinite
        raise NotImplementedError(f"{name}=1.0 (no decay) has no finite NIR time constant; use a decay < 1")
    return DT / (1.0 - decay)


def _neuron_node(neuron: nn.Module, shape: tuple[int, ...], approximate: bool = False) -> Any:
    import nir

    if isinstance(neuron, MultiStepLeaky):
        if neuron.ternary:
            raise NotImplementedError(
                "NIR has no ternary (-1/0/+1) neuron, so a network with ternary neurons cannot be exported; "
                "writing it as a binary LIF would silently change what it computes. Use neuron='lif' to export.")
        if getattr(neuron, "reset", "subtract") == "subtract":
            if not approximate:
                raise NotImplementedError(
                    "NIR has no subtractive reset: this LIF neuron (reset='subtract', the default) would be written as "
                    "one that resets to zero, a different network. Train with neuron_kwargs={'reset': 'zero'} to "
                    "export exactly, or pass approximate=True to export the approximation anyway")
            warnings.warn("export_nir(approximate=True): subtractive-reset LIF neurons are written with v_reset=0; "
                          "the exported network computes something else than the policy", UserWarning, stacklevel=4)
        if getattr(neuron, "fire", "gt") != "gt":
            raise NotImplementedError("only LIF neurons firing on U > threshold (fire='gt') are exported")
        if neuron.beta == 1.0:
            return nir.IF(r=_arr(1.0 / DT, shape), v_threshold=_arr(neuron.threshold, shape), v_reset=_arr(0.0, shape))
        tau = _tau(neuron.beta, "beta")
        return nir.LIF(tau=_arr(tau, shape), r=_arr(tau / DT, shape), v_leak=_arr(0.0, shape),
                       v_threshold=_arr(neuron.threshold, shape), v_reset=_arr(0.0, shape))
    if isinstance(neuron, MultiStepCurrentLeaky):
        tau_syn, tau_mem = _tau(neuron.current_decay, "current_decay"), _tau(neuron.volt_decay, "volt_decay")
        return nir.CubaLIF(tau_syn=_arr(tau_syn, shape), tau_mem=_arr(tau_mem, shape), r=_arr(tau_mem / DT, shape),
                           v_leak=_arr(0.0, shape), v_threshold=_arr(neuron.threshold, shape),
                           v_reset=_arr(0.0, shape), w_in=_arr(tau_syn / DT, shape))
    raise NotImplementedError(f"no NIR node for neuron type {type(neuron).__name__}")


def _synapse_node(layer: nn.Linear | nn.Conv2d, in_shape: tuple[int, ...]) -> Any:
    import nir

    weight = layer.weight.detach().cpu().numpy()
    bias = (layer.bias.detach().cpu().numpy() if layer.bias is not None
            else np.zeros(weight.shape[0], dtype=np.float32))
    if isinstance(layer, nn.Linear):
        return nir.Affine(weight=weight, bias=bias)
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=weight, stride=layer.stride, padding=layer.padding,
                      dilation=layer.dilation, groups=layer.groups, bias=bias)


def _first_synapse(network: SpikingNetwork) -> tuple[str, nn.Linear | nn.Conv2d]:
    first = next(((name, m) for name, m in network.core() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
    if first is None:
        raise ValueError("the spiking network has no synaptic (Linear/Conv2d) layer to export")
    return first


def _check_input_shape(network: SpikingNetwork, input_shape: Any) -> tuple[int, ...]:
    """``input_shape`` as a tuple of ints, checked against what the first synaptic layer takes."""
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) for d in input_shape):
        raise TypeError(f"input_shape must be a tuple of ints (the per-sample input shape), got {input_shape!r}")
    shape = tuple(int(d) for d in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints, got {shape}")
    name, first = _first_synapse(network)
    if isinstance(first, nn.Linear) and shape != (first.in_features,):
        raise ValueError(f"input_shape must be ({first.in_features},) for this network (its first synaptic layer, "
                         f"{name}, takes {first.in_features} input features), got {shape}")
    if isinstance(first, nn.Conv2d) and (len(shape) != 3 or shape[0] != first.in_channels):
        raise ValueError(f"input_shape must be (channels, height, width) with {first.in_channels} channels for this "
                         f"network (its first layer, {name}, is a Conv2d with in_channels={first.in_channels}), "
                         f"got {shape}")
    return shape


def _network_graph(network: SpikingNetwork, input_shape: tuple[int, ...], approximate: bool = False) -> Any:
    if type(network).spike_trains is not SpikingNetwork.spike_trains:
        raise NotImplementedError(f"{type(network).__name__} runs its layers on another schedule than a plain "
                                  "SpikingNetwork (e.g. convert_dqn's layer_delay); its NIR graph would compute a "
                                  "different network")
    import nir

    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    order = ["input"]
    device = next((p.device for p in network.parameters()), torch.device("cpu"))
    probe = torch.zeros(1, *input_shape, device=device)  # traces the per-layer shapes
    for name, layer in network.core():
        key = name.replace(".", "_")
        shape = tuple(probe.shape[1:])
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            if isinstance(layer, nn.Linear) and shape != (layer.in_features,):
                raise ValueError(f"input_shape {input_shape} does not fit the network: layer {name} takes "
                                 f"{layer.in_features} features but gets shape {shape}")
            nodes[key] = _synapse_node(layer, shape)
            try:
                with torch.no_grad():
                    probe = layer(probe)
            except RuntimeError as error:  # e.g. an image smaller than the kernel
                raise ValueError(f"input_shape {input_shape} does not fit the network at layer {name}: "
                                 f"{error}") from None
        elif isinstance(layer, nn.Flatten):
            nodes[key] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=layer.start_dim - 1,
                                     end_dim=layer.end_dim if layer.end_dim < 0 else layer.end_dim - 1)
            probe = layer(probe)
        elif isinstance(layer, MultiStepNeuron):
            nodes[key] = _neuron_node(layer, shape, approximate)
        else:
            raise NotImplementedError(f"no NIR node for layer {name} of type {type(layer).__name__}")
        order.append(key)
    readout = network.readout
    decoder = "none"
    if isinstance(readout, Readout):
        nodes["readout_linear"] = _synapse_node(readout.linear, tuple(probe.shape))
        out = (readout.linear.out_features,)
        scale = readout.input_scale  # U = beta U + scale I: the input resistance carries the scale
        if readout.mode in ("spike_count", "current_sum") or readout.beta == 1.0:
            # a pure integrator: the host reads its final value (and divides it by T for spike_count)
            nodes["readout"] = nir.I(r=_arr(scale / DT, out))
        else:
            tau = _tau(readout.beta, "readout beta")
            nodes["readout"] = nir.LI(tau=_arr(tau, out), r=_arr(scale * tau / DT, out), v_leak=_arr(0.0, out))
        order += ["readout_linear", "readout"]
        probe = torch.zeros(1, *out)
        decoder = readout.mode
    elif readout is not None:
        if network.readout_synapses():
            raise NotImplementedError(f"no NIR nodes for read-out type {type(readout).__name__}")
        decoder = f"{type(readout).__name__} (host-side, on the output spikes)"  # e.g. a population decoder
    nodes["output"] = nir.Output(output_type={"output": np.array(probe.shape[1:])})
    order.append("output")
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(order)),
                        metadata={"num_steps": network.num_steps, "encoder": type(network.encoder).__name__,
                                  "decoder": decoder, "exporter": "snnrl_sb3"})


def export_nir(model: nn.Module, path: str | Path | None = None, *, input_shape: tuple[int, ...] | None = None,
               approximate: bool = False) -> Any:
    """Export the spiking network of a policy (or a SpikingNetwork) to a ``nir.NIRGraph``.

    :param model: an SB3 policy holding exactly one spiking network outside its target
        networks (a Q-network or an actor), or a :class:`~snnrl_sb3.body.SpikingNetwork`
    :param path: if given, the graph is also written there with ``nir.write``
    :param input_shape: per-sample input shape of the spiking core (what the first synaptic layer
        takes: ``(in_features,)`` for a Linear layer, ``(channels, height, width)`` for a Conv2d);
        inferred when omitted, required for convolutional inputs
    :param approximate: write subtractive-reset LIF neurons as NIR's reset-to-zero LIF (a different
        network, with a warning) instead of refusing them
    :raises ValueError: for an ``input_shape`` the network cannot take
    :raises NotImplementedError: for ternary neurons (NIR has no ternary neuron), subtractive-reset
        LIF neurons without ``approximate=True`` (NIR has no subtractive reset) and layers
        without a NIR counterpart
    """
    import nir

    if path is not None and not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str, a pathlib.Path or None, got {type(path).__name__}")
    _check_module("model", model)
    networks = spiking_networks(model)
    if len(networks) != 1:
        raise ValueError(f"export_nir needs exactly one spiking network, found {sorted(networks)}; "
                         "pass the one to export")
    network = next(iter(networks.values()))
    if input_shape is None:
        _, first = _first_synapse(network)
        if isinstance(first, nn.Conv2d):
            raise ValueError(f"input_shape is required for a convolutional network: (channels={first.in_channels}, "
                             "height, width), e.g. (4, 84, 84)")
        input_shape = (first.in_features,)
    graph = _network_graph(network, _check_input_shape(network, input_shape), check_bool("approximate", approximate))
    if path is not None:
        nir.write(str(path), graph)
    return graph
