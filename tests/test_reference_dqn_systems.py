r"""The Q-network presets against independent re-implementations of their authors' code.

``tests/reference/`` re-implements, from reading the released code, the forward of
Ghoreishee et al. 2025's DATSQN / DTSQN / binary DSQN (``reference.datsqn``) and of spikingjelly's
DSQN example (``reference.dsqn_spikingjelly``). Here

* the references are checked on trajectories worked by hand (one neuron, three steps) and, for
  DSQN, against spikingjelly's own modules when spikingjelly is installed;
* each preset (``DQN(SpikingCnnQPolicy, env, policy_kwargs=dict(preset=NAME))``) gets the
  reference's architecture, and, given identical weights and identical input (the spikes our
  encoder drew; DSQN's analog frame), the same spikes in every layer at every step (exactly), the
  same Q-values over T (to 1e-5, see :data:`RTOL`) and greedy actions, and the same gradients of
  SB3's smooth-L1 TD loss, :math:`\theta^-` included, with the target network's weights and
  :math:`\theta^-` copied too.

These tests found four gaps in the first presets (the summed ternary surrogate, the softplus θ⁻,
snnTorch's LIF in place of spikingjelly's, SB3's /255 for DSQN's /256); all are closed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference.datsqn import GhoreisheeQNetwork, ghoreishee_neuron_step
from reference.dsqn_spikingjelly import ChenDSQN, sj_decode, sj_lif_step, sj_output_membranes
from torch import nn

#: Q-values and gradients are compared to this relative tolerance (scaled by the largest entry of
#: the compared tensor, see :func:`_close`): not exactly, because our body folds time into the batch
#: of each convolution (a batch of T*B, not T convolutions of B) and the linear read-outs are
#: computed in another order (``W Σ_t s_t + T b`` for ``Σ_t (W s_t + b)``), which changes the last
#: bits of float32 sums. The spikes themselves are compared exactly.
RTOL = 1e-5

ATARI_NAMES = ("datsqn", "dtsqn", "dsqn_binary", "dsqn")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _atan_grad(x: float) -> float:
    """snnTorch's / spikingjelly's arctan surrogate with alpha = 2: 1 / (1 + (pi x)^2)."""
    return 1.0 / (1.0 + (math.pi * x) ** 2)


def _close(actual: torch.Tensor, expected: torch.Tensor, what: str, rtol: float = RTOL) -> None:
    scale = max(float(expected.detach().abs().max()), 1.0) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale, msg=lambda m: f"{what}: {m}")


# ---------------------------------------------------------------- the references, worked by hand

def _run_ghoreishee(kind: str, currents: list[float], neg: float = 2.0):
    """One neuron of ``kind`` over the given input currents: spikes, membranes, and the gradients of
    L = Σ_t S_t with respect to the currents and θ⁻."""
    inputs = torch.tensor(currents, requires_grad=True)
    neg_raw = torch.tensor([neg], requires_grad=True) if kind == "datsqn" else None
    beta = torch.tensor(0.9)
    mem, spike = torch.zeros(1), torch.zeros(1)
    spikes, mems = [], []
    for t in range(len(currents)):
        spike, mem = ghoreishee_neuron_step(kind, inputs[t:t + 1], mem, spike, beta, 1.0, neg_raw)
        spikes.append(spike)
        mems.append(mem)
    torch.cat(spikes).sum().backward()
    neg_grad = None if neg_raw is None else float(neg_raw.grad)
    return torch.cat(spikes).tolist(), torch.cat(mems).tolist(), inputs.grad.tolist(), neg_grad


def test_reference_datsqn_neuron_by_hand():
    # beta 0.9, θ⁺ = 1, θ⁻ = 2, inputs 1.5, -3, 0.5:
    #   t1: U = 1.5                        > θ⁺  -> S = +1
    #   t2: U = 0.9*1.5 - 3 - θ⁺ = -2.65   < -θ⁻ -> S = -1   (S1 = +1 subtracts θ⁺)
    #   t3: U = 0.9*-2.65 + 0.5 + θ⁻ = 0.115     -> S = 0    (S2 = -1 adds θ⁻)
    # surrogate at the shifted membrane of the membrane's side (ONE term, not one per threshold):
    #   m = U - θ⁺ = 0.5, U + θ⁻ = -0.65, U - θ⁺ = -0.885;  g_t = 1 / (1 + (pi m_t)^2)
    # L = Σ S: dL/dI3 = g3, dL/dI2 = g2 + 0.9 g3, dL/dI1 = g1 + 0.9 g2 + 0.81 g3 (detached reset)
    #   dL/dθ⁻ = g2 (θ⁻ shifts the spike of the negative U2) + g3 (θ⁻ added back into U3)
    spikes, mems, grads, neg_grad = _run_ghoreishee("datsqn", [1.5, -3.0, 0.5])
    assert spikes == [1.0, -1.0, 0.0]
    assert mems == pytest.approx([1.5, -2.65, 0.115], abs=1e-6)
    g1, g2, g3 = _atan_grad(0.5), _atan_grad(-0.65), _atan_grad(0.115 - 1.0)
    assert grads == pytest.approx([g1 + 0.9 * g2 + 0.81 * g3, g2 + 0.9 * g3, g3], rel=1e-5)
    assert neg_grad == pytest.approx(g2 + g3, rel=1e-5)
    # strict thresholds: U = θ⁺ exactly and U = -θ⁻ exactly do not fire
    assert _run_ghoreishee("datsqn", [1.0])[0] == [0.0]
    assert _run_ghoreishee("datsqn", [-2.0])[0] == [0.0]
    # the spike compares with θ⁻ clamped to [0, 10], the reset adds the raw θ⁻ (DATSQN_train.py l.124, l.162)
    spikes, mems, _, neg_grad = _run_ghoreishee("datsqn", [-12.0, 0.0], neg=11.0)
    assert spikes == [-1.0, 0.0]  # -12 < -clamp(11) = -10
    assert mems == pytest.approx([-12.0, 0.9 * -12.0 + 11.0], abs=1e-5)  # +11, not +10
    # dθ⁻: the clamp passes no gradient at 11 (only the reset's +θ⁻ into U2 does: g(U2 - θ⁺))
    assert neg_grad == pytest.approx(_atan_grad(0.9 * -12.0 + 11.0 - 1.0), rel=1e-5)


def test_reference_dtsqn_neuron_by_hand():
    # θ⁻ = θ⁺ = 1, inputs 1.5, -3, 0.5: U = 1.5 (+1), 1.35 - 3 - 1 = -2.65 (-1), -2.385 + 0.5 + 1 = -0.885 (0)
    spikes, mems, grads, neg_grad = _run_ghoreishee("dtsqn", [1.5, -3.0, 0.5])
    assert spikes == [1.0, -1.0, 0.0]
    assert mems == pytest.approx([1.5, -2.65, -0.885], abs=1e-6)
    g1, g2, g3 = _atan_grad(0.5), _atan_grad(-2.65 + 1.0), _atan_grad(-0.885 + 1.0)
    assert grads == pytest.approx([g1 + 0.9 * g2 + 0.81 * g3, g2 + 0.9 * g3, g3], rel=1e-5)
    assert neg_grad is None


def test_reference_binary_neuron_by_hand():
    # θ = 1, inputs 1.5, 0.2, 0.9: U = 1.5 (1), 1.35 + 0.2 - 1 = 0.55 (0), 0.495 + 0.9 = 1.395 (1)
    spikes, mems, grads, _ = _run_ghoreishee("dsqn_binary", [1.5, 0.2, 0.9])
    assert spikes == [1.0, 0.0, 1.0]
    assert mems == pytest.approx([1.5, 0.55, 1.395], abs=1e-6)
    g1, g2, g3 = _atan_grad(0.5), _atan_grad(-0.45), _atan_grad(0.395)
    assert grads == pytest.approx([g1 + 0.9 * g2 + 0.81 * g3, g2 + 0.9 * g3, g3], rel=1e-5)
    # no negative spikes, and U = θ exactly does not fire (strict >)
    assert _run_ghoreishee("dsqn_binary", [-5.0, 1.0 + 0.9 * 5.0])[0] == [0.0, 0.0]


def test_reference_spikingjelly_lif_by_hand():
    # tau 2, V_th 1, V_reset 0, inputs 2, 1, 3:
    #   t1: H = 0 + (2 - 0)/2 = 1.0  >= 1 -> S = 1, V = 0 (hard reset)
    #   t2: H = 0 + (1 - 0)/2 = 0.5        -> S = 0, V = 0.5
    #   t3: H = 0.5 + (3 - 0.5)/2 = 1.75   -> S = 1, V = 0
    # L = Σ S: dL/dH3 = g(0.75), dL/dH2 = g(-0.5) + (1 - S2) (1 - 1/tau) dL/dH3, dL/dH1 = g(0) (S1 = 1 cuts
    # the membrane path: V1 = (1 - sg(S1)) H1), and dH_t/dX_t = 1/tau
    x = torch.tensor([2.0, 1.0, 3.0], requires_grad=True)
    v = torch.zeros(1)
    spikes, hs = [], []
    for t in range(3):
        spike, v, h = sj_lif_step(x[t:t + 1], v)
        spikes.append(spike)
        hs.append(h)
    torch.cat(spikes).sum().backward()
    assert torch.cat(spikes).tolist() == [1.0, 0.0, 1.0]
    assert torch.cat(hs).tolist() == [1.0, 0.5, 1.75]
    dh3 = _atan_grad(0.75)
    dh2 = _atan_grad(-0.5) + 0.5 * dh3
    dh1 = _atan_grad(0.0)
    assert x.grad.tolist() == pytest.approx([0.5 * dh1, 0.5 * dh2, 0.5 * dh3], rel=1e-6)


def test_reference_spikingjelly_output_decoders_by_hand():
    # non-spiking LIF, tau 2: V = 0.5, 0.5 + (2 - 0.5)/2 = 1.25, 1.25 + (-1 - 1.25)/2 = 0.125
    membranes = sj_output_membranes(torch.tensor([[1.0], [2.0], [-1.0]]))
    assert membranes.flatten().tolist() == [0.5, 1.25, 0.125]
    assert sj_decode(membranes, "max-mem").item() == 1.25
    assert sj_decode(membranes, "mean-mem").item() == pytest.approx(0.625)
    assert sj_decode(membranes, "last_mem").item() == 0.125
    neg = sj_output_membranes(torch.tensor([[-4.0], [1.0]]))  # -2, -0.5: |min| wins
    assert sj_decode(neg, "max-abs-mem").item() == -2.0
    with pytest.raises(ValueError, match="last_mem"):
        sj_decode(membranes, "last-mem")  # train.py's help spelling matches no decoder


@pytest.mark.parametrize("kind", ["datsqn", "dtsqn", "dsqn_binary"])
def test_reference_ghoreishee_q_is_the_sum_of_output_currents(kind):
    """Q = Σ_{t=1..T} (W s_t + b) (DATSQN_train.py l.205-207), not a mean and not a membrane."""
    torch.manual_seed(0)
    ref = GhoreisheeQNetwork(kind, n_actions=3, num_steps=4)
    spikes = (torch.rand(4, 2, 4, 84, 84) < 0.5).float()
    q, trace = ref.forward_spikes(spikes, trace=True)
    last = trace["spikes"][-1]
    expected = last.sum(0) @ ref.out.weight.T + 4 * ref.out.bias
    _close(q, expected, "Q")
    _close(q, trace["currents"].sum(0), "Q")


# ---------------------------------------------------------------- the DSQN reference against spikingjelly

def _spikingjelly_dsqn(n_actions: int, T: int, decode: str):
    """spikingjelly's DSQN network as utils/model.py builds it (membrane decoders), multi-step."""
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif():
        return neuron.LIFNode(surrogate_function=surrogate.ATan(), detach_reset=True)

    network = nn.Sequential(
        layer.Conv2d(4, 32, kernel_size=8, stride=4), lif(),
        layer.Conv2d(32, 64, kernel_size=4, stride=2), lif(),
        layer.Conv2d(64, 64, kernel_size=3, stride=1), lif(),
        layer.Flatten(), layer.Linear(64 * 7 * 7, 512), lif(),
        layer.Linear(512, n_actions), neuron.NonSpikingLIFNode(decode=decode))
    functional.set_step_mode(network, step_mode="m")
    return network, functional


