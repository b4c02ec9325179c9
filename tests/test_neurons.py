import io
import pickle

import pytest
import snntorch as snn
import torch

from snnrl_sb3 import AsymmetricTernaryLeaky, CurrentLeaky, trapezoid
from snnrl_sb3.neurons import THRESHOLD_FLOOR


def run(neuron, inputs):
    mem = neuron.init_leaky()
    spikes, mems = [], []
    for x in inputs:
        spk, mem = neuron(torch.tensor([x]), mem)
        spikes.append(spk.item())
        mems.append(mem.item())
    return spikes, mems


def test_asymmetric_trajectory_matches_hand_computation():
    neuron = AsymmetricTernaryLeaky(beta=0.5, pos_threshold=1.0, neg_threshold=2.0)
    spikes, mems = run(neuron, [1.5, 0.0, -3.0, 0.0, -1.0])
    # t1: 0.5*1.5 - 1 (reset of the +1 spike); t3: 0.5*-3.125 + 2 (reset of the -1 spike)
    assert mems == pytest.approx([1.5, -0.25, -3.125, 0.4375, -0.78125], abs=1e-6)
    assert spikes == [1, 0, -1, 0, 0]


def test_symmetric_trajectory_matches_hand_computation():
    neuron = AsymmetricTernaryLeaky(beta=0.5, pos_threshold=1.0, symmetric=True)
    spikes, mems = run(neuron, [1.5, 0.0, -3.0, 0.0, -1.0])
    assert mems == pytest.approx([1.5, -0.25, -3.125, -0.5625, -1.28125], abs=1e-6)
    assert spikes == [1, 0, -1, 0, -1]
    assert not list(neuron.parameters())


def test_thresholds_are_strict():
    neuron = AsymmetricTernaryLeaky(beta=0.0, pos_threshold=1.0, neg_threshold=2.0)
    assert run(neuron, [1.0, -2.0, 1.0001, -2.0001])[0] == [0, 0, 1, -1]


def test_binary_limit_reproduces_snn_leaky_spike_for_spike():
    torch.manual_seed(0)
    x = torch.randn(50, 8, 16) * 1.5
    ours = AsymmetricTernaryLeaky(beta=0.8, pos_threshold=1.0, neg_threshold=1e6, learn_neg_threshold=False)
    ref = snn.Leaky(beta=0.8, threshold=1.0)
    mem_a, mem_b = ours.init_leaky(), ref.init_leaky()
    for t in range(x.shape[0]):
        spk_a, mem_a = ours(x[t], mem_a)
        spk_b, mem_b = ref(x[t], mem_b)
        assert torch.equal(spk_a, spk_b)
        assert torch.equal(mem_a, mem_b)


def test_current_leaky_trajectory_matches_hand_computation():
    neuron = CurrentLeaky(current_decay=0.5, volt_decay=0.75, threshold=0.5)
    state, out = None, []
    for x in [0.4, 0.4, 0.0, 0.0]:
        spk, state = neuron(torch.tensor([x]), state)
        out.append((spk.item(), state[0].item(), state[1].item()))
    assert [o[0] for o in out] == [0, 1, 0, 0]
    assert [o[1] for o in out] == pytest.approx([0.4, 0.6, 0.3, 0.15])
    assert [o[2] for o in out] == pytest.approx([0.4, 0.9, 0.3, 0.375])  # hard reset after the spike


def test_gradient_reaches_input_and_neg_threshold_at_both_thresholds():
    neuron = AsymmetricTernaryLeaky(beta=0.9, neg_threshold=2.0, spike_grad=trapezoid(0.5, 1.0))
    x = torch.tensor([-1.9], requires_grad=True)  # near the negative threshold only
    spk, _ = neuron(x)
    spk.sum().backward()
    assert x.grad.item() > 0
    assert neuron.neg.rho.grad is not None and neuron.neg.rho.grad.item() != 0


def test_neg_threshold_stays_positive_under_any_update():
    neuron = AsymmetricTernaryLeaky(neg_threshold=0.5)
    with torch.no_grad():
        neuron.neg.rho.fill_(-1e4)
    assert neuron.neg_threshold.item() >= THRESHOLD_FLOOR
    assert neuron.neg_threshold.item() > 0


