r"""The faithful-preset neurons against independent re-implementations of their authors' code.

Both references below were written from reading the released code (not copied), with the same
torch operations in the same order, so that forward values round alike and autograd takes the
same paths:

* **DATSQN / DTSQN / binary DSQN** (Ghoreishee et al. 2025), ``github.com/Aref7792/DATSQN``,
  ``DATSQN_DTSQN_DSQN/DATSQN_train.py`` (line numbers below; DTSQN_train.py and DSQN_train.py
  differ only in the neuron): ``PseudoSpikeRect`` (l.82-100) and ``IF`` (l.109-162), built with
  ``beta=.9, threshold=1`` (l.271). Per step (``IF.forward``, l.145-155): the reset is the spike of
  the *incoming* membrane, recomputed and detached (``reset_mem``, l.123-127, called l.151); then
  :math:`U = \beta U + I - [r \ge 0]\, r\, \theta^+ - [r < 0]\, r\, \theta^-_{raw}` (``_base_sub``,
  l.161-162: the *raw* ``vthn``, unclamped, so gradient reaches it through the reset); then the
  spike of the new membrane (``fire``, l.137-141): the shifted membrane
  :math:`m = [U \ge 0](U - \theta^+) + [U < 0](U + \mathrm{clamp}(\theta^-_{raw}, 0, 10))` and the
  sign, :math:`S = [\mathrm{sign}\,U \ge 0][m > 0] - [\mathrm{sign}\,U < 0][m < 0]` (strict on both
  sides: +1 for :math:`U > \theta^+`, -1 for :math:`U < -\theta^-`), backward
  :math:`g / (1 + (\pi m)^2)` into ``m`` only (ATan, alpha = 2): one surrogate, on the side of the
  membrane's sign. ``vthn`` is ``nn.Parameter(ones(1) * 2)`` (l.115). DTSQN: ``vth`` on both sides,
  no parameter (DTSQN_train.py l.119, l.133, l.157). Binary: ``m = U - 1``, ``S = [m > 0]``, reset
  ``- r * vth`` (DSQN_train.py l.86, l.121, l.155).
* **spikingjelly's LIFNode** (``github.com/fangwei123456/spikingjelly``, as DSQN's example builds
  it, ``activation_based/examples/DSQN/utils/model.py`` l.17-24:
  ``LIFNode(surrogate_function=surrogate.ATan(), detach_reset=True)``, defaults ``tau=2.0``,
  ``decay_input=True``, ``v_threshold=1.0``, ``v_reset=0.0``), multi-step from ``v = 0``:
  ``functional/neuron.py`` ``lif_charge`` (l.851: :math:`H = V + (X - (V - V_{reset}))/\tau`),
  ``lif_step`` (l.931-933: charge, ``surrogate_function(H - v_threshold)``, reset at once) and
  ``voltage_reset`` (l.225-228: the spike detached, :math:`V = S V_{reset} + (1 - S) H`, or
  :math:`H - S \theta` for ``v_reset=None``); ``surrogate.py`` ``heaviside`` (l.60: ``x >= 0``) and
  the ATan backward (l.1286-1287: :math:`a / (1 + (\pi a x)^2)`, ``a = alpha / 2``, alpha 2).

Our kernels must give the same spikes (exactly), the same membranes (bit for bit, where the
reference's is the one compared) and the same gradients (input and θ⁻, to 1e-5). When spikingjelly
itself is installed (``pip install --no-deps spikingjelly==2.0.0 loguru``), the kind is also checked
against ``spikingjelly.activation_based.neuron.LIFNode``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snnrl_sb3.kernels import leaky, make_neuron, sj_leaky

# ---------------------------------------------------------------- DATSQN, DTSQN, binary DSQN


class _ShiftedSpike(torch.autograd.Function):
    """DATSQN's spike function (``PseudoSpikeRect``): the value from the shifted membrane and the sign,
    the arctan pseudo-gradient into the shifted membrane, nothing into the sign."""

    @staticmethod
    def forward(ctx, shifted, sign, binary):
        ctx.save_for_backward(shifted)
        if binary:  # DSQN_train.py l.86
            return (shifted > 0).float()
        positive, negative = (sign >= 0).float(), (sign < 0).float()
        return positive * (shifted > 0).float() - negative * (shifted < 0).float()

    @staticmethod
    def backward(ctx, grad):
        (shifted,) = ctx.saved_tensors
        return grad * (1.0 / (1.0 + (math.pi * shifted) ** 2)), None, None


class GhoreisheeNeuron(nn.Module):
    """One ``IF`` layer of DATSQN (``"datsqn"``), DTSQN (``"dtsqn"``) or binary DSQN (``"binary"``)."""

    def __init__(self, variant: str, beta: float = 0.9, vth: float = 1, neg_init: float = 2.0) -> None:
        super().__init__()
        self.variant = variant
        self.beta = torch.tensor(beta)
        self.vth = vth
        self.vthn = nn.Parameter(torch.ones(1) * neg_init) if variant == "datsqn" else None

    def _shifted(self, mem):
        if self.variant == "binary":
            return mem - self.vth
        neg = self.vthn.clamp(0, 10) if self.variant == "datsqn" else self.vth
        return (mem >= 0) * (mem - self.vth) + (mem < 0) * (mem + neg)

    def spike(self, mem):
        return _ShiftedSpike.apply(self._shifted(mem), torch.sign(mem), self.variant == "binary")

    def forward(self, currents):
        mem, out = torch.zeros_like(currents[0]), []
        for current in currents:
            r = self.spike(mem).clone().detach()  # the incoming membrane's spike
            charged = self.beta.clamp(0, 1) * mem + current
            if self.variant == "binary":
                mem = charged - r * self.vth
            else:
                neg_reset = self.vthn if self.variant == "datsqn" else self.vth
                mem = charged - (r >= 0).float() * r * self.vth - (r < 0).float() * r * neg_reset
            out.append(self.spike(mem))
        self.last_membranes = mem
        return torch.stack(out)

    def membranes(self, currents):
        with torch.no_grad():
            mem, out = torch.zeros_like(currents[0]), []
            for current in currents:
                r = self.spike(mem)
                charged = self.beta.clamp(0, 1) * mem + current
                if self.variant == "binary":
                    mem = charged - r * self.vth
                else:
                    neg_reset = self.vthn if self.variant == "datsqn" else self.vth
                    mem = charged - (r >= 0).float() * r * self.vth - (r < 0).float() * r * neg_reset
                out.append(mem)
            return torch.stack(out)


#: our kinds for the three neurons (the presets' neuron_kwargs; the surrogate is the default, ATan alpha 2)
OURS = {
    "datsqn": ("ternary", {"beta": 0.9, "threshold": 1.0, "neg_threshold": 2.0, "learn_neg_threshold": True,
                           "surrogate_branches": "sign", "neg_threshold_param": "clamped",
                           "neg_threshold_max": 10.0}),
    "dtsqn": ("symmetric_ternary", {"beta": 0.9, "threshold": 1.0, "surrogate_branches": "sign"}),
    "binary": ("lif", {"beta": 0.9, "threshold": 1.0}),
}


def _pair(variant: str, raw: float = 2.0):
    kind, params = OURS[variant]
    ours = make_neuron(kind, surrogate="atan", surrogate_kwargs={"alpha": 2.0}, **params)
    ref = GhoreisheeNeuron(variant)
    if variant == "datsqn":
        with torch.no_grad():
            ours.neg.raw.fill_(raw)
            ref.vthn.fill_(raw)
    return ours, ref


def _inputs(seed: int, steps: int, scale: float = 2.5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(steps, 16, 50, generator=gen) * scale


def _ours_membranes(neuron, x):
    neg = None if not neuron.ternary else float(neuron.neg_threshold.detach())
    neg_reset = float(neuron.neg.raw.detach()) if neuron.neg is not None else None
    return leaky.leaky_forward_eager(x, neuron.beta, neuron.threshold, neg, neg_reset)[1]


#: (variant, DATSQN's raw θ⁻): inside, on and past the clamp's bounds
GHOREISHEE_CASES = [("datsqn", 2.0), ("datsqn", 0.6), ("datsqn", 10.0), ("datsqn", 11.5), ("datsqn", -0.4),
                    ("dtsqn", 2.0), ("binary", 2.0)]


@pytest.mark.parametrize("variant,raw", GHOREISHEE_CASES)
@pytest.mark.parametrize("steps", [1, 5, 20])
def test_ghoreishee_neurons_match_their_code(variant, raw, steps):
    ours, ref = _pair(variant, raw)
    x = _inputs(steps + int(raw * 10), steps)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    s_ours, s_ref = ours(x_ours), ref(x_ref)
    assert torch.equal(s_ours, s_ref)  # spike for spike
    assert torch.equal(_ours_membranes(ours, x), ref.membranes(x))  # bit for bit
    if steps > 1:
        assert (s_ref == 1).any() and (variant == "binary" or (s_ref == -1).any())
    weights = torch.randn(s_ref.shape, generator=torch.Generator().manual_seed(1))
    (s_ours * weights).sum().backward()
    (s_ref * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    if variant == "datsqn":
        assert ours.neg.raw.grad.shape == () and ref.vthn.grad.shape == (1,)
        torch.testing.assert_close(ours.neg.raw.grad.reshape(1), ref.vthn.grad, rtol=1e-5, atol=1e-5)
        if steps > 1:
            assert ref.vthn.grad.abs().item() > 0  # θ⁻ learns: through the reset, and the clamp inside [0, 10]


def test_ghoreishee_neg_threshold_gradient_paths():
    """θ⁻'s gradient is the firing condition's (through the clamp, zero once saturated) plus the reset's
    (raw, never clamped): both references agree on each path separately."""
    x = _inputs(3, 12)
    for raw in (2.0, 12.0):
        ours, ref = _pair("datsqn", raw)
        ours(x).sum().backward()
        ref(x).sum().backward()
        torch.testing.assert_close(ours.neg.raw.grad.reshape(1), ref.vthn.grad, rtol=1e-5, atol=1e-5)
    # saturated: only the reset path is left, and it is not zero
    assert ref.vthn.grad.abs().item() > 0


def test_ghoreishee_neurons_match_with_the_numpy_and_compiled_forms():
    from snnrl_sb3.kernels import base

    x = torch.cat([_inputs(5, 20)] * 4, dim=1)  # 64 x 50 per step: above the NumPy form's size
    for variant in ("datsqn", "dtsqn", "binary"):
        ours, ref = _pair(variant, 1.3)
        with torch.no_grad():
            assert base.use_numpy(x[:, :1]) and not base.use_numpy(x)
            assert torch.equal(ours(x[:, :1]), ref(x[:, :1]))  # batch 1: the NumPy form
        compiled = make_neuron(OURS[variant][0], backend="compile", **OURS[variant][1])
        compiled.load_state_dict(ours.state_dict())
        x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        s_ours, s_ref = compiled(x_ours), ref(x_ref)
        assert torch.equal(s_ours, s_ref)
        s_ours.sum().backward()
        s_ref.sum().backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    if base.CompiledKernel.failed is not None:
        pytest.skip(f"torch.compile unavailable here, the eager fallback was tested: {base.CompiledKernel.failed}")


# ---------------------------------------------------------------- spikingjelly's LIFNode


class _SJSpike(torch.autograd.Function):
    """spikingjelly's ``surrogate.ATan``: heaviside ``x >= 0`` forward, :math:`a / (1 + (\\pi a x)^2)` back."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        half = ctx.alpha / 2
        return half / (1 + (math.pi * half * x) ** 2) * grad, None