@pytest.mark.parametrize("decode", ["max-mem", "mean-mem", "last_mem"])
def test_reference_dsqn_matches_spikingjelly(decode):
    torch.manual_seed(0)
    ref = ChenDSQN(n_actions=4, num_steps=8, decode=decode)
    _activate(ref, seed=1, dsqn=True)
    network, functional = _spikingjelly_dsqn(4, 8, decode)
    network.load_state_dict(ref.spikingjelly_state_dict())
    frame = torch.randint(0, 256, (2, 4, 84, 84)).float()
    x = frame / 256
    q_ref, trace = ref(x, trace=True)
    functional.reset_net(network)
    q_sj = network(x.unsqueeze(0).expand(8, -1, -1, -1, -1))
    assert _spike_rates(trace["spikes"])[-1] > 0.01  # the test is not vacuous: the last layer fires
    _close(q_ref, q_sj, "Q vs spikingjelly", rtol=1e-6)
    target = torch.randn_like(q_ref)
    F.smooth_l1_loss(q_ref, target).backward()
    F.smooth_l1_loss(q_sj, target).backward()
    sj_grads = {k: p.grad for k, p in network.named_parameters()}
    for key, grad in ref.plain_grads().items():
        sj_key = {"conv1": "0", "conv2": "2", "conv3": "4", "fc": "7", "out": "9"}[key.split(".")[0]]
        _close(grad, sj_grads[f"{sj_key}.{key.split('.')[1]}"], f"d{key} vs spikingjelly", rtol=1e-6)
    functional.reset_net(network)


