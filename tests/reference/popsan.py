"""Independent re-implementations of the seed-001 reference actors, Pop-SAN and MDC-SAN, for the equivalence tests.

Written from reading the authors' released code, not from this library (and not copied from it):

* **Pop-SAN** (Tang et al. 2020), ``github.com/combra-lab/pop-spiking-deep-rl``,
  ``popsan_drl/popsan_td3/popsan.py``: constants at lines 9-13 (encoder threshold 0.999, neuron
  threshold 0.5, current decay 1/2, voltage decay 3/4, pseudo-gradient window 0.5); the regular
  encoder 38-81 (means evenly spaced, ``lo + k (hi - lo) / (pop - 1)``, std constant; Gaussian
  ``exp(-(1/2)(o - mu)^2 / sigma^2)``; ``v += A``, spike ``v > 0.999`` with an identity
  pseudo-gradient, ``v -= 0.999 s``); the Poisson encoder 84-111 (``bernoulli(A)``, identity
  gradient); the decoder 114-135 (grouped ``Conv1d(act, act, pop, groups=act)``, then ``tanh``);
  the rectangular pseudo-gradient 138-149 (``1[|v - 0.5| < 0.5]``); the neuron 177-190
  (``c = c/2 + W x``, ``v = 3/4 v (1 - s) + c``, ``s = [v > 0.5]``, nothing detached); the loop
  192-225 (zero state per call, output firing rate ``sum_t s_t / T``); the actor 228-263
  (``act_limit * decoder(...)``).
* **MDC-SAN** (Zhang et al. 2022) as ILC-SAN runs it, ``github.com/lucifer2859/ILC-SAN``:
  ``README.md`` line 56 (``--encode pop --decode fr-mlp --neurons DN --connections none``), and
  ``ilcsan-td3/mdcsan.py``: constants 13-15; the rectangular pseudo-gradient 53-64; the ``pop``
  encoder 163-179 (the Gaussian activations themselves at every step: no spikes); the decoder
  182-200; the dynamic neuron 208-211 (``theta_v, theta_u, theta_r, theta_s``) and 243-269
  (``c = c/2 + W x``; ``v = v (1 - s) + s theta_r``; ``u = u + s theta_s``;
  ``dv = v^2 - v - u + c``; ``du = theta_v v - theta_u u``; ``v += dv``; ``u += du``;
  ``s = [v > 0.5]``); the loop 271-308 and the actor 338-349.

Tensors are batch-major and the time loop is explicit, as in the references: encoder output
``[B, N, T]``. The triangular and trapezoid pseudo-gradients of the seed paper (Pan et al.) have no
released code; :class:`Window` implements them, and the reference's rectangle, from their
definitions as piecewise functions of ``x = v - threshold`` (half-widths; unit area):

* rectangle of half-width ``a``: ``1/(2a)`` for ``|x| < a`` (``a = 0.5``: Pop-SAN's, height 1);
* triangle of half-width ``a``: ``(a - |x|) / a^2`` for ``|x| < a``;
* trapezoid ``(a, b)``: ``1/(a+b)`` for ``|x| <= a``, ``(b - |x|) / ((a+b)(b-a))`` for
  ``a < |x| < b``.

Weights travel as a plain ``{name: tensor}`` dict in the reference's own layout
(:data:`PLAIN_KEYS`): :func:`plain_from_actor` reads one from a ``PopSpikingActor`` of ours and
:func:`actor_grads_as_plain` its gradients, so the tests compare like with like.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

# ---------------------------------------------------------------- the references' constants
POPSAN_ENCODER_VTH = 0.999  # popsan.py:9
POPSAN_VTH = 0.5  # popsan.py:10
POPSAN_CDECAY = 1 / 2  # popsan.py:11
POPSAN_VDECAY = 3 / 4  # popsan.py:12
POPSAN_WINDOW = 0.5  # popsan.py:13
MDCSAN_VTH = 0.5  # mdcsan.py:13
MDCSAN_CDECAY = 0.5  # mdcsan.py:14
MDCSAN_THETA = dict(theta_v=-0.172, theta_u=0.529, theta_r=0.021, theta_s=0.132)  # mdcsan.py:208-211
#: the actors' common settings, td3_cuda_norm.py:404-411 / hybrid_td3_cuda_norm.py:294-305
ACTOR_SETTINGS = dict(hidden_sizes=[256, 256], encoder_pop_dim=10, decoder_pop_dim=10, mean_range=(-3, 3),
                      std=math.sqrt(0.15), spike_ts=5)

#: TD3 of both references: ``spike_td3`` defaults (td3_cuda_norm.py:52-57, hybrid_td3_cuda_norm.py:46-51)
#: and the ``__main__`` call (td3_cuda_norm.py:416-418, hybrid_td3_cuda_norm.py:325-327).
REFERENCE_TD3 = dict(
    steps_per_epoch=10_000, epochs=100, replay_size=1_000_000, gamma=0.99, polyak=0.995, popsan_lr=1e-4, q_lr=1e-3,
    batch_size=100, start_steps=10_000, update_after=1000, update_every=50, act_noise=0.1, target_noise=0.2,
    noise_clip=0.5, policy_delay=2, num_test_episodes=10, max_ep_len=1000, norm_clip_limit=3.0, norm_update=50,
    critic_hidden_sizes=[256, 256], seeds=[10 * k for k in range(10)],
)

#: Keys of the plain weight dict, in the reference's layout (shapes for obs_dim O, pop P, act A, pop Q):
#: ``encoder.mean`` / ``encoder.std`` [1, O, P]; ``hidden.{i}.weight`` / ``.bias``;
#: ``out_pop.weight`` / ``.bias``; ``decoder.weight`` [A, 1, Q], ``decoder.bias`` [A].
PLAIN_KEYS = ("encoder.mean", "encoder.std", "hidden.{i}.weight", "hidden.{i}.bias", "out_pop.weight", "out_pop.bias",
              "decoder.weight", "decoder.bias")


# ---------------------------------------------------------------- spike functions
class _ThresholdIdentity(torch.autograd.Function):
    """``x > vth`` forward, gradient passed through unchanged (popsan.py:16-24, mdcsan.py:18-26)."""

    @staticmethod
    def forward(ctx, x, vth):
        return x.gt(vth).float()

    @staticmethod
    def backward(ctx, grad):
        return grad.clone(), None


class _GivenSpikesIdentity(torch.autograd.Function):
    """Poisson encoder with the spikes given (popsan.py:27-35): forward returns ``spikes``,
    backward passes the gradient to the probabilities unchanged."""

    @staticmethod
    def forward(ctx, prob, spikes):
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clone(), None


class Window:
    """A pseudo-gradient window: ``kind`` ``"rectangular"`` (``a``), ``"triangular"`` (``a``) or
    ``"trapezoid"`` (``a``, ``b``), see the module docstring."""

    def __init__(self, kind: str = "rectangular", a: float = 0.5, b: float | None = None) -> None:
        if kind not in ("rectangular", "triangular", "trapezoid"):
            raise ValueError(kind)
        self.kind, self.a, self.b = kind, float(a), None if b is None else float(b)

    def __call__(self, x: Tensor) -> Tensor:
        d = torch.abs(x)
        if self.kind == "rectangular":  # popsan.py:148: (|v - vth| < window), scaled to unit area
            return (d < self.a).float() * (1.0 / (2.0 * self.a))
        if self.kind == "triangular":
            return torch.where(d < self.a, (self.a - d) / (self.a * self.a), torch.zeros_like(d))
        a, b = self.a, self.b
        h = 1.0 / (a + b)
        ramp = (b - d) * (h / (b - a))
        return torch.where(d <= a, torch.full_like(d, h), torch.where(d < b, ramp, torch.zeros_like(d)))


#: The seed's three pseudo-gradients with the library's default widths (Pop-SAN's rectangle).
SEED_WINDOWS = {"rectangular": Window("rectangular", 0.5), "triangular": Window("triangular", 1.0),
                "trapezoid": Window("trapezoid", 0.25, 0.75)}


class _WindowSpike(torch.autograd.Function):
    """``v > vth`` forward; backward ``grad * window(v - vth)`` (popsan.py:138-149 for the rectangle)."""

    @staticmethod
    def forward(ctx, v, vth, window):
        ctx.save_for_backward(v)
        ctx.vth, ctx.window = vth, window
        return v.gt(vth).float()

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad.clone() * ctx.window(v - ctx.vth), None, None


# ---------------------------------------------------------------- neuron models (one step)
def popsan_neuron(syn: nn.Module, x: Tensor, current: Tensor, volt: Tensor, spike: Tensor,
                  window: Window) -> tuple[Tensor, Tensor, Tensor]:
    """popsan.py:177-190."""
    current = current * POPSAN_CDECAY + syn(x)
    volt = volt * POPSAN_VDECAY * (1. - spike) + current
    spike = _WindowSpike.apply(volt, POPSAN_VTH, window)
    return current, volt, spike


def mdcsan_neuron(syn: nn.Module, x: Tensor, current: Tensor, volt: Tensor, spike: Tensor, resistance: Tensor,
                  window: Window) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """mdcsan.py:243-269 with ``connections='none'`` (no intra-layer term)."""
    th = MDCSAN_THETA
    current = current * MDCSAN_CDECAY + syn(x)
    volt = volt * (1. - spike) + spike * th["theta_r"]
    resistance = resistance + spike * th["theta_s"]
    volt_delta = volt ** 2 - volt - resistance + current
    resistance_delta = th["theta_v"] * volt - th["theta_u"] * resistance
    volt = volt + volt_delta
    resistance = resistance + resistance_delta
    spike = _WindowSpike.apply(volt, MDCSAN_VTH, window)
    return current, volt, spike, resistance


class _Identity(nn.Module):
    """A synapse that is already applied (the tiny hand-worked trajectories feed currents)."""

    def forward(self, x: Tensor) -> Tensor:
        return x


def run_neuron(kind: str, currents: Tensor, window: Window | None = None) -> tuple[Tensor, Tensor]:
    """One layer of reference neurons fed ``currents[T, N]`` (already through the synapse), from
    zero state: ``(spikes[T, N], volts[T, N])``."""
    window = window or SEED_WINDOWS["rectangular"]
    zeros = torch.zeros_like(currents[0])
    state = [zeros] * (3 if kind == "popsan" else 4)
    spikes, volts = [], []
    for x in currents:
        if kind == "popsan":
            state = list(popsan_neuron(_Identity(), x, *state, window))
        else:
            state = list(mdcsan_neuron(_Identity(), x, *state, window))
        volts.append(state[1])
        spikes.append(state[2])
    return torch.stack(spikes), torch.stack(volts)


# ---------------------------------------------------------------- the actors
class ReferenceActor(nn.Module):
    """Pop-SAN's ``PopSpikeActor`` (``system="popsan"``) or MDC-SAN's ``MDCSpikeActor``
    (``system="mdcsan"``, ``encode='pop'``, ``decode='fr-mlp'``, ``neurons='DN'``,
    ``connections='none'``).

    ``encoding``: ``"regular"`` or ``"poisson"`` for Pop-SAN (``forward`` then needs the spikes,
    ``[B, N, T]``), ``"analog"`` for MDC-SAN.
    """

    def __init__(self, system: str, obs_dim: int, act_dim: int, en_pop_dim: int = 10, de_pop_dim: int = 10,
                 hidden_sizes: Sequence[int] = (256, 256), mean_range: tuple[float, float] = (-3, 3),
                 std: float = math.sqrt(0.15), spike_ts: int = 5, act_limit: float = 1.0,
                 encoding: str | None = None, window: Window | None = None) -> None:
        super().__init__()
        if system not in ("popsan", "mdcsan"):
            raise ValueError(system)
        self.system = system
        self.encoding = encoding or ("regular" if system == "popsan" else "analog")
        self.obs_dim, self.act_dim, self.en_pop_dim, self.de_pop_dim = obs_dim, act_dim, en_pop_dim, de_pop_dim
        self.spike_ts, self.act_limit = spike_ts, act_limit
        self.window = window or SEED_WINDOWS["rectangular"]
        # popsan.py:56-63 / mdcsan.py:78-86: evenly spaced means, constant std
        mean = torch.zeros(1, obs_dim, en_pop_dim)
        delta = (mean_range[1] - mean_range[0]) / (en_pop_dim - 1)
        for k in range(en_pop_dim):
            mean[0, :, k] = mean_range[0] + delta * k
        self.mean = nn.Parameter(mean)
        self.std = nn.Parameter(torch.zeros(1, obs_dim, en_pop_dim) + std)
        # popsan.py:171-175 / mdcsan.py:226-230
        sizes = [obs_dim * en_pop_dim, *hidden_sizes]
        self.hidden = nn.ModuleList(nn.Linear(i, o) for i, o in itertools.pairwise(sizes))
        self.out_pop = nn.Linear(hidden_sizes[-1], act_dim * de_pop_dim)
        # popsan.py:125 / mdcsan.py:189
        self.decoder = nn.Conv1d(act_dim, act_dim, de_pop_dim, groups=act_dim)

    # ---- encoder
    def stimulus(self, obs: Tensor) -> Tensor:
        """popsan.py:71-73: ``[B, O * P]``."""
        obs = obs.view(-1, self.obs_dim, 1)
        return torch.exp(-(1. / 2.) * (obs - self.mean).pow(2) / self.std.pow(2)).view(
            -1, self.obs_dim * self.en_pop_dim)

    def encode(self, obs: Tensor, spikes: Tensor | None = None) -> Tensor:
        """The first layer's input ``[B, N, T]``."""
        act = self.stimulus(obs)
        batch = act.shape[0]
        out = torch.zeros(batch, act.shape[1], self.spike_ts)
        if self.encoding == "regular":  # popsan.py:74-81
            volt = torch.zeros(batch, act.shape[1])
            for t in range(self.spike_ts):
                volt = volt + act
                out[:, :, t] = _ThresholdIdentity.apply(volt, POPSAN_ENCODER_VTH)
                volt = volt - out[:, :, t] * POPSAN_ENCODER_VTH
        elif self.encoding == "poisson":  # popsan.py:107-111, with the spikes given
            if spikes is None:
                raise ValueError("Poisson encoding needs the spikes [B, N, T]")
            for t in range(self.spike_ts):
                out[:, :, t] = _GivenSpikesIdentity.apply(act, spikes[:, :, t])
        else:  # mdcsan.py:172-179
            for t in range(self.spike_ts):
                out[:, :, t] = act
        return out

    # ---- the spiking MLP and decoder
    def forward(self, obs: Tensor, spikes: Tensor | None = None, record: list | None = None) -> Tensor:
        """Actions ``[B, A]``; ``record`` (a list) receives each layer's spikes ``[B, F, T]``."""
        inputs = self.encode(obs, spikes)
        batch = inputs.shape[0]
        n_state = 3 if self.system == "popsan" else 4
        layers = [*self.hidden, self.out_pop]
        states = [[torch.zeros(batch, layer.out_features) for _ in range(n_state)] for layer in layers]
        trains: list[list[Tensor]] = [[] for _ in layers]
        for t in range(self.spike_ts):
            x = inputs[:, :, t]
            for i, layer in enumerate(layers):
                if self.system == "popsan":
                    states[i] = list(popsan_neuron(layer, x, *states[i], self.window))
                else:
                    states[i] = list(mdcsan_neuron(layer, x, *states[i], self.window))
                x = states[i][2]
                trains[i].append(x)
        out_act = torch.zeros(batch, self.act_dim * self.de_pop_dim)
        for s in trains[-1]:
            out_act += s
        out_act = out_act / self.spike_ts  # popsan.py:223-224 / mdcsan.py:299-306
        if record is not None:
            record.extend(torch.stack(tr, -1) for tr in trains)
        raw = torch.tanh(self.decoder(out_act.view(-1, self.act_dim, self.de_pop_dim)).view(-1, self.act_dim))
        return self.act_limit * raw  # popsan.py:262 / mdcsan.py:349

    # ---- weights in and out
    def load_plain(self, plain: dict[str, Tensor]) -> None:
        with torch.no_grad():
            for name, param in self._plain_params().items():
                if param.shape != plain[name].shape:
                    raise ValueError(f"{name}: reference shape {tuple(param.shape)}, given {tuple(plain[name].shape)}")
                param.copy_(plain[name])

    def plain_grads(self) -> dict[str, Tensor]:
        return {name: p.grad.clone() for name, p in self._plain_params().items()}

    def _plain_params(self) -> dict[str, nn.Parameter]:
        out = {"encoder.mean": self.mean, "encoder.std": self.std}
        for i, layer in enumerate(self.hidden):
            out[f"hidden.{i}.weight"], out[f"hidden.{i}.bias"] = layer.weight, layer.bias
        out.update({"out_pop.weight": self.out_pop.weight, "out_pop.bias": self.out_pop.bias,
                    "decoder.weight": self.decoder.weight, "decoder.bias": self.decoder.bias})
        return out