def test_neg_threshold_is_a_parameter_and_can_be_frozen():
    assert [n for n, _ in AsymmetricTernaryLeaky().named_parameters()] == ["neg.rho"]
    frozen = AsymmetricTernaryLeaky(learn_neg_threshold=False)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert AsymmetricTernaryLeaky(neg_threshold=2.5).neg_threshold.item() == pytest.approx(2.5)


def test_pickle_and_torch_save_roundtrip():
    neuron = AsymmetricTernaryLeaky(beta=0.7, neg_threshold=1.7, spike_grad=trapezoid())
    x = torch.randn(20, 4) * 2
    again = pickle.loads(pickle.dumps(neuron))
    buffer = io.BytesIO()
    torch.save(neuron, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    for other in (again, loaded):
        assert run(other, x[:, 0].tolist()) == run(neuron, x[:, 0].tolist())
        assert other.neg_threshold.item() == pytest.approx(1.7)


def test_no_global_registry_and_no_hidden_state():
    before = len(snn.SpikingNeuron.instances)
    neuron = AsymmetricTernaryLeaky()
    assert len(snn.SpikingNeuron.instances) == before
    a, _ = neuron(torch.tensor([1.5]))
    b, _ = neuron(torch.tensor([1.5]))  # no state carried between calls
    assert torch.equal(a, b)
    assert not any(isinstance(neuron, cls) for cls in (snn.Leaky, snn.SpikingNeuron))


def test_nir_export_never_treats_it_as_binary_leaky():
    from snntorch.export_nir import _extract_snntorch_module

    node = _extract_snntorch_module(AsymmetricTernaryLeaky())
    assert node is None or type(node).__name__ not in ("LIF", "CubaLIF", "IF")


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(beta=1.5), ValueError, "beta must be <= 1.0"),
    (dict(beta=-0.1), ValueError, "beta must be >= 0.0"),
    (dict(beta="0.5"), TypeError, "beta must be a real number"),
    (dict(pos_threshold=0.0), ValueError, "pos_threshold must be > 0.0"),
    (dict(neg_threshold=-1.0), ValueError, "neg_threshold must be >"),
    (dict(neg_threshold=float("inf")), ValueError, "neg_threshold must be finite"),
    (dict(neg_threshold=1e39), ValueError, "neg_threshold must be finite in float32"),  # was inf in float32: NaN
    (dict(pos_threshold=1e39), ValueError, "pos_threshold must be finite in float32"),
    (dict(beta=float("nan")), ValueError, "beta must be finite"),
    (dict(learn_neg_threshold=1), TypeError, "learn_neg_threshold must be a bool"),
    (dict(spike_grad="atan"), TypeError, "spike_grad must be callable"),
])
def test_validation_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AsymmetricTernaryLeaky(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(current_decay=2.0), "current_decay must be <= 1.0"),
    (dict(volt_decay=-0.5), "volt_decay must be >= 0.0"),
    (dict(threshold=0.0), "threshold must be > 0.0"),
    (dict(threshold=1e39), "threshold must be finite in float32"),
])
def test_current_leaky_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CurrentLeaky(**kwargs)


def test_state_of_another_shape_is_refused_not_broadcast():
    # fuzzing: a [8, 1] state broadcast against a [1, 8] input gave an [8, 8] output
    with pytest.raises(ValueError, match="mem must have the input's shape \\(1, 8\\), got \\(8, 1\\)"):
        AsymmetricTernaryLeaky()(torch.ones(1, 8), torch.zeros(8, 1))
    with pytest.raises(ValueError, match="volt must have the input's shape"):
        CurrentLeaky()(torch.ones(1, 8), (torch.zeros(1, 8), torch.zeros(8, 1), torch.zeros(1, 8)))
    with pytest.raises(TypeError, match="state must be None or a \\(current, volt, spike\\) tuple"):
        CurrentLeaky()(torch.ones(1, 8), torch.zeros(1, 8))
    spk, mem = AsymmetricTernaryLeaky()(torch.ones(1, 8), torch.zeros(1, 8))  # the right shape works
    assert spk.shape == mem.shape == (1, 8)
    spk, state = CurrentLeaky()(torch.ones(2, 3))
    assert CurrentLeaky()(torch.ones(2, 3), state)[0].shape == (2, 3)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_integer_input_is_refused_with_a_clear_type_error(dtype):
    x = torch.ones(3, 4, dtype=dtype)
    with pytest.raises(TypeError, match=f"input must be a floating-point tensor, got {dtype}"):
        AsymmetricTernaryLeaky()(x)
    with pytest.raises(TypeError, match=f"input must be a floating-point tensor, got {dtype}"):
        CurrentLeaky()(x)