def test_reference_lif_matches_spikingjelly_lifnode():
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, neuron, surrogate

    node = neuron.LIFNode(surrogate_function=surrogate.ATan(), detach_reset=True, step_mode="m")
    x = (torch.randn(16, 50) * 1.5 + 0.8).requires_grad_()
    out_sj = node(x)
    functional.reset_net(node)
    x_ref = x.detach().clone().requires_grad_()
    v, out = torch.zeros(50), []
    for t in range(16):
        spike, v, _ = sj_lif_step(x_ref[t], v)
        out.append(spike)
    out_ref = torch.stack(out)
    assert torch.equal(out_ref, out_sj)
    weights = torch.randn(16, 50)
    (out_sj * weights).sum().backward()
    (out_ref * weights).sum().backward()
    _close(x_ref.grad, x.grad, "dx vs spikingjelly", rtol=1e-6)


# ---------------------------------------------------------------- our presets against the references

def _preset_model(name: str):
    """``DQN(SpikingCnnQPolicy, FakeImageEnv 4x84x84, policy_kwargs=dict(preset=name))``, or a skip."""
    presets = pytest.importorskip("snnrl_sb3.presets", reason="snnrl_sb3.presets does not exist yet")
    if name not in getattr(presets, "PRESETS", {}):
        pytest.skip(f"snnrl_sb3.presets has no preset {name!r} yet")
    from stable_baselines3 import DQN
    from stable_baselines3.common.envs import FakeImageEnv

    from snnrl_sb3 import SpikingCnnQPolicy

    env = FakeImageEnv(screen_height=84, screen_width=84, n_channels=4, discrete=True, channel_first=True)
    return DQN(SpikingCnnQPolicy, env, policy_kwargs=dict(preset=name), buffer_size=1, learning_starts=0,
               device="cpu", seed=0)


