r"""Export the spiking core of a policy to NIR (Neuromorphic Intermediate Representation).

**What is exported**: the synaptic layers (``Affine``, ``Conv2d``, ``Flatten``) and the spiking
neurons, as one chain ``input -> ... -> output``. What stays on the host: SB3's observation
preprocessing, the encoder (the ``input`` node receives the encoded currents/spikes at every step;
for a population actor, the population spikes), the read-out's integration and statistic (see
below), and the ``argmax`` (DQN) or SB3's action rescaling (actors).

**Read-out.** No released importer reads NIR's integrator nodes (``LI``, ``I``), so by default
(``host_readout=True``) the graph ends with the read-out's *synapse*: at every step the ``output``
node carries the output currents :math:`I_t = W s_t + b`, and the host integrates them,
:func:`host_readout`: ``spike_count`` their mean over the ``T`` steps, ``current_sum`` their sum,
the membrane modes :math:`U_t = \beta U_{t-1} + \alpha I_t` and then its max/mean/last. For a
population actor the ``output`` node carries the output-population spikes and the host decodes
them (firing rates, the decoder's weighted sum, ``tanh``). ``host_readout=False`` writes the
integrator into the graph instead (``LI`` or ``I``), for a simulator that reads those.

**Metadata.** Everything the host side needs is in ``graph.metadata`` (flat, so it survives
``nir.write``/``nir.read``): ``dt``, ``num_steps`` (``T``), ``encoder`` and its parameters,
``readout`` (the statistic) with ``readout_beta`` and ``readout_input_scale``, the population
decoder's ``decoder_weight``/``decoder_bias``/``decoder_squash``, ``host_readout`` and ``target``.

**Neurons.** Discrete-time parameters map to NIR's continuous ones as snnTorch's own exporter does,
with ``dt = 1e-4``: :math:`\tau = dt/(1-\beta)`, :math:`R = \tau/dt`, so one Euler step of NIR's
equation is :math:`U_t = \beta U_{t-1} + I_t`; the float32 :math:`\tau` is chosen so that
:math:`1 - dt/\tau` evaluated in float32 (as snnTorch's importer does) is the neuron's
:math:`\beta` exactly. NIR's neurons reset to ``v_reset`` and fire on :math:`v > v_{th}`: the LIF
neuron with ``reset="zero"``, ``fire="gt"`` (and Pop-SAN's current LIF) is written exactly. NIR has
no subtractive reset and no ternary neuron: such networks are refused unless the caller asks for
the approximation (``approximate=True``: written as zero-reset binary LIF neurons, the ternary
ones keeping only their positive threshold, with a warning; with ``observations`` the warning and
the metadata say how often the exported network still takes the agent's action).

**Targets.** ``target`` adapts the graph to one importer's reading of NIR (an equivalent NIR
parametrisation), or refuses what that importer would run as another network:

* ``"snntorch"`` (``snntorch.import_nir.import_from_nir``, 1.0.0: hard-coded ``dt = 1e-4``, LIF
  as a zero-reset ``Leaky``): refuses integrate-and-fire neurons (:math:`\beta = 1`), which it
  imports as leaky neurons with :math:`\beta = 0.9` (and only with ``r = 1``);
* ``"norse"`` (``norse.torch.from_nir(graph, dt=1e-4)``, 1.1.0): its LIF ignores ``r`` (takes
  ``r = 1``), so LIF neurons are written with ``r = 1`` and the threshold scaled by
  :math:`dt/\tau = 1 - \beta` (the same network: the membrane is scaled by :math:`1 - \beta`);
* ``"spikingjelly"`` (``spikingjelly.activation_based.nir_exchange.import_from_nir``, 2.0).

snnTorch's and norse's importers also apply a ``Flatten`` node's dims to the *batched* tensor (NIR's
dims exclude the batch axis; no upstream issue found): for these two targets the dims are written
as torch's own (``start_dim=1``), a graph that NIR's type check rejects, so it is built and must be
read with ``type_check=False`` (``nir.read(path, type_check=False)``).

All three refuse ``host_readout=False`` (none reads ``LI``/``I``). :func:`snnrl_sb3.verify_nir`
runs the exported graph in each of them and compares it with the agent.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_choice
from snnrl_sb3.body import SpikingNetwork
from snnrl_sb3.coding import BernoulliEncoder, Readout
from snnrl_sb3.kernels import MultiStepCurrentLeaky, MultiStepLeaky, MultiStepNeuron, decay_matrix
from snnrl_sb3.stats import _check_module, spiking_networks

__all__ = ["export_nir", "host_readout", "as_exported", "DT", "TARGETS", "BATCHED_FLATTEN"]

DT = 1e-4

#: Importers ``export_nir(target=...)`` adapts the graph to (and :func:`snnrl_sb3.verify_nir` runs).
TARGETS = ("snntorch", "norse", "spikingjelly")
#: Importers that build ``torch.nn.Flatten(start_dim, end_dim)`` from NIR's dims as they are, on batched
#: tensors (snnTorch 1.0.0, norse 1.1.0; no upstream issue found): for them the dims are written shifted by one.
BATCHED_FLATTEN = ("snntorch", "norse")


def _arr(value: float | torch.Tensor | np.floating, shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, float(value), dtype=np.float32)


def _tau(decay: float, name: str) -> np.float32:
    r"""The float32 :math:`\tau` closest to :math:`dt/(1 - d)` whose float32 :math:`1 - dt/\tau` is
    ``float32(d)`` (what snnTorch's importer computes), if one lies within a few ulps."""
    if decay >= 1.0:  # no leak: tau would be infinite
        raise NotImplementedError(f"{name}=1.0 (no decay) has no finite NIR time constant; use a decay < 1")
    target, dt = np.float32(decay), np.float32(DT)
    start = np.float32(DT / (1.0 - float(target)))
    up = down = start
    for _ in range(64):
        for tau in (up, down):
            if np.float32(1.0) - dt / tau == target:
                return tau
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(0.0))
    return start  # no float32 tau reproduces it exactly: the nearest one (the importer's decay is 1 ulp off)


