r"""Chen et al. 2022's DSQN as spikingjelly's example builds and trains it.

Written from reading ``github.com/fangwei123456/spikingjelly``:
``spikingjelly/activation_based/examples/DSQN/utils/model.py`` (the network), ``train.py`` and
``utils/common.py`` (input scaling, loss), and the library modules it uses:
``neuron/lif.py`` (``LIFNode``, ``NonSpikingLIFNode``), ``neuron/base_node.py``
(``NonSpikingBaseNode.forward``: the decoders), ``functional/neuron.py`` (``lif_charge``,
``lif_step``, ``voltage_reset``) and ``surrogate.py`` (``heaviside``, ``atan_backward``).

Network (model.py l.15-27, ``"mem" in dec_type``): conv 8x8/4 (C->32), LIF, conv 4x4/2 (32->64),
LIF, conv 3x3/1 (64->64), LIF, flatten, linear 3136->512, LIF, linear 512->A, non-spiking LIF;
spikingjelly's ``layer.Conv2d`` / ``layer.Linear`` are ``nn.Conv2d`` / ``nn.Linear`` (biases kept,
PyTorch's default init). Input: the frame ``/ 256`` (common.py l.512-513, ptan/agent.py l.51), the
same analog frame at every one of the T steps (model.py l.51-53, ``expand``); train.py's default
T is 8 (l.111; the model's own default is 5).

LIF (``LIFNode(surrogate_function=ATan(), detach_reset=True)``, defaults tau = 2, decay_input,
v_threshold = 1, v_reset = 0), from V = 0 every forward (``functional.reset_net``):

.. math::
    H_t = V_{t-1} + (X_t - (V_{t-1} - V_{reset})) / \tau, \qquad S_t = [H_t - V_{th} \ge 0], \qquad
    V_t = \mathrm{sg}(S_t) V_{reset} + (1 - \mathrm{sg}(S_t)) H_t

(hard reset to 0, immediate, detached; fire on ``>=``). Surrogate (ATan, alpha = 2):
:math:`\partial S/\partial H = (\alpha/2) / (1 + (\pi \alpha x / 2)^2)` at :math:`x = H - V_{th}`.

Output (``NonSpikingLIFNode(tau=2, decode)``): :math:`V_t = V_{t-1} + (x_t - V_{t-1}) / \tau` from
0, decoded by ``"max-mem"`` (train.py's default, l.113-117), ``"mean-mem"``, ``"max-abs-mem"`` or
``"last_mem"`` (spelled with an underscore in base_node.py; train.py's help says ``last-mem``,
which matches no branch and returns the list of membranes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["DECODERS", "PLAIN_KEYS", "SJATan", "sj_lif_step", "sj_output_membranes", "sj_decode", "ChenDSQN"]

DECODERS = ("max-mem", "mean-mem", "max-abs-mem", "last_mem")
SYNAPSES = ("conv1", "conv2", "conv3", "fc", "out")
PLAIN_KEYS = tuple(f"{s}.{p}" for s in SYNAPSES for p in ("weight", "bias"))


class SJATan(torch.autograd.Function):
    r"""Heaviside forward (``x >= 0``); spikingjelly's arctan backward :math:`a / (1 + (\pi a x)^2)`,
    ``a = alpha / 2`` (surrogate.py ``atan_backward``)."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        a = ctx.alpha / 2
        ax = math.pi * a * x
        return a / (1 + ax * ax) * grad, None


def sj_lif_step(x: Tensor, v: Tensor, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float = 0.0,
                alpha: float = 2.0) -> tuple[Tensor, Tensor, Tensor]:
    """One LIF step: ``(spike, v_next, h)`` (``h`` the charged membrane the spike is taken on)."""
    h = v + (x - (v - v_reset)) / tau  # decay_input=True
    spike = SJATan.apply(h - v_threshold, alpha)
    s = spike.detach()  # detach_reset=True
    return spike, s * v_reset + (1.0 - s) * h, h


def sj_output_membranes(currents: Tensor, tau: float = 2.0) -> Tensor:
    """Membranes ``[T, ...]`` of the non-spiking LIF output, from 0."""
    v = torch.zeros_like(currents[0])
    out = []
    for x in currents:
        v = v + (x - v) / tau
        out.append(v)
    return torch.stack(out)