def _reference_for(name: str, n_actions: int):
    if name == "dsqn":
        return ChenDSQN(n_actions, num_steps=8, decode="max-mem")
    return GhoreisheeQNetwork(name, n_actions, num_steps=20)


def _synapses(net) -> list[nn.Module]:
    """Our network's synaptic layers in order: the body's, then the read-out's."""
    body = [m for m in net.layers if isinstance(m, (nn.Conv2d, nn.Linear))]
    return body + [m for m in net.readout.modules() if isinstance(m, nn.Linear)]


def _neurons(net) -> list[nn.Module]:
    from snnrl_sb3.kernels import MultiStepNeuron

    return [m for m in net.layers if isinstance(m, MultiStepNeuron)]


def _trainable_neg(neuron) -> tuple[torch.Tensor, nn.Parameter] | None:
    """``(θ⁻ value, the parameter it is computed from)`` of a neuron with a trainable θ⁻, else ``None``."""
    value = getattr(neuron, "neg_threshold", None)
    params = [p for p in neuron.parameters() if p.requires_grad]
    if value is None or not params:
        return None
    assert len(params) == 1 and params[0].numel() == 1, "one scalar θ⁻ parameter per neuron layer"
    return value, params[0]


def plain_from_ours(net, with_neg: bool) -> dict[str, torch.Tensor]:
    """Our network's weights (and θ⁻ values) under the references' plain keys."""
    names = ("conv1", "conv2", "conv3", "fc", "out")
    synapses = _synapses(net)
    assert len(synapses) == len(names), f"expected 3 conv + 2 linear synapses, got {synapses}"
    state = {}
    for name, layer in zip(names, synapses):
        assert layer.bias is not None, f"{name} has no bias (both references keep every bias)"
        state[f"{name}.weight"] = layer.weight.detach().clone()
        state[f"{name}.bias"] = layer.bias.detach().clone()
    if with_neg:
        for i, neuron in enumerate(_neurons(net), start=1):
            neg = _trainable_neg(neuron)
            assert neg is not None, f"neuron layer {i} has no trainable θ⁻"
            state[f"neuron{i}.neg_threshold"] = neg[0].detach().reshape(()).clone()
    return state