def _check_exactness(neuron: MultiStepLeaky, approximate: bool) -> str | None:
    """Why the neuron has no exact NIR counterpart (``None``: it has one); raises unless ``approximate``."""
    if neuron.ternary:
        cause = ("NIR has no ternary (-1/0/+1) neuron, so a network with ternary neurons cannot be exported exactly; "
                 "writing it as a binary LIF would silently change what it computes. Use neuron='lif' with "
                 "neuron_kwargs={'reset': 'zero'} to export exactly, or pass approximate=True to export the "
                 "approximation (binary zero-reset LIF neurons with the positive threshold) anyway")
    elif neuron.reset == "subtract":
        cause = ("NIR has no subtractive reset: this LIF neuron (reset='subtract', the default) would be written as "
                 "one that resets to zero, a different network. Train with neuron_kwargs={'reset': 'zero'} to "
                 "export exactly, or pass approximate=True to export the approximation anyway")
    else:
        return None
    if not approximate:
        raise NotImplementedError(cause)
    return "ternary" if neuron.ternary else "subtractive reset"


def _neuron_node(neuron: nn.Module, shape: tuple[int, ...], approximate: bool = False,
                 target: str | None = None) -> Any:
    import nir

    if isinstance(neuron, MultiStepLeaky):
        _check_exactness(neuron, approximate)
        if neuron.fire != "gt":
            raise NotImplementedError("only LIF neurons firing on U > threshold (fire='gt') are exported: NIR's "
                                      "neurons fire on v > v_threshold")
        threshold, zero = _arr(neuron.threshold, shape), _arr(0.0, shape)
        if neuron.beta == 1.0:
            if target == "snntorch":
                raise NotImplementedError(
                    "snnTorch 1.0.0's import_from_nir imports NIR's IF neuron as a leaky neuron with beta=0.9 (and "
                    "only with r=1), another network (snnTorch issue #416, fixed by #452 after 1.0.0): an "
                    "integrate-and-fire network (beta=1.0) cannot be deployed through it; use target='norse' or "
                    "'spikingjelly', or a decay beta < 1")
            return nir.IF(r=_arr(1.0 / DT, shape), v_threshold=threshold, v_reset=zero)
        tau = _tau(neuron.beta, "beta")
        if target == "norse":  # norse takes r = 1: the same network with the membrane scaled by dt/tau
            scale = np.float32(DT) / tau
            return nir.LIF(tau=_arr(tau, shape), r=_arr(1.0, shape), v_leak=zero,
                           v_threshold=threshold * scale, v_reset=zero)
        return nir.LIF(tau=_arr(tau, shape), r=_arr(tau / np.float32(DT), shape), v_leak=zero,
                       v_threshold=threshold, v_reset=zero)
    if isinstance(neuron, MultiStepCurrentLeaky):
        tau_syn, tau_mem = _tau(neuron.current_decay, "current_decay"), _tau(neuron.volt_decay, "volt_decay")
        dt = np.float32(DT)
        return nir.CubaLIF(tau_syn=_arr(tau_syn, shape), tau_mem=_arr(tau_mem, shape), r=_arr(tau_mem / dt, shape),
                           v_leak=_arr(0.0, shape), v_threshold=_arr(neuron.threshold, shape),
                           v_reset=_arr(0.0, shape), w_in=_arr(tau_syn / dt, shape))
    raise NotImplementedError(f"no NIR node for neuron type {type(neuron).__name__}")