def test_dynamic_step_is_exported_with_the_other_step_functions():
    from snnrl_sb3 import neurons
    from snnrl_sb3.surrogate import rectangular

    assert {"ternary_leaky_step", "current_leaky_step", "dynamic_step"} <= set(neurons.__all__)
    zeros = torch.zeros(3)
    spike, current, volt, recovery = neurons.dynamic_step(torch.tensor([0.2, 0.6, -1.0]), zeros, zeros, zeros, zeros,
                                                          0.5, 0.5, -0.172, 0.529, 0.021, 0.132, rectangular(0.5))
    assert spike.tolist() == [0, 1, 0] and torch.equal(volt, current) and torch.equal(recovery, zeros)


# --- golden trajectories of the faithful-preset options, worked by hand (ATan, alpha = 2:
# σ'(z) = 1 / (1 + π² z²); π² = 9.8696044) ------------------------------------------------------

def _steps(step, inputs, state, **kwargs):
    """Run a pure step function over scalar inputs: ``(spikes, states)``."""
    from snnrl_sb3.surrogate import atan

    spikes, states = [], []
    for x in inputs:
        spk, state = step(torch.tensor([x]), state, spike_fn=atan(), **kwargs)
        spikes.append(spk.item())
        states.append(state.item())
    return spikes, states


def _sigma(z):
    return 1.0 / (1.0 + 9.8696044 * z * z)


def test_zero_reset_trajectory_matches_hand_computation():
    from snnrl_sb3.neurons import ternary_leaky_step

    def step(x, mem, spike_fn, **kw):
        return ternary_leaky_step(x, mem, 0.5, 1.0, None, spike_fn, **kw)

    # beta 0.5, θ 1. zero: U1 = 1.5 (spike); U2 = 0.5 (1 - 1) 1.5 + 0.5 = 0.5; U3 = 0.5 * 0.5 + 0.8 = 1.05
    # (spike); U4 = 0.5 (1 - 1) 1.05 + 0 = 0. subtract: U2 = 0.75 + 0.5 - 1 = 0.25, U3 = 0.125 + 0.8 = 0.925,
    # U4 = 0.4625
    spikes, mems = _steps(step, [1.5, 0.5, 0.8, 0.0], torch.zeros(1), reset="zero")
    assert spikes == [1, 0, 1, 0] and mems == pytest.approx([1.5, 0.5, 1.05, 0.0], abs=1e-6)
    spikes, mems = _steps(step, [1.5, 0.5, 0.8, 0.0], torch.zeros(1), reset="subtract")
    assert spikes == [1, 0, 0, 0] and mems == pytest.approx([1.5, 0.25, 0.925, 0.4625], abs=1e-6)


def test_ge_firing_trajectory_matches_hand_computation():
    from snnrl_sb3.neurons import ternary_leaky_step

    def step(x, mem, spike_fn, **kw):
        return ternary_leaky_step(x, mem, 0.0, 1.0, None, spike_fn, **kw)

    # beta 0, θ 1, input 1 at every step. ge: U1 = 1 >= 1 (spike), U2 = 1 - 1 = 0, U3 = 1 (spike); gt: never
    assert _steps(step, [1.0, 1.0, 1.0], torch.zeros(1), fire="ge") == ([1, 0, 1], [1.0, 0.0, 1.0])
    assert _steps(step, [1.0, 1.0, 1.0], torch.zeros(1), fire="gt") == ([0, 0, 0], [1.0, 1.0, 1.0])
    # the surrogate is the same: dS/dU at U = θ is σ'(0) = 1 (alpha / 2)
    from snnrl_sb3.surrogate import atan

    x = torch.tensor([1.0], requires_grad=True)
    spk, _ = step(x, torch.zeros(1), atan(), fire="ge")
    spk.backward()
    assert spk.item() == 1.0 and x.grad.item() == pytest.approx(1.0)