def plain_grads_from_ours(net, with_neg: bool) -> dict[str, torch.Tensor]:
    """Our gradients under the plain keys; θ⁻'s is dL/dθ⁻ (chain rule through its parametrisation)."""
    names = ("conv1", "conv2", "conv3", "fc", "out")
    grads = {}
    for name, layer in zip(names, _synapses(net)):
        grads[f"{name}.weight"], grads[f"{name}.bias"] = layer.weight.grad, layer.bias.grad
    if with_neg:
        for i, neuron in enumerate(_neurons(net), start=1):
            value, param = _trainable_neg(neuron)
            (dvalue_dparam,) = torch.autograd.grad(value.sum(), param)
            grads[f"neuron{i}.neg_threshold"] = (param.grad / dvalue_dparam).reshape(())
    return grads


@torch.no_grad()
def _activate(net, seed: int, dsqn: bool) -> None:
    """Weights under which every layer fires (10-50%: normal, std gain/sqrt(fan_in), small biases):
    PyTorch's default init leaves the deep layers of these bodies silent, and a silent layer would
    make the test vacuous. spikingjelly's LIF halves its input (1/tau), so DSQN gets larger gains."""
    gen = torch.Generator().manual_seed(seed)
    layers = _synapses(net) if hasattr(net, "layers") else [net.conv1, net.conv2, net.conv3, net.fc, net.out]
    gains = (4.0, 6.0, 6.0, 6.0, 1.0) if dsqn else (2.0, 3.0, 3.0, 3.0, 1.0)
    for layer, gain in zip(layers, gains):
        fan_in = layer.weight[0].numel()
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * gain / math.sqrt(fan_in))
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen) * 0.1)


def _spike_rates(spikes: list[torch.Tensor]) -> list[float]:
    return [float(s.detach().abs().mean()) for s in spikes]


class _Capture:
    """Forward hooks keeping (a copy of) what the encoder and each neuron layer of a network output."""

    def __init__(self, net) -> None:
        self.encoder: torch.Tensor | None = None
        self.spikes: list[torch.Tensor] = []
        self.handles = [net.encoder.register_forward_hook(self._encoder)]
        self.handles += [n.register_forward_hook(self._neuron) for n in _neurons(net)]

    def _encoder(self, module, args, out):
        self.encoder = out.detach().clone()
        self.spikes = []

    def _neuron(self, module, args, out):
        self.spikes.append(out.detach().clone())

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _frames(n: int, seed: int) -> torch.Tensor:
    """uint8 frames with every value 0..255, and some all-black / all-white regions."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 4, 84, 84), generator=gen, dtype=torch.uint8)
    frames[:, :, :10] = 0
    frames[:, :, -10:] = 255
    return frames


def _reference_q(ref, name: str, captured: torch.Tensor):
    """The reference's Q (and trace) on the input our encoder produced."""
    if name == "dsqn":
        return ref(captured, trace=True)
    return ref.forward_spikes(captured, trace=True)


