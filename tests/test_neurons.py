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