def sj_lifnode(x_seq, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
               alpha: float = 2.0):
    """``LIFNode(tau, decay_input=True, v_threshold, v_reset, ATan(alpha), detach_reset=True)`` over
    ``x_seq[T, ...]`` from ``v = 0``: ``(spikes, charged)``."""
    base = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x_seq[0], base)
    spikes, charged = [], []
    for x in x_seq:
        h = v + (x - (v - base)) / tau
        spike = _SJSpike.apply(h - v_threshold, alpha)
        fired = spike.detach()
        v = h - fired * v_threshold if v_reset is None else fired * v_reset + (1.0 - fired) * h
        spikes.append(spike)
        charged.append(h)
    return torch.stack(spikes), torch.stack(charged)


SJ_CASES = [(2.0, 0.0), (3.0, 0.0), (2.0, None), (1.25, None)]


@pytest.mark.parametrize("tau,v_reset", SJ_CASES)
@pytest.mark.parametrize("steps", [1, 8, 30])
def test_sj_lif_matches_spikingjelly_lifnode_as_read(tau, v_reset, steps):
    reset = "zero" if v_reset == 0.0 else "subtract"
    neuron = make_neuron("sj_lif", tau=tau, reset=reset)
    x = _inputs(steps, steps, scale=2.0) + 0.8
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    s_ours = neuron(x_ours)
    s_ref, h_ref = sj_lifnode(x_ref, tau=tau, v_reset=v_reset)
    assert torch.equal(s_ours, s_ref)
    assert torch.equal(sj_leaky.sj_leaky_forward_eager(x, tau, 1.0, reset == "zero")[1], h_ref.detach())
    assert 0.05 < s_ref.mean() < 0.9
    weights = torch.randn(s_ref.shape, generator=torch.Generator().manual_seed(2))
    (s_ours * weights).sum().backward()
    (s_ref * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(neuron(x[:, :1]), s_ref[:, :1])  # batch 1: the NumPy form


@pytest.mark.parametrize("tau,v_reset", SJ_CASES)
def test_sj_lif_matches_spikingjelly_itself(tau, v_reset):
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, neuron, surrogate

    node = neuron.LIFNode(tau=tau, v_reset=v_reset, surrogate_function=surrogate.ATan(), detach_reset=True,
                          step_mode="m", store_v_seq=True)
    reset = "zero" if v_reset == 0.0 else "subtract"
    ours = make_neuron("sj_lif", tau=tau, reset=reset)
    x = _inputs(7, 30, scale=2.0) + 0.8
    x_sj, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    s_sj = node(x_sj)
    v_seq = node.v_seq.detach()
    functional.reset_net(node)
    s_ours = ours(x_ours)
    assert torch.equal(s_ours, s_sj)
    charged = sj_leaky.sj_leaky_forward_eager(x, tau, 1.0, reset == "zero")[1]
    after = (1.0 - s_sj.detach()) * charged if reset == "zero" else charged - s_sj.detach()
    assert torch.equal(after, v_seq)  # spikingjelly's state after the reset, bit for bit
    weights = torch.randn(s_sj.shape, generator=torch.Generator().manual_seed(3))
    (s_sj * weights).sum().backward()
    (s_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_sj.grad, rtol=1e-5, atol=1e-5)
    node.eval()  # spikingjelly's inference path (no surrogate): the same spikes
    with torch.no_grad():
        assert torch.equal(node(x), ours(x))
    functional.reset_net(node)