def _paired(name: str, seed: int = 0):
    """A preset model (weights made active) and the reference holding its online weights."""
    model = _preset_model(name)
    net = model.policy.q_net.q_net
    _activate(net, seed, dsqn=name == "dsqn")
    ref = _reference_for(name, int(model.action_space.n))
    ref.load_plain(plain_from_ours(net, with_neg=name == "datsqn"))
    return model, net, ref


@pytest.mark.parametrize("name", ATARI_NAMES)
def test_preset_architecture_and_init_match_reference(name):
    model = _preset_model(name)
    net = model.policy.q_net.q_net
    ref = _reference_for(name, int(model.action_space.n))
    assert net.num_steps == ref.num_steps
    ours, theirs = _synapses(net), [ref.conv1, ref.conv2, ref.conv3, ref.fc, ref.out]
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    for a, b in zip(ours, theirs):
        assert a.weight.shape == b.weight.shape and (a.bias is None) == (b.bias is None)
        if isinstance(a, nn.Conv2d):
            assert (a.kernel_size, a.stride, a.padding) == (b.kernel_size, b.stride, b.padding)
        # PyTorch's default init (both references): weights and biases uniform in ±1/sqrt(fan_in)
        bound = 1 / math.sqrt(a.weight[0].numel())
        w, b = a.weight.detach(), a.bias.detach()
        assert float(w.abs().max()) <= bound and float(b.abs().max()) <= bound
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert len(_neurons(net)) == 4
    negs = [_trainable_neg(n) for n in _neurons(net)]
    if name == "datsqn":  # one trainable θ⁻ per neuron layer, starting at 2
        assert all(neg is not None and float(neg[0].detach()) == pytest.approx(2.0, abs=1e-6) for neg in negs)
    else:
        assert all(neg is None for neg in negs)


@pytest.mark.parametrize("name", ATARI_NAMES)
def test_preset_spikes_and_q_over_time_match_reference(name):
    model, net, ref = _paired(name)
    q_net = model.policy.q_net
    capture = _Capture(net)
    obs = _frames(2, seed=3)
    with torch.no_grad():
        q_ours = q_net(obs)
        q_ref, trace = _reference_q(ref, name, capture.encoder)
        ours_last = capture.spikes[-1]
        # Q over time: the read-out of the first t steps (the body is causal) against the reference's
        q_ours_t = torch.stack([net.readout(ours_last[:t]) for t in range(1, net.num_steps + 1)])
    capture.close()
    rates = _spike_rates(trace["spikes"])
    assert min(rates) > 0.01, f"a reference layer is (almost) silent: {rates}"
    for i, (ours_s, ref_s) in enumerate(zip(capture.spikes, trace["spikes"])):
        assert ours_s.shape == ref_s.shape, f"layer {i + 1}"
        mismatch = float((ours_s != ref_s).float().mean())
        assert mismatch == 0.0, f"layer {i + 1}: {mismatch:.2%} of the spikes differ from the reference's"
    if name == "dsqn":
        q_ref_t = torch.stack([trace["membranes"][:t].max(0).values for t in range(1, net.num_steps + 1)])
    else:
        q_ref_t = trace["currents"].cumsum(0)
    _close(q_ours, q_ref, "Q")
    _close(q_ours_t, q_ref_t, "Q over t = 1..T")
    assert torch.equal(q_ours_t.argmax(-1), q_ref_t.argmax(-1)), "greedy actions over t"


