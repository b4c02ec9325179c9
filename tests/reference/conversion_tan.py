"""Independent re-implementations of the two published DQN conversions, for ``tests/test_conversion.py``.

Pure torch (and NumPy's percentile, which the reference itself calls), written from reading the
sources, sharing no code with ``snnrl_sb3``:

**Tan et al. 2021** (AAAI, "Strategy and Benchmark for Converting Deep Q-Networks to Event-Driven
Spiking Neural Networks"), ``github.com/WeihaoTan/bindsnet-1`` at ``a9b1d6f``:

* ``bindsnet/conversion/conversion.py`` l.396-446 ``data_based_normalization``: the ANN's
  activations on the data are computed once (``FeatureExtractor``, l.46-79: each module's output,
  so a Linear/Conv2d entry is the layer's output *before* its ReLU); then for every Linear/Conv2d
  in order, output layer included, ``scale = np.percentile(activations, percentile)`` over the
  whole tensor, ``weight *= prev / scale``, ``bias /= scale``, ``prev = scale`` (``prev`` starts
  at 1: the input is not scaled);
* l.82-194 ``SubtractiveResetIFNodes``, built by ``_ann_to_snn_helper`` (l.449-554) with
  ``thresh=1, reset=0, refrac=0`` for every Linear/Conv2d, the output layer too (``sum_input``
  only records the input); per step ``v += x``, ``s = v >= thresh``, ``v[s] -= thresh``; no lower
  bound; ReLUs become nothing (l.551);
* ``bindsnet/network/topology.py`` l.178 ``Connection.compute``: ``s.view(B, -1) @ w + b`` with
  ``w = weight.t()`` (the bias at every step, whatever the spikes); l.320 ``Conv2dConnection``:
  ``F.conv2d(s, w, b, stride, padding)``;
* ``bindsnet/network/network.py`` l.339-357 ``Network.run``: with ``one_step=False`` (the default,
  which the script uses) the inputs of *all* layers are computed from the current spikes before
  any layer is updated (``_get_inputs``, l.208), so each layer sees its source's spikes of the
  previous step; the ``Input`` layer's ``s`` is set to the given input (``nodes.py`` l.218), zero
  before the first step;
* ``game_model_episode_time_seed_percentile.py``: calibration frames from the ANN's own play with
  ``epsilon = 0.05`` (l.42, l.126-147), scaled to [0, 1] (l.149); the SNN input is the frame
  repeated ``time`` times (l.182); Q is ``spikes.sum(0) + voltages[time - 1]`` of the output
  layer (l.192), and the state is reset after every frame (l.208).

**Seed 002** (BCS Spikeverse, IIT Kanpur 2025, section 7.3; a report, no code): weights copied,
layer 1 x10, layer 2 x100 (hidden layer ``l`` x ``10**l``), Poisson input spikes, LIF neurons
(``snn.Leaky``: ``mem = beta * mem + I - threshold * spk_prev``, ``spk = mem > threshold``),
and the action of the output neuron with the most spikes over the window.

A layer is ``(weight, bias, stride)``; ``stride`` is ``None`` for a Linear layer, an int for a
Conv2d (no padding, as SB3's NatureCNN).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Layer = tuple[Tensor, Tensor, "int | None"]


def _synapse(layer: Layer, x: Tensor) -> Tensor:
    weight, bias, stride = layer
    if stride is None:
        return x.float().reshape(x.shape[0], -1) @ weight.t() + bias
    return F.conv2d(x.float(), weight, bias, stride=stride)


def ann_forward(layers: list[Layer], x: Tensor) -> list[Tensor]:
    """Every synaptic layer's output (before its ReLU) of the ANN on ``x``."""
    outputs = []
    with torch.no_grad():
        for i, layer in enumerate(layers):
            x = _synapse(layer, x)
            outputs.append(x)
            if i < len(layers) - 1:
                x = torch.relu(x)
    return outputs


def tan_normalize(layers: list[Layer], data: Tensor, percentile: float = 99.9) -> tuple[list[Layer], list[float]]:
    """``data_based_normalization``: the scaled layers and the per-layer scales ``lambda_l``."""
    activations = ann_forward(layers, data)  # once, on the unscaled ANN
    scaled, scales, prev = [], [], 1
    for (weight, bias, stride), act in zip(layers, activations):
        scale = np.percentile(act.cpu().numpy(), percentile)  # a NumPy float32, as in the reference
        factor = prev / scale
        scaled.append((weight.clone() * factor, bias.clone() / scale, stride))
        scales.append(float(scale))
        prev = scale
    return scaled, scales


def tan_forward(layers: list[Layer], inputs: Tensor, synchronous: bool = True) -> tuple[Tensor, Tensor]:
    """The converted network on ``inputs[T, B, ...]`` (the Input layer's values per step).

    :param synchronous: bindsnet's default ``Network.run`` (Tan et al.'s script): every layer
        sees its source's spikes of the previous step; ``False``: ``one_step=True``, layer by
        layer within the step
    :return: ``(Q, output spike count)``, ``Q = count + final membrane`` of the output layer
    """
    zeros = [torch.zeros_like(out) for out in ann_forward(layers, torch.zeros_like(inputs[0]))]
    volts = [z.clone() for z in zeros]  # reset = 0
    spikes = [z.clone() for z in zeros]
    source = torch.zeros_like(inputs[0])  # the Input layer's s before the first step
    count = torch.zeros_like(zeros[-1])

    def update(k: int, current: Tensor) -> None:
        volts[k] = volts[k] + current  # v += x (refrac 0)
        fired = volts[k] >= 1.0  # s = v >= thresh
        volts[k] = torch.where(fired, volts[k] - 1.0, volts[k])  # v[s] -= thresh
        spikes[k] = fired.float()

    for t in range(inputs.shape[0]):
        if synchronous:  # every input from the spikes as they were before this step
            currents = [_synapse(layer, source if k == 0 else spikes[k - 1]) for k, layer in enumerate(layers)]
            source = inputs[t]
            for k, current in enumerate(currents):
                update(k, current)
        else:
            source = inputs[t]
            for k, layer in enumerate(layers):
                update(k, _synapse(layer, source if k == 0 else spikes[k - 1]))
        count = count + spikes[-1]
    return count + volts[-1], count


def seed002_scale(layers: list[Layer], scale: float = 10.0) -> list[Layer]:
    """Hidden layer ``l`` (1-based) x ``scale ** l``, the output layer as trained."""
    out = []
    for k, (weight, bias, stride) in enumerate(layers, start=1):
        if k < len(layers):
            weight, bias = weight * scale ** k, bias * scale ** k
        out.append((weight, bias, stride))
    return out


def seed002_forward(layers: list[Layer], input_spikes: Tensor, beta: float = 1.0) -> Tensor:
    """Output spike counts ``[B, A]`` of the LIF network on ``input_spikes[T, B, ...]``, every
    layer (the output one too) within the same step, threshold 1."""
    zeros = [torch.zeros_like(out) for out in ann_forward(layers, torch.zeros_like(input_spikes[0]))]
    mems = [z.clone() for z in zeros]
    spikes = [z.clone() for z in zeros]
    count = torch.zeros_like(zeros[-1])
    for t in range(input_spikes.shape[0]):
        x = input_spikes[t]
        for k, layer in enumerate(layers):
            mems[k] = beta * mems[k] + _synapse(layer, x) - spikes[k]  # reset by subtraction of the last spike
            spikes[k] = (mems[k] > 1.0).float()
            x = spikes[k]
        count = count + spikes[-1]
    return count
