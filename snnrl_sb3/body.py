"""The multi-step network body: encoder -> (synapse, neuron)* -> read-out, over ``[T, B, ...]``.

Synaptic layers (``nn.Linear``, ``nn.Conv2d``, ``nn.Flatten`` ...) run once over all ``T``
steps by folding time into the batch; neurons run their element-wise recurrence. While the
input is the same at every step (direct coding), synaptic layers run once on ``[B, ...]`` and
the result is only broadcast (``expand``, no copy) when it reaches the first neuron.
Every call starts from zero state: the network is a pure function of its input.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor, nn

from snnrl_sb3._validation import check_int
from snnrl_sb3.coding import DirectEncoder, Encoder, Readout
from snnrl_sb3.multistep import MultiStepNeuron, make_neuron

__all__ = ["SpikingNetwork", "spiking_mlp", "spiking_nature_cnn"]


class SpikingNetwork(nn.Module):
    """Encoder, a sequence of synaptic layers and :class:`MultiStepNeuron` s, and a read-out.

    :param layers: synaptic layers and multi-step neurons, in order
    :param readout: maps the last spike trains ``[T, B, F]`` to ``[B, out]``; ``None`` returns
        the spike trains themselves
    :param num_steps: simulation steps ``T`` per forward
    :param encoder: turns the input into currents/spikes (default: direct coding)
    """

    def __init__(self, layers: Sequence[nn.Module], readout: nn.Module | None, num_steps: int,
                 encoder: Encoder | None = None) -> None:
        super().__init__()
        self.num_steps = check_int("num_steps", num_steps, low=1)
        self.encoder = DirectEncoder() if encoder is None else encoder
        self.layers = nn.ModuleList(layers)
        self.readout = readout

    def spike_trains(self, x: Tensor, deterministic: bool = False) -> Tensor:
        """Spike trains ``[T, B, ...]`` of the last neuron layer."""
        steps = self.num_steps
        h = self.encoder(x, steps, deterministic)
        static = self.encoder.static
        for layer in self.layers:
            if isinstance(layer, MultiStepNeuron):
                if static:  # the first neuron sees the same current at every step
                    h = h.unsqueeze(0).expand(steps, *h.shape)
                    static = False
                h = layer(h)
            elif static:
                h = layer(h)
            else:
                h = layer(h.flatten(0, 1)).unflatten(0, (steps, -1))
        if static:
            raise ValueError("SpikingNetwork has no spiking neuron layer")
        return h

    def forward(self, x: Tensor, deterministic: bool = False) -> Tensor:
        spikes = self.spike_trains(x, deterministic)
        return spikes if self.readout is None else self.readout(spikes)


def _neuron(neuron: str, neuron_kwargs: dict[str, Any] | None) -> MultiStepNeuron:
    return make_neuron(neuron, **(neuron_kwargs or {}))


def spiking_mlp(in_features: int, net_arch: Sequence[int], out_features: int | None, *, num_steps: int = 8,
                neuron: str = "ternary", neuron_kwargs: dict[str, Any] | None = None,
                readout: str = "membrane_max", readout_beta: float = 0.9,
                encoder: Encoder | None = None) -> SpikingNetwork:
    """A spiking MLP: ``Linear -> neuron`` per entry of ``net_arch``, then a :class:`Readout`
    (``out_features=None``: no read-out; the last spike trains are returned)."""
    check_int("in_features", in_features, low=1)
    if not net_arch:
        raise ValueError("net_arch must have at least one hidden layer for a spiking network")
    layers: list[nn.Module] = []
    width = in_features
    for i, hidden in enumerate(net_arch):
        check_int(f"net_arch[{i}]", hidden, low=1)
        layers += [nn.Linear(width, hidden), _neuron(neuron, neuron_kwargs)]
        width = hidden
    head = None if out_features is None else Readout(width, out_features, readout, readout_beta)
    return SpikingNetwork(layers, head, num_steps, encoder)


def spiking_nature_cnn(in_channels: int, image_size: tuple[int, int], features_dim: int, out_features: int | None, *,
                       num_steps: int = 8, neuron: str = "ternary", neuron_kwargs: dict[str, Any] | None = None,
                       readout: str = "membrane_max", readout_beta: float = 0.9,
                       encoder: Encoder | None = None) -> SpikingNetwork:
    """NatureCNN-shaped spiking body (3 conv + FC ``features_dim``) and a read-out: the DQN of
    seeds 000/002/003 with spiking neurons after every synaptic layer."""
    import torch

    convs = [nn.Conv2d(in_channels, 32, 8, stride=4), nn.Conv2d(32, 64, 4, stride=2), nn.Conv2d(64, 64, 3, stride=1)]
    with torch.no_grad():
        probe = torch.zeros(1, in_channels, *image_size)
        for conv in convs:
            probe = conv(probe)
    layers: list[nn.Module] = []
    for conv in convs:
        layers += [conv, _neuron(neuron, neuron_kwargs)]
    layers += [nn.Flatten(), nn.Linear(probe.numel(), features_dim), _neuron(neuron, neuron_kwargs)]
    head = None if out_features is None else Readout(features_dim, out_features, readout, readout_beta)
    return SpikingNetwork(layers, head, num_steps, encoder)