def sj_decode(membranes: Tensor, decode: str) -> Tensor:
    if decode == "max-mem":
        return torch.max(membranes, 0).values  # the gradient goes to one argmax (unlike amax on ties)
    if decode == "mean-mem":
        return torch.mean(membranes, 0)
    if decode == "max-abs-mem":
        hi, lo = torch.max(membranes, 0).values, torch.min(membranes, 0).values
        return hi * (hi.abs() > lo.abs()) + lo * (hi.abs() <= lo.abs())
    if decode == "last_mem":
        return membranes[-1]
    raise ValueError(f"decode must be one of {DECODERS} (spikingjelly's spelling), got {decode!r}")


def _per_step(layer: nn.Module, x: Tensor) -> list[Tensor]:
    """A stateless layer applied at every step of ``x[T, B, ...]``, as a list over t."""
    return list(layer(x.flatten(0, 1)).unflatten(0, x.shape[:2]).unbind(0))


class ChenDSQN(nn.Module):
    """spikingjelly's ``DSQN`` (membrane decoders), per step; ``forward(x[B, C, H, W])`` -> Q ``[B, A]``.

    ``x`` is the analog input as the reference feeds it (``frame / 256``); ``trace=True`` also
    returns the per-layer spike trains and the output membranes ``[T, B, A]``."""

    def __init__(self, n_actions: int, in_channels: int = 4, num_steps: int = 8, decode: str = "max-mem",
                 tau: float = 2.0, v_threshold: float = 1.0, v_reset: float = 0.0, alpha: float = 2.0) -> None:
        super().__init__()
        if decode not in DECODERS:
            raise ValueError(f"decode must be one of {DECODERS}, got {decode!r}")
        self.num_steps, self.decode = num_steps, decode
        self.tau, self.v_threshold, self.v_reset, self.alpha = tau, v_threshold, v_reset, alpha
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=4, stride=2)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3, stride=1)
        self.fc = nn.Linear(64 * 7 * 7, 512)
        self.out = nn.Linear(512, n_actions)

    def _lif(self, currents: list[Tensor]) -> list[Tensor]:
        v = torch.zeros_like(currents[0])
        spikes = []
        for x in currents:
            spike, v, _ = sj_lif_step(x, v, self.tau, self.v_threshold, self.v_reset, self.alpha)
            spikes.append(spike)
        return spikes

    def forward(self, x: Tensor, trace: bool = False):
        # x.unsqueeze(0).expand(T, ...) (model.py l.51-53): the same current at every step. The synapses are
        # stateless: each runs once over the T steps (a batch of T*B, as spikingjelly's multi-step layers do)
        s1 = self._lif([self.conv1(x)] * self.num_steps)
        s2 = self._lif(_per_step(self.conv2, torch.stack(s1)))
        s3 = self._lif(_per_step(self.conv3, torch.stack(s2)))
        s4 = self._lif(_per_step(self.fc, torch.stack(s3).flatten(2)))
        membranes = sj_output_membranes(torch.stack(_per_step(self.out, torch.stack(s4))), self.tau)
        q = sj_decode(membranes, self.decode)
        if not trace:
            return q
        return q, {"spikes": [torch.stack(s) for s in (s1, s2, s3, s4)], "membranes": membranes}

    # ---- plain state dict ---------------------------------------------------------------------

    def _param(self, key: str) -> nn.Parameter:
        module, name = key.split(".")
        return self.get_submodule(module).get_parameter(name)

    def plain_state(self) -> dict[str, Tensor]:
        return {key: self._param(key).detach().clone() for key in PLAIN_KEYS}

    def plain_grads(self) -> dict[str, Tensor]:
        return {key: self._param(key).grad for key in PLAIN_KEYS}

    @torch.no_grad()
    def load_plain(self, state: Mapping[str, Tensor]) -> None:
        if set(state) != set(PLAIN_KEYS):
            raise KeyError(f"plain state must have the keys {sorted(PLAIN_KEYS)}, got {sorted(state)}")
        for key in PLAIN_KEYS:
            param = self._param(key)
            if tuple(state[key].shape) != tuple(param.shape):
                raise ValueError(f"{key}: shape {tuple(state[key].shape)} != the reference's {tuple(param.shape)}")
            param.copy_(state[key])

    def spikingjelly_state_dict(self) -> dict[str, Tensor]:
        """The weights under the keys of spikingjelly's ``DSQN.network`` (``nn.Sequential`` indices)."""
        index = {"conv1": 0, "conv2": 2, "conv3": 4, "fc": 7, "out": 9}
        return {f"{index[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in self.plain_state().items()}
