"""snnrl_sb3: spiking neural network policies for Stable-Baselines3, built on snnTorch."""

from snnrl_sb3.body import SpikingNetwork, spiking_mlp, spiking_nature_cnn
from snnrl_sb3.coding import BernoulliEncoder, DirectEncoder, Readout, make_encoder
from snnrl_sb3.config import SpikingConfig
from snnrl_sb3.kernels import (
    MultiStepCurrentLeaky,
    MultiStepDynamic,
    MultiStepLeaky,
    MultiStepNeuron,
    MultiStepSJLeaky,
    make_neuron,
)
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
    "MultiStepDynamic",
    "MultiStepLeaky",
    "MultiStepNeuron",
    "MultiStepSJLeaky",
    "Readout",
    "SpikingConfig",
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

# --- population-coded spiking actors for TD3 / DDPG / SAC (Pop-SAN, MDC-SAN) ---
from snnrl_sb3.population import PopulationDecoder, PopulationEncoder
from snnrl_sb3.td3 import PopSpikingSACPolicy, PopSpikingTD3Policy

__all__ += ["PopulationDecoder", "PopulationEncoder", "PopSpikingSACPolicy", "PopSpikingTD3Policy"]

# --- spiking Q-networks for stock SB3 DQN / sb3-contrib QR-DQN ---
from snnrl_sb3.dqn import (  # noqa: E402
    MinAtarCNN,
    SpikingCnnQPolicy,
    SpikingCnnQRDQNPolicy,
    SpikingQNetwork,
    SpikingQPolicy,
    SpikingQRDQNPolicy,
    SpikingQuantileNetwork,
)

__all__ += ["MinAtarCNN", "SpikingCnnQPolicy", "SpikingCnnQRDQNPolicy", "SpikingQNetwork", "SpikingQPolicy",
            "SpikingQRDQNPolicy", "SpikingQuantileNetwork"]

# --- on-policy spiking actor-critics for stock SB3 PPO / A2C and sb3-contrib MaskablePPO ---
from snnrl_sb3.actor_critic import (  # noqa: E402
    SpikingActorCriticPolicy,
    SpikingCnnActorCriticPolicy,
    SpikingMaskableActorCriticPolicy,
)

__all__ += ["SpikingActorCriticPolicy", "SpikingCnnActorCriticPolicy", "SpikingMaskableActorCriticPolicy"]

# --- conversion, spike statistics, energy, NIR export ---
from snnrl_sb3.conversion import convert_dqn  # noqa: E402
from snnrl_sb3.energy import estimate_energy  # noqa: E402
from snnrl_sb3.nir_export import export_nir  # noqa: E402
from snnrl_sb3.nir_verify import verify_nir  # noqa: E402
from snnrl_sb3.stats import SpikeStatsCallback  # noqa: E402

__all__ += ["SpikeStatsCallback", "convert_dqn", "estimate_energy", "export_nir", "verify_nir"]