@pytest.mark.parametrize("branches,d_input,d_neg", [
    # U = 0.5 (positive side), θ⁺ 1, θ⁻ 2: both: σ'(0.5 - 1) + σ'(-2 - 0.5) = 0.288400 + 0.015953; the θ⁻ term
    # σ'(-2.5) = 0.015953. sign: σ'(-0.5) = 0.288400 only, nothing into θ⁻.
    ("both", 0.288400 + 0.015953, 0.015953),
    ("sign", 0.288400, 0.0),
])
def test_sign_gated_surrogate_matches_hand_computation(branches, d_input, d_neg):
    from snnrl_sb3.neurons import ternary_leaky_step
    from snnrl_sb3.surrogate import atan

    x = torch.tensor([0.5], requires_grad=True)
    neg = torch.tensor(2.0, requires_grad=True)
    spk, mem = ternary_leaky_step(x, torch.zeros(1), 0.5, 1.0, neg, atan(), surrogate_branches=branches)
    spk.backward()
    assert spk.item() == 0 and mem.item() == 0.5
    assert x.grad.item() == pytest.approx(d_input, rel=1e-4)
    assert neg.grad.item() == pytest.approx(d_neg, rel=1e-4, abs=1e-9)
    # on the negative side, U = -1.5: sign keeps only σ'(-2 + 1.5) = σ'(-0.5), into U and θ⁻
    x, neg = torch.tensor([-1.5], requires_grad=True), torch.tensor(2.0, requires_grad=True)
    spk, _ = ternary_leaky_step(x, torch.zeros(1), 0.5, 1.0, neg, atan(), surrogate_branches=branches)
    spk.backward()
    expected = _sigma(-0.5) + (_sigma(-2.5) if branches == "both" else 0.0)
    assert x.grad.item() == pytest.approx(expected, rel=1e-4) and neg.grad.item() == pytest.approx(_sigma(-0.5))


@pytest.mark.parametrize("raw,inputs,spikes,mems,d_raw", [
    # raw θ⁻ 2 (inside [0, 10]): U1 = -2.5 < -2 (-1 spike: dS1/dθ⁻ = +σ'(-2 + 2.5) = 0.288400, through the
    # clamp); U2 = 0.5 (-2.5) + 0 + 2 = 0.75 (no spike, U2 >= 0: dS2/dU2 = σ'(0.75 - 1) = 0.618487, and
    # dU2/dθ⁻ = 1 through the raw reset). dL/dθ⁻ = 0.288400 + 0.618487 for L = S1 + S2.
    (2.0, [-2.5, 0.0], [-1, 0], [-2.5, 0.75], 0.288400 + 0.618487),
    # raw θ⁻ 12 (above the bound 10): fires at -10, U1 = -11 (-1 spike, no gradient through the saturated
    # clamp); U2 = -5.5 + 12 = 6.5 (+1 spike: the reset added the raw 12, not 10): dS2/dU2 = σ'(5.5) =
    # 0.0033383, dL/dθ⁻ = 0.0033383 (through the reset only)
    (12.0, [-11.0, 0.0], [-1, 1], [-11.0, 6.5], 0.0033383),
])
def test_clamped_neg_threshold_matches_hand_computation(raw, inputs, spikes, mems, d_raw):
    from snnrl_sb3.neurons import ClampedParameter, ternary_leaky_step
    from snnrl_sb3.surrogate import atan

    neg = ClampedParameter(2.0, 0.0, 10.0)
    with torch.no_grad():
        neg.raw.fill_(raw)
    mem, out, total = torch.zeros(1), [], 0.0
    for x in inputs:
        spk, mem = ternary_leaky_step(torch.tensor([x]), mem, 0.5, 1.0, neg.value, atan(), surrogate_branches="sign",
                                      neg_reset_threshold=neg.raw)
        out.append(spk.item())
        assert mem.item() == pytest.approx(mems[len(out) - 1])
        total = total + spk.sum()
    total.backward()
    assert out == spikes
    assert neg.raw.grad.item() == pytest.approx(d_raw, rel=1e-4)


def test_clamped_parameter_validates_and_reports():
    from snnrl_sb3.neurons import ClampedParameter

    with pytest.raises(ValueError, match="initial value must be in \\[0.0, 10.0\\], got 11"):
        ClampedParameter(11, 0.0, 10.0)
    p = ClampedParameter(2.0, 0.0, 10.0)
    assert [n for n, _ in p.named_parameters()] == ["raw"] and p.value.item() == 2.0
    assert "raw=2" in repr(p) and "range=[0, 10]" in repr(p)