def _td_loss_backward(name: str):
    """Our preset and the reference, given identical online and target weights (the target differs from
    the online network, θ⁻ included), after the backward of SB3's TD loss on identical input; checks
    the target Q and the loss agree. Returns ``(net, ref)``."""
    model, net, ref = _paired(name)
    policy = model.policy
    target_net = policy.q_net_target.q_net
    with torch.no_grad():
        gen = torch.Generator().manual_seed(7)
        for p in target_net.parameters():
            p.add_(0.05 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    ref_target = _reference_for(name, int(model.action_space.n))
    ref_target.load_plain(plain_from_ours(target_net, with_neg=name == "datsqn"))
    obs, next_obs = _frames(2, seed=4), _frames(2, seed=5)
    actions = torch.tensor([[1], [4]])
    rewards, dones, gamma = torch.tensor([[1.0], [0.0]]), torch.tensor([[0.0], [1.0]]), 0.99

    def td_loss(q, q_next):  # SB3's DQN.train
        target = rewards + (1 - dones) * gamma * q_next.max(dim=1, keepdim=True).values
        return F.smooth_l1_loss(q.gather(1, actions), target)

    capture, capture_target = _Capture(net), _Capture(target_net)
    with torch.no_grad():
        q_next = policy.q_net_target(next_obs)
    loss = td_loss(policy.q_net(obs), q_next)
    policy.optimizer.zero_grad()
    loss.backward()
    capture.close()
    capture_target.close()
    with torch.no_grad():
        q_next_ref = _reference_q(ref_target, name, capture_target.encoder)[0]
    loss_ref = td_loss(_reference_q(ref, name, capture.encoder)[0], q_next_ref)
    loss_ref.backward()
    _close(q_next, q_next_ref, "target Q")
    _close(loss.detach(), loss_ref.detach(), "TD loss")
    return net, ref


@pytest.mark.parametrize("name", ATARI_NAMES)
def test_preset_td_loss_gradients_match_reference(name):
    net, ref = _td_loss_backward(name)
    ours = plain_grads_from_ours(net, with_neg=name == "datsqn")
    theirs = ref.plain_grads()
    assert set(ours) == set(theirs)
    assert float(theirs["conv1.weight"].abs().max()) > 0, "the gradient reaches the first layer"
    for key in theirs:
        _close(ours[key], theirs[key], f"dL/d{key}")


@pytest.mark.parametrize("name", ["datsqn"])
def test_datsqn_preset_trains_theta_minus_like_reference(name):
    """One Adam step (lr 0.1, large enough to show a reparametrisation) moves θ⁻ as the reference's does."""
    net, ref = _td_loss_backward(name)
    ours = [_trainable_neg(n)[1] for n in _neurons(net)]
    torch.optim.Adam(ours, lr=0.1).step()
    torch.optim.Adam([n.neg_threshold for n in ref.neurons], lr=0.1).step()
    after_ours, after_ref = plain_from_ours(net, with_neg=True), ref.plain_state()
    for key in ref.neg_keys():
        _close(after_ours[key], after_ref[key], f"{key} after one Adam step")


@pytest.mark.parametrize("name", ["datsqn", "dtsqn", "dsqn_binary"])
def test_bernoulli_presets_rate_code_frame_over_255_with_fresh_noise_when_greedy(name):
    """snntorch.spikegen.rate(x / 255, 20) in the reference's forward: a fresh draw at every step and
    every call, also when DATSQN_test.py acts greedily (epsilon 0)."""
    model = _preset_model(name)
    net = model.policy.q_net.q_net
    capture = _Capture(net)
    obs = _frames(1, seed=6)
    drawn = []
    for _ in range(2):
        with torch.no_grad():
            model.policy.q_net._predict(obs, deterministic=True)
        drawn.append(capture.encoder)
    capture.close()
    spikes = drawn[0]
    assert spikes.shape == (20, *obs.shape)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(drawn[0], drawn[1]), "greedy acting must draw fresh noise (DATSQN_test.py)"
    assert not torch.equal(spikes[0], spikes[1]), "a fresh draw at every step"
    assert float(spikes[:, obs == 0].max()) == 0.0 and float(spikes[:, obs == 255].min()) == 1.0
    p = obs.float() / 255
    rate = spikes.mean(0)
    assert float((rate - p).mean().abs()) < 0.005  # Bernoulli(p) on average over 28k pixels


@pytest.mark.parametrize("name", ["dsqn"])
def test_dsqn_preset_feeds_the_frame_over_256_at_every_step(name):
    """spikingjelly's example divides the frame by 256 (utils/common.py l.512-513), not SB3's 255."""
    model = _preset_model(name)
    net = model.policy.q_net.q_net
    capture = _Capture(net)
    obs = _frames(2, seed=8)
    with torch.no_grad():
        model.policy.q_net(obs)
    capture.close()
    fed = capture.encoder
    if fed.dim() == 5:  # a time-major encoder output: the same frame at every step
        assert all(torch.equal(fed[t], fed[0]) for t in range(fed.shape[0]))
        fed = fed[0]
    np.testing.assert_allclose(fed.numpy(), obs.float().numpy() / 256, rtol=1e-6, atol=0)