def as_exported(network: SpikingNetwork) -> SpikingNetwork:
    """The network ``export_nir(network, approximate=True)`` writes, in this library's kernels: the
    network itself when it exports exactly, else a copy whose subtractive-reset and ternary neurons
    are zero-reset binary LIF neurons (same decay, the positive threshold)."""
    replace = {i for i, layer in enumerate(network.layers)
               if isinstance(layer, MultiStepLeaky) and _check_exactness(layer, True) is not None}
    if not replace:
        return network
    exported = copy.deepcopy(network, memo={id(network.encoder): network.encoder})  # one encoder, one noise
    for i in replace:
        old = network.layers[i]
        assert isinstance(old, MultiStepLeaky)
        exported.layers[i] = MultiStepLeaky(old.beta, old.threshold, reset="zero", fire=old.fire,
                                            surrogate=old.surrogate, backend=old.backend)
    return exported


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


def _encoder_metadata(network: SpikingNetwork) -> dict[str, Any]:
    from snnrl_sb3.population import PopulationInput

    encoder = network.encoder
    meta: dict[str, Any] = {"encoder": type(encoder).__name__}
    if isinstance(encoder, PopulationInput):  # the host computes the population spikes
        population = encoder.encoder
        meta.update(encoder="PopulationEncoder", encoder_spikes=population.spike_mode,
                    encoder_threshold=population.threshold,
                    encoder_mean=population.mean.detach().cpu().numpy(),
                    encoder_std=population.std.detach().cpu().numpy())
        bernoulli = population.bernoulli
    else:
        bernoulli = encoder if isinstance(encoder, BernoulliEncoder) else None
    if bernoulli is not None:
        meta.update(encoder_seed=bernoulli.seed, encoder_deterministic_noise=bernoulli.deterministic_noise)
    return meta


def _readout_metadata(readout: nn.Module | None) -> dict[str, Any]:
    from snnrl_sb3.population import PopulationDecoder

    if readout is None:
        return {"readout": "none"}
    if isinstance(readout, Readout):
        return {"readout": readout.mode, "readout_beta": readout.beta, "readout_input_scale": readout.input_scale}
    if isinstance(readout, PopulationDecoder):
        return {"readout": "population", "decoder_weight": readout.weight.detach().cpu().numpy(),
                "decoder_bias": readout.bias.detach().cpu().numpy(), "decoder_squash": readout.squash}
    raise NotImplementedError(f"no NIR export for read-out type {type(readout).__name__} (exported: Readout, "
                              "PopulationDecoder)")


