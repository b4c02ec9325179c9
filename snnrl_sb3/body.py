"""The multi-step network body: encoder -> (synapse, neuron)* -> read-out, over ``[T, B, ...]``.

Synaptic layers (``nn.Linear``, ``nn.Conv2d``, ``nn.Flatten`` ...) run once over all ``T``
steps by folding time into the batch; neurons run their element-wise recurrence. While the
input is the same at every step (direct coding), synaptic layers run once on ``[B, ...]`` and
the result is only broadcast (``expand``, no copy) when it reaches the first neuron.
Every call starts from zero state: the network is a pure function of its input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from snnrl_sb3._validation import check_int
from snnrl_sb3.coding import DirectEncoder, Encoder, Readout
from snnrl_sb3.kernels import MultiStepNeuron, make_neuron

__all__ = ["SpikingNetwork", "MAX_NUM_STEPS", "NeuronSpec", "spiking_mlp", "spiking_nature_cnn", "spiking_conv_net",
           "spiking_minatar_cnn", "ann_conv_net",
           "NATURE_CNN_ARCH", "MINATAR_CNN_ARCH"]

#: ``conv_arch`` of the NatureCNN (Mnih et al., 2015) and of the MinAtar DQN (Young & Tian, 2019).
NATURE_CNN_ARCH = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
MINATAR_CNN_ARCH = ((16, 3, 1),)

#: Largest ``T``: every forward loops over ``T`` steps and keeps ``T * B * width`` activations, so a
#: larger value is a typo that would otherwise run for minutes or exhaust memory.
MAX_NUM_STEPS = 4096

def check_num_steps(value: Any) -> int:
    """``num_steps`` as an int in ``[1, MAX_NUM_STEPS]``."""
    num_steps = check_int("num_steps", value, low=1)
    if num_steps > MAX_NUM_STEPS:
        raise ValueError(f"num_steps must be <= {MAX_NUM_STEPS} (each forward loops over T steps and keeps "
                         f"T * batch * width activations), got {num_steps}")
    return num_steps


#: A neuron kind's name (built with ``neuron_kwargs``) or a factory returning a fresh neuron layer.
NeuronSpec = str | Callable[[], MultiStepNeuron]


class SpikingNetwork(nn.Module):
    """Encoder, a sequence of synaptic layers and :class:`MultiStepNeuron` s, and a read-out.

    :param layers: synaptic layers and multi-step neurons, in order
    :param readout: maps the last spike trains ``[T, B, F]`` to ``[B, out]``; ``None`` returns
        the spike trains themselves
    :param num_steps: simulation steps ``T`` per forward
    :param encoder: turns the input into currents/spikes (default: direct coding)
    """

    num_steps: int
    encoder: Encoder
    layers: nn.ModuleList
    readout: nn.Module | None

    def __init__(self, layers: Sequence[nn.Module], readout: nn.Module | None, num_steps: int,
                 encoder: Encoder | None = None) -> None:
        super().__init__()
        self.num_steps = check_num_steps(num_steps)
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

    def core(self) -> list[tuple[str, nn.Module]]:
        """The spiking core in order, as ``(name, module)``: the encoder's own synapse (if it has
        one), then every layer. Host-side coding (encoder, decoder statistic) is not included; the
        read-out's synapses are :meth:`readout_synapses`."""
        chain: list[tuple[str, nn.Module]] = []
        if self.encoder.synapse is not None:
            chain.append(("encoder.synapse", self.encoder.synapse))
        return chain + [(f"layers.{i}", layer) for i, layer in enumerate(self.layers)]

    def readout_synapses(self) -> list[tuple[str, nn.Linear | nn.Conv2d]]:
        """Synaptic layers of the read-out, all fed by the last spike trains (none for a read-out
        without ``nn.Linear`` layers, such as a population decoder, which is host-side)."""
        if self.readout is None:
            return []
        return [(f"readout.{name}", m) for name, m in self.readout.named_modules()
                if isinstance(m, (nn.Linear, nn.Conv2d))]


def _neuron(neuron: NeuronSpec, neuron_kwargs: dict[str, Any] | None) -> MultiStepNeuron:
    if callable(neuron):
        if neuron_kwargs:
            raise ValueError("neuron_kwargs must be empty when neuron is a factory")
        return neuron()
    return make_neuron(neuron, **(neuron_kwargs or {}))


def _dense_layers(width: int, net_arch: Sequence[int], neuron: NeuronSpec,
                  neuron_kwargs: dict[str, Any] | None, bias: bool = True) -> tuple[list[nn.Module], int]:
    """``Linear -> neuron`` per entry of ``net_arch``; returns the layers and the last width."""
    layers: list[nn.Module] = []
    for i, hidden in enumerate(net_arch):
        check_int(f"net_arch[{i}]", hidden, low=1)
        layers += [nn.Linear(width, hidden, bias=bias), _neuron(neuron, neuron_kwargs)]
        width = hidden
    return layers, width