# ---------------------------------------------------------------- our actor <-> the plain layout
def _our_parts(actor: nn.Module) -> dict[str, nn.Parameter]:
    """Our ``PopSpikingActor``'s parameters under the plain names."""
    snn = actor.snn
    enc = snn.encoder  # PopulationInput: the encoder and the first synapse
    linears = [enc.linear, *(m for m in snn.layers if isinstance(m, nn.Linear))]
    out = {"encoder.mean": enc.encoder.mean, "encoder.std": enc.encoder.std}
    for i, layer in enumerate(linears[:-1]):
        out[f"hidden.{i}.weight"], out[f"hidden.{i}.bias"] = layer.weight, layer.bias
    out.update({"out_pop.weight": linears[-1].weight, "out_pop.bias": linears[-1].bias,
                "decoder.weight": snn.readout.weight, "decoder.bias": snn.readout.bias})
    return out


def _to_plain(name: str, value: Tensor, act_dim: int) -> Tensor:
    if name.startswith("encoder."):
        return value.detach().clone().unsqueeze(0)  # [O, P] -> [1, O, P]
    if name == "decoder.weight":
        return value.detach().clone().unsqueeze(1)  # [A, Q] -> [A, 1, Q]
    return value.detach().clone()


def plain_from_actor(actor: nn.Module) -> dict[str, Tensor]:
    """Our actor's weights in the reference layout."""
    act_dim = actor.snn.readout.act_dim
    return {name: _to_plain(name, p, act_dim) for name, p in _our_parts(actor).items()}


def actor_grads_as_plain(actor: nn.Module) -> dict[str, Tensor]:
    """Our actor's gradients in the reference layout."""
    act_dim = actor.snn.readout.act_dim
    return {name: _to_plain(name, p.grad, act_dim) for name, p in _our_parts(actor).items()}


def our_layer_spikes(actor: nn.Module, obs: Tensor, deterministic: bool = False) -> list[Tensor]:
    """Each neuron layer's spikes ``[B, F, T]`` of our actor, layer by layer (what
    ``SpikingNetwork.spike_trains`` computes, with every neuron layer's output kept)."""
    snn = actor.snn
    h = snn.encoder(obs, snn.num_steps, deterministic)
    out = []
    for layer in snn.layers:
        h = layer(h) if not isinstance(layer, nn.Linear) else layer(h.flatten(0, 1)).unflatten(0, (snn.num_steps, -1))
        if not isinstance(layer, nn.Linear):
            out.append(h.permute(1, 2, 0))
    return out