def _network_graph(network: SpikingNetwork, input_shape: tuple[int, ...], approximate: bool = False,
                   host: bool = True, target: str | None = None) -> Any:
    if type(network).spike_trains is not SpikingNetwork.spike_trains:
        raise NotImplementedError(f"{type(network).__name__} runs its layers on another schedule than a plain "
                                  "SpikingNetwork (e.g. convert_dqn's layer_delay); its NIR graph would compute a "
                                  "different network")
    import nir

    if target is not None and not host:
        raise NotImplementedError(f"host_readout=False writes the read-out integrator as NIR LI/I nodes, which "
                                  f"{target}'s importer does not read; use host_readout=True (the default)")
    metadata: dict[str, Any] = {"exporter": "snnrl_sb3", "dt": DT, "num_steps": network.num_steps,
                                **_encoder_metadata(network), **_readout_metadata(network.readout),
                                "host_readout": host, "target": target or "none"}
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    order = ["input"]
    device = next((p.device for p in network.parameters()), torch.device("cpu"))
    probe = torch.zeros(1, *input_shape, device=device)  # traces the per-layer shapes
    approximations: set[str] = set()
    type_check = True
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
            # NIR's dims exclude the batch axis; snnTorch's and norse's importers apply them to batched tensors
            shift = 0 if target in BATCHED_FLATTEN else 1
            nodes[key] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=layer.start_dim - shift,
                                     end_dim=layer.end_dim if layer.end_dim < 0 else layer.end_dim - shift)
            type_check = type_check and shift == 1
            probe = layer(probe)
        elif isinstance(layer, MultiStepNeuron):
            nodes[key] = _neuron_node(layer, shape, approximate, target)
            if isinstance(layer, MultiStepLeaky):
                approximations.add(_check_exactness(layer, approximate) or "")
        else:
            raise NotImplementedError(f"no NIR node for layer {name} of type {type(layer).__name__}")
        order.append(key)
    readout = network.readout
    if isinstance(readout, Readout):
        nodes["readout_linear"] = _synapse_node(readout.linear, tuple(probe.shape))
        order.append("readout_linear")
        out = (readout.linear.out_features,)
        if not host:
            scale = readout.input_scale  # U = beta U + scale I: the input resistance carries the scale
            if readout.mode in ("spike_count", "current_sum") or readout.beta == 1.0:
                # a pure integrator: the host reads its final value (and divides it by T for spike_count)
                nodes["readout"] = nir.I(r=_arr(scale / DT, out))
            else:
                tau = _tau(readout.beta, "readout beta")
                nodes["readout"] = nir.LI(tau=_arr(tau, out), r=_arr(scale * tau / DT, out), v_leak=_arr(0.0, out))
            order.append("readout")
        probe = torch.zeros(1, *out)
    approximations.discard("")
    if approximations:
        metadata["approximation"] = " and ".join(sorted(approximations)) + " written as zero-reset binary LIF"
    nodes["output"] = nir.Output(output_type={"output": np.array(probe.shape[1:])})
    order.append("output")
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(order)), metadata=metadata, type_check=type_check)


def _metadata_value(metadata: dict[str, Any], key: str) -> Any:
    if key not in metadata:
        raise ValueError(f"the graph's metadata has no {key!r}: it was not written by snnrl_sb3's export_nir")
    value = metadata[key]
    return value.decode("utf-8") if isinstance(value, bytes) else value


def host_readout(outputs: Tensor, metadata: dict[str, Any]) -> Tensor:
    r"""The host side of an exported graph: the per-step ``output`` values ``[T, B, out]`` of the
    imported network (written with ``host_readout=True``) -> the agent's outputs ``[B, A]`` (Q-values,
    or actor outputs before SB3's rescaling), from ``graph.metadata`` alone.

    * ``spike_count``: :math:`\frac1T \sum_t I_t`; ``current_sum``: :math:`\sum_t I_t`;
    * ``membrane_max`` / ``_mean`` / ``_last``: :math:`U_t = \beta U_{t-1} + \alpha I_t` (``readout_beta``,
      ``readout_input_scale``), then its max, mean or last value;
    * ``population``: firing rates of ``act_dim`` populations, their ``decoder_weight``-weighted sum
      plus ``decoder_bias``, then ``tanh`` if ``decoder_squash``;
    * ``none``: the spike trains themselves.

    :raises ValueError: for outputs that are not ``[T, B, out]`` with the graph's ``T``, or metadata
        not written by :func:`export_nir` with ``host_readout=True``
    """
    if not isinstance(outputs, Tensor) or outputs.dim() != 3:
        raise ValueError(f"outputs must be a [T, B, out] tensor, got {getattr(outputs, 'shape', type(outputs))}")
    steps = int(_metadata_value(metadata, "num_steps"))
    if outputs.shape[0] != steps:
        raise ValueError(f"outputs has {outputs.shape[0]} steps, the graph's num_steps is {steps}")
    if not bool(_metadata_value(metadata, "host_readout")):
        raise ValueError("this graph was exported with host_readout=False: its read-out runs in the graph")
    mode = _metadata_value(metadata, "readout")
    if mode == "none":
        return outputs
    if mode == "spike_count":
        return outputs.mean(0)
    if mode == "current_sum":
        return outputs.sum(0)
    if mode == "population":
        weight = torch.as_tensor(np.asarray(metadata["decoder_weight"]), dtype=outputs.dtype, device=outputs.device)
        bias = torch.as_tensor(np.asarray(metadata["decoder_bias"]), dtype=outputs.dtype, device=outputs.device)
        rates = outputs.mean(0).view(-1, *weight.shape)
        decoded = (rates * weight).sum(-1) + bias
        return torch.tanh(decoded) if bool(_metadata_value(metadata, "decoder_squash")) else decoded
    if mode not in ("membrane_max", "membrane_mean", "membrane_last"):
        raise ValueError(f"unknown readout {mode!r} in the graph's metadata")
    beta, scale = float(metadata["readout_beta"]), float(metadata["readout_input_scale"])
    currents = outputs * scale if scale != 1.0 else outputs
    m = decay_matrix(steps, beta, device=outputs.device, dtype=outputs.dtype)
    membrane = (m @ currents.reshape(steps, -1)).reshape(currents.shape)
    if mode == "membrane_max":
        return membrane.amax(0)
    return membrane.mean(0) if mode == "membrane_mean" else membrane[-1]