def spiking_mlp(in_features: int, net_arch: Sequence[int], out_features: int | None, *, num_steps: int = 8,
                neuron: NeuronSpec = "ternary", neuron_kwargs: dict[str, Any] | None = None,
                readout: str = "membrane_max", readout_beta: float = 0.9,
                encoder: Encoder | None = None, bias: bool = True) -> SpikingNetwork:
    """A spiking MLP: ``Linear -> neuron`` per entry of ``net_arch``, then a :class:`Readout`
    (``out_features=None``: no read-out; the last spike trains are returned). ``bias=False``: no
    synapse has a bias."""
    check_int("in_features", in_features, low=1)
    if not net_arch:
        raise ValueError("net_arch must have at least one hidden layer for a spiking network")
    layers, width = _dense_layers(in_features, net_arch, neuron, neuron_kwargs, bias)
    head = None if out_features is None else Readout(width, out_features, readout, readout_beta, bias=bias)
    return SpikingNetwork(layers, head, num_steps, encoder)


def spiking_nature_cnn(in_channels: int, image_size: tuple[int, int], features_dim: int, out_features: int | None, *,
                       num_steps: int = 8, neuron: NeuronSpec = "ternary", neuron_kwargs: dict[str, Any] | None = None,
                       readout: str = "membrane_max", readout_beta: float = 0.9,
                       encoder: Encoder | None = None, bias: bool = True) -> SpikingNetwork:
    """NatureCNN-shaped spiking body (3 conv + FC ``features_dim``) and a read-out: the DQN of
    seeds 000/002/003 with spiking neurons after every synaptic layer."""
    return spiking_conv_net(in_channels, image_size, NATURE_CNN_ARCH, [features_dim], out_features,
                            num_steps=num_steps, neuron=neuron, neuron_kwargs=neuron_kwargs, readout=readout,
                            readout_beta=readout_beta, encoder=encoder, bias=bias)


def spiking_conv_net(in_channels: int, image_size: tuple[int, int], conv_arch: Sequence[Sequence[int]],
                     net_arch: Sequence[int], out_features: int | None, *, num_steps: int = 8,
                     neuron: NeuronSpec = "ternary", neuron_kwargs: dict[str, Any] | None = None,
                     readout: str = "membrane_max", readout_beta: float = 0.9,
                     encoder: Encoder | None = None, bias: bool = True) -> SpikingNetwork:
    """A spiking convolutional body: ``Conv2d -> neuron`` per ``(channels, kernel, stride)`` entry of
    ``conv_arch``, flatten, ``Linear -> neuron`` per entry of ``net_arch``, then a :class:`Readout`
    (``out_features=None``: no read-out).

    ``conv_arch=[(32, 8, 4), (64, 4, 2), (64, 3, 1)], net_arch=[512]`` is the NatureCNN DQN;
    ``conv_arch=[(16, 3, 1)], net_arch=[128]`` is the MinAtar DQN (Young & Tian, 2019)."""
    import torch

    check_int("in_channels", in_channels, low=1)
    if not conv_arch:
        raise ValueError("conv_arch must have at least one convolution")
    convs: list[nn.Conv2d] = []
    channels = in_channels
    for i, spec in enumerate(conv_arch):
        if len(spec) != 3:
            raise ValueError(f"conv_arch[{i}] must be (out_channels, kernel_size, stride), got {spec!r}")
        out, kernel, stride = (check_int(f"conv_arch[{i}][{j}]", v, low=1) for j, v in enumerate(spec))
        convs.append(nn.Conv2d(channels, out, kernel, stride=stride, bias=bias))
        channels = out
    with torch.no_grad():
        probe = torch.zeros(1, in_channels, *image_size)
        for conv in convs:
            if min(probe.shape[-2:]) < conv.kernel_size[0]:
                raise ValueError(f"image size {tuple(image_size)} is too small for conv_arch {list(conv_arch)}")
            probe = conv(probe)
    layers: list[nn.Module] = []
    for conv in convs:
        layers += [conv, _neuron(neuron, neuron_kwargs)]
    dense, width = _dense_layers(probe.numel(), net_arch, neuron, neuron_kwargs, bias)
    layers += [nn.Flatten(), *dense]
    head = None if out_features is None else Readout(width, out_features, readout, readout_beta, bias=bias)
    return SpikingNetwork(layers, head, num_steps, encoder)


def ann_conv_net(image_shape: tuple[int, int, int], conv_arch: Sequence[Sequence[int]],
                  net_arch: Sequence[int]) -> tuple[nn.Sequential, int]:
    """The same-shape ANN of :func:`spiking_conv_net` (ReLU after every layer, as SB3's NatureCNN):
    ``(network, output width)``; e.g. ``MINATAR_CNN_ARCH, [128]`` is the MinAtar DQN body."""
    import torch

    channels = image_shape[0]
    layers: list[nn.Module] = []
    for out, kernel, stride in conv_arch:
        layers += [nn.Conv2d(channels, out, kernel, stride=stride), nn.ReLU()]
        channels = out
    layers.append(nn.Flatten())
    with torch.no_grad():
        size = int(nn.Sequential(*layers)(torch.zeros(1, *image_shape)).shape[1])
    for hidden in net_arch:
        layers += [nn.Linear(size, hidden), nn.ReLU()]
        size = hidden
    return nn.Sequential(*layers), size


def spiking_minatar_cnn(in_channels: int, image_size: tuple[int, int] = (10, 10), out_features: int | None = None,
                        **kwargs: Any) -> SpikingNetwork:
    """The MinAtar DQN body (conv 16@3x3 stride 1 -> FC 128) with spiking neurons; ``kwargs`` as
    :func:`spiking_conv_net`."""
    kwargs.setdefault("net_arch", [128])
    return spiking_conv_net(in_channels, image_size, MINATAR_CNN_ARCH, out_features=out_features, **kwargs)

