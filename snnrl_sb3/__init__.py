"""snnrl_sb3: spiking neural network policies for Stable-Baselines3, built on snnTorch."""

from snnrl_sb3.body import SpikingNetwork, spiking_mlp, spiking_nature_cnn
from snnrl_sb3.coding import BernoulliEncoder, DirectEncoder, Readout, make_encoder
from snnrl_sb3.multistep import MultiStepCurrentLeaky, MultiStepLeaky, MultiStepNeuron, make_neuron
from snnrl_sb3.neurons import AsymmetricTernaryLeaky, CurrentLeaky
from snnrl_sb3.surrogate import (
    Surrogate,
    Trapezoid,
    atan,
    fast_sigmoid,
    make_surrogate,
    rectangular,
    sigmoid,
    straight_through,
    trapezoid,
    triangular,
)

__version__ = "0.1.0"

__all__ = [
    "AsymmetricTernaryLeaky",
    "BernoulliEncoder",
    "CurrentLeaky",
    "DirectEncoder",
    "MultiStepCurrentLeaky",
    "MultiStepLeaky",
    "MultiStepNeuron",
    "Readout",
    "SpikingNetwork",
    "Surrogate",
    "Trapezoid",
    "atan",
    "fast_sigmoid",
    "make_encoder",
    "make_neuron",
    "make_surrogate",
    "rectangular",
    "sigmoid",
    "spiking_mlp",
    "spiking_nature_cnn",
    "straight_through",
    "trapezoid",
    "triangular",
]