def export_nir(model: nn.Module, path: str | Path | None = None, *, input_shape: tuple[int, ...] | None = None,
               approximate: bool = False, host_readout: bool = True, target: str | None = None,
               observations: Any = None) -> Any:
    """Export the spiking network of a policy (or a SpikingNetwork) to a ``nir.NIRGraph``.

    :param model: an SB3 policy holding exactly one spiking network outside its target
        networks (a Q-network or an actor), or a :class:`~snnrl_sb3.body.SpikingNetwork`
    :param path: if given, the graph is also written there with ``nir.write``
    :param input_shape: per-sample input shape of the spiking core (what the first synaptic layer
        takes: ``(in_features,)`` for a Linear layer, ``(channels, height, width)`` for a Conv2d);
        inferred when omitted, required for convolutional inputs
    :param approximate: write subtractive-reset and ternary neurons as NIR's zero-reset binary LIF
        (a different network, with a warning) instead of refusing them
    :param host_readout: end the graph with the read-out's synapse, the integration and statistic
        running on the host (:func:`host_readout`); ``False``: write the integrator as ``LI``/``I``
    :param target: ``None`` (plain NIR) or an importer of :data:`TARGETS` to write the graph for
        (see the module docstring)
    :param observations: with ``approximate=True``, a batch of observations on which to measure
        the approximation: the warning and ``graph.metadata`` (``approximation_agreement``,
        ``approximation_max_abs_diff``, ``approximation_n``) then say how often the exported network
        takes the agent's action and how far its outputs are from the agent's
    :raises ValueError: for an ``input_shape`` the network cannot take
    :raises NotImplementedError: for ternary or subtractive-reset neurons without
        ``approximate=True``, neurons firing on ``>=``, layers without a NIR counterpart, and
        what the ``target`` importer would run as another network
    """
    import nir

    if path is not None and not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str, a pathlib.Path or None, got {type(path).__name__}")
    _check_module("model", model)
    check_bool("approximate", approximate)
    check_bool("host_readout", host_readout)
    if target is not None:
        check_choice("target", target, TARGETS)
    if observations is not None and not approximate:
        raise ValueError("observations measure an approximation: pass them with approximate=True (an exact "
                         "export needs none; snnrl_sb3.verify_nir checks it through an importer)")
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
    graph = _network_graph(network, _check_input_shape(network, input_shape), approximate, host_readout, target)
    if "approximation" in graph.metadata:
        message = (f"export_nir(approximate=True): {graph.metadata['approximation']} neurons; the exported network "
                   "computes something else than the policy")
        if observations is not None:
            from snnrl_sb3.nir_verify import compare_networks

            report = compare_networks(model, network, as_exported(network), observations)
            graph.metadata.update(approximation_agreement=report.action_agreement,
                                  approximation_max_abs_diff=report.max_abs_diff,
                                  approximation_n=report.n_observations)
            message += (f": on {report.n_observations} observations it takes the agent's action on "
                        f"{report.action_agreement:.1%} of them (largest output difference {report.max_abs_diff:.3g})")
        warnings.warn(message, UserWarning, stacklevel=2)
    if path is not None:
        nir.write(str(path), graph)
    return graph