@pytest.mark.parametrize("reset,fire,inputs,spikes,charged", [
    # τ 2, θ 1, hard reset, >=: H1 = 0 + (2 - 0)/2 = 1 >= 1 (spike, V1 = 0); H2 = (1 - 0)/2 = 0.5 (V2 = 0.5);
    # H3 = 0.5 + (3 - 0.5)/2 = 1.75 (spike, V3 = 0); H4 = 0
    ("zero", "ge", [2.0, 1.0, 3.0, 0.0], [1, 0, 1, 0], [1.0, 0.5, 1.75, 0.0]),
    # the same with >: H1 = 1 does not fire (V1 = 1); H2 = 1 + (1 - 1)/2 = 1; H3 = 1 + (3 - 1)/2 = 2 (spike);
    # H4 = 0 + (0 - 0)/2 = 0
    ("zero", "gt", [2.0, 1.0, 3.0, 0.0], [0, 0, 1, 0], [1.0, 1.0, 2.0, 0.0]),
    # hard reset: H1 = 1.5 (spike, V1 = 0), H2 = 0, H3 = 0.5. subtract: V1 = 1.5 - 1 = 0.5,
    # H2 = 0.5 + (0 - 0.5)/2 = 0.25, H3 = 0.25 + (1 - 0.25)/2 = 0.625
    ("zero", "ge", [3.0, 0.0, 1.0], [1, 0, 0], [1.5, 0.0, 0.5]),
    ("subtract", "ge", [3.0, 0.0, 1.0], [1, 0, 0], [1.5, 0.25, 0.625]),
])
def test_sj_lif_trajectory_matches_hand_computation(reset, fire, inputs, spikes, charged):
    from snnrl_sb3.neurons import sj_lif_step
    from snnrl_sb3.surrogate import atan

    volt, out, hs = torch.zeros(1), [], []
    for x in inputs:
        spk, h, volt = sj_lif_step(torch.tensor([x]), volt, 2.0, 1.0, atan(), reset=reset, fire=fire)
        out.append(spk.item())
        hs.append(h.item())
    assert out == spikes and hs == pytest.approx(charged)


def test_sj_lif_gradient_matches_hand_computation():
    from snnrl_sb3.neurons import sj_lif_step
    from snnrl_sb3.surrogate import atan

    # inputs 2, 1, 3 (τ 2, hard reset, >=), the first trajectory above. dS1/dX1 = σ'(H1 - 1)/τ = σ'(0)/2 = 0.5.
    # S3: H3 = V2 + (X3 - V2)/2, V2 = H2 (no spike), H2 = V1 + (X2 - V1)/2, V1 = (1 - S1) H1 = 0 with S1
    # detached: dH3/dX2 = (1 - 1/2) (1/2) = 0.25, dS3/dX2 = 0.25 σ'(0.75) = 0.25 * 0.152633 = 0.038158,
    # dS3/dX3 = σ'(0.75)/2, and dS3/dX1 = 0 (the reset cut the path through H1).
    x = torch.tensor([2.0, 1.0, 3.0], requires_grad=True)
    volt, out = torch.zeros(()), []
    for t in range(3):
        spk, _, volt = sj_lif_step(x[t], volt, 2.0, 1.0, atan())
        out.append(spk)
    (g1,) = torch.autograd.grad(out[0], x, retain_graph=True)
    (g3,) = torch.autograd.grad(out[2], x)
    assert g1.tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert g3.tolist() == pytest.approx([0.0, 0.038158, 0.5 * _sigma(0.75)], rel=1e-4)


def test_step_functions_refuse_options_of_another_variant():
    from snnrl_sb3.neurons import sj_lif_step, ternary_leaky_step
    from snnrl_sb3.surrogate import atan

    x = torch.zeros(2)
    with pytest.raises(ValueError, match="ternary neuron has the subtractive reset and strict thresholds only"):
        ternary_leaky_step(x, x, 0.9, 1.0, 2.0, atan(), reset="zero")
    with pytest.raises(ValueError, match="apply to the ternary neuron only"):
        ternary_leaky_step(x, x, 0.9, 1.0, None, atan(), surrogate_branches="sign")
    with pytest.raises(ValueError, match="unknown fire 'gte'; allowed: \\['ge', 'gt'\\]"):
        ternary_leaky_step(x, x, 0.9, 1.0, None, atan(), fire="gte")
    with pytest.raises(ValueError, match="unknown reset 'none'"):
        sj_lif_step(x, x, 2.0, 1.0, atan(), reset="none")
