import copy
import dataclasses
import pickle
import subprocess
import sys

import pytest
import snntorch as snn
import torch

from snnrl_sb3 import BernoulliEncoder, MultiStepCurrentLeaky, MultiStepLeaky, Readout, make_neuron, spiking_mlp
from snnrl_sb3.body import spiking_nature_cnn
from snnrl_sb3.coding import make_encoder
from snnrl_sb3.kernels import MultiStepSJLeaky, base, current_leaky, dynamic, leaky, sj_leaky
from snnrl_sb3.kernels._time import decay_matrix
from snnrl_sb3.neurons import ClampedParameter, current_leaky_step, sj_lif_step, ternary_leaky_step
from snnrl_sb3.surrogate import Surrogate

NEURON_CASES = [
    ("lif", dict(beta=0.8)),
    ("lif", dict(beta=1.0, surrogate="trapezoid")),  # integrate-and-fire
    ("ternary", dict(beta=0.8)),
    ("ternary", dict(beta=0.0, neg_threshold=0.7, surrogate="fast_sigmoid")),
    ("symmetric_ternary", dict(beta=0.9, surrogate="triangular")),
    ("current_lif", dict()),
    ("current_lif", dict(surrogate="trapezoid", surrogate_kwargs={"w1": 0.1, "w2": 0.4})),
    ("dynamic", dict()),
    ("lif", dict(beta=0.8, reset="zero")),  # snnTorch's reset_mechanism="zero"
    ("lif", dict(beta=0.9, fire="ge", surrogate="trapezoid")),
    ("ternary", dict(beta=0.9, surrogate_branches="sign", neg_threshold_param="clamped")),  # DATSQN
    ("symmetric_ternary", dict(beta=0.9, surrogate_branches="sign")),  # DTSQN
    ("sj_lif", dict()),  # DSQN
    ("sj_lif", dict(tau=3.0, reset="subtract", fire="gt")),
]


def assert_kernel_matches_reference(neuron, x):
    """Spikes equal to the step-by-step reference exactly; gradients (input, parameters) to 1e-5."""
    fast, ref = neuron(x), neuron.reference(x)
    assert torch.equal(fast, ref)  # spike for spike
    weights = torch.randn_like(ref)
    inputs = [x] + [p for p in neuron.parameters() if p.requires_grad]
    g_fast = torch.autograd.grad((fast * weights).sum(), inputs)
    g_ref = torch.autograd.grad((ref * weights).sum(), inputs)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind,params", NEURON_CASES)
@pytest.mark.parametrize("steps", [1, 5, 20])
def test_fast_kernel_equals_step_by_step_reference(kind, params, steps, device):
    torch.manual_seed(steps)
    neuron = make_neuron(kind, **params).to(device)
    x = (torch.randn(steps, 6, 33, device=device) * 1.5).requires_grad_()
    assert_kernel_matches_reference(neuron, x)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_binary_kernel_equals_snn_leaky_loop(reset):
    torch.manual_seed(1)
    x = torch.randn(30, 4, 16) * 1.5
    lif = snn.Leaky(beta=0.85, reset_mechanism=reset)
    mem, expected, mems = lif.init_leaky(), [], []
    for t in range(x.shape[0]):
        spk, mem = lif(x[t], mem)
        expected.append(spk)
        mems.append(mem)
    neuron = make_neuron("lif", beta=0.85, reset=reset)
    assert torch.equal(neuron(x), torch.stack(expected))
    assert torch.equal(_kernel_membranes(neuron, x)[1], torch.stack(mems))  # membranes bit for bit
    assert 0.05 < torch.stack(expected).mean() < 0.5


def test_ternary_emits_both_signs_and_learns_neg_threshold():
    neuron = make_neuron("ternary", beta=0.5, neg_threshold=1.0)
    x = (torch.randn(10, 8, 32) * 2).requires_grad_()
    out = neuron(x)
    assert set(out.unique().tolist()) == {-1.0, 0.0, 1.0}
    out.sum().backward()
    assert neuron.neg.rho.grad is not None and neuron.neg.rho.grad.abs().item() > 0


def test_constant_input_broadcast_gives_same_result_as_repeated_copy():
    neuron = make_neuron("ternary")
    x = torch.randn(4, 10, requires_grad=True)
    a = neuron(x.unsqueeze(0).expand(6, 4, 10))
    b = neuron(x.unsqueeze(0).repeat(6, 1, 1))
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad(a.sum(), x)
    (gb,) = torch.autograd.grad(b.sum(), x)
    torch.testing.assert_close(ga, gb)


def test_decay_matrix_solves_the_leaky_recurrence():
    x = torch.randn(7, 3)
    y, expected = torch.zeros(3), []
    for t in range(7):
        y = 0.6 * y + x[t]
        expected.append(y)
    torch.testing.assert_close(decay_matrix(7, 0.6) @ x, torch.stack(expected))
    torch.testing.assert_close(decay_matrix(7, 0.6, transpose=True), decay_matrix(7, 0.6).T)


@pytest.mark.parametrize("mode", ["spike_count", "membrane_max", "membrane_mean", "membrane_last"])
def test_readout_equals_explicit_integrator(mode):
    torch.manual_seed(0)
    readout = Readout(5, 3, mode=mode, beta=0.7)
    spikes = torch.randint(-1, 2, (9, 4, 5)).float()
    currents = readout.linear(spikes)
    mem, trajectory = torch.zeros(4, 3), []
    for t in range(9):
        mem = 0.7 * mem + currents[t]
        trajectory.append(mem)
    trajectory = torch.stack(trajectory)
    expected = {"spike_count": currents.mean(0), "membrane_max": trajectory.amax(0),
                "membrane_mean": trajectory.mean(0), "membrane_last": trajectory[-1]}[mode]
    torch.testing.assert_close(readout(spikes), expected, rtol=1e-5, atol=1e-5)


def test_bernoulli_encoder_rates_straight_through_and_frozen_noise():
    enc = BernoulliEncoder(seed=3)
    p = torch.tensor([[0.0, 0.25, 1.0]]).repeat(2000, 1)
    spikes = enc(p, 4)
    assert spikes.shape == (4, 2000, 3)
    torch.testing.assert_close(spikes.mean((0, 1)), torch.tensor([0.0, 0.25, 1.0]), atol=0.02, rtol=0)
    q = torch.rand(5, 3, requires_grad=True)
    enc(q, 4).sum().backward()
    torch.testing.assert_close(q.grad, torch.full_like(q, 4.0))  # straight-through: d s_t / d p = 1
    obs = torch.rand(6, 3)
    batched = enc(obs, 8, deterministic=True)
    one_by_one = torch.cat([enc(obs[i:i + 1], 8, deterministic=True) for i in range(6)], dim=1)
    assert torch.equal(batched, one_by_one)
    assert not torch.equal(enc(obs, 8), enc(obs, 8))  # stochastic otherwise


def test_bernoulli_encoder_is_seedable_and_picklable():
    a, b = BernoulliEncoder(seed=7), BernoulliEncoder(seed=7)
    p = torch.rand(3, 5)
    assert torch.equal(a(p, 4), b(p, 4))
    c = pickle.loads(pickle.dumps(a))
    d = copy.deepcopy(a)
    assert torch.equal(c(p, 4), d(p, 4))


def test_bernoulli_encoder_rejects_non_probabilities():
    with pytest.raises(ValueError, match="inputs in \\[0, 1\\]"):
        BernoulliEncoder(seed=0)(torch.tensor([[1.5]]), 4)


def test_network_is_markov_and_picklable(tmp_path):
    net = spiking_mlp(4, [32, 32], 2, num_steps=6, neuron="ternary")
    x = torch.randn(5, 4)
    first = net(x)
    assert torch.equal(first, net(x))  # zero state each call
    assert torch.equal(net(x[:2]), first[:2])  # batch-independent
    clone = pickle.loads(pickle.dumps(net))
    assert torch.equal(clone(x), first)
    torch.save(net, tmp_path / "net.pt")
    assert torch.equal(torch.load(tmp_path / "net.pt", weights_only=False)(x), first)
    assert torch.equal(copy.deepcopy(net)(x), first)


def test_network_with_bernoulli_input_and_cnn_body():
    net = spiking_nature_cnn(4, (84, 84), 64, 3, num_steps=2, neuron="lif", encoder=make_encoder("bernoulli", seed=1))
    obs = torch.rand(2, 4, 84, 84)
    q = net(obs)
    assert q.shape == (2, 3)
    q.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_network_gradients_match_step_by_step_reference():
    torch.manual_seed(0)
    net = spiking_mlp(3, [16, 16], 2, num_steps=5, neuron="ternary", neuron_kwargs={"neg_threshold": 1.0})
    x = torch.randn(8, 3) * 3
    fast = net(x)
    grads_fast = torch.autograd.grad(fast.sum(), list(net.parameters()))
    # the same network, every neuron swapped for its step-by-step reference
    for layer in net.layers:
        if hasattr(layer, "reference"):
            layer.forward = layer.reference
    ref = net(x)
    grads_ref = torch.autograd.grad(ref.sum(), list(net.parameters()))
    assert torch.equal(fast, ref)
    for a, b in zip(grads_fast, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: make_neuron("izhikevich"), ValueError, "unknown neuron 'izhikevich'"),
    (lambda: make_neuron("lif", tau=2.0), TypeError, "bad parameters \\['tau'\\] for neuron 'lif': it takes "
                                                      "\\['beta', 'fire', 'reset', 'threshold'\\]; tau is a "
                                                      "parameter of \\['sj_lif'\\]"),
    (lambda: make_neuron("ternary", neg_threshold=0.0), ValueError, "neg_threshold must be >"),
    (lambda: MultiStepLeaky(beta=2.0), ValueError, "beta must be <= 1.0"),
    (lambda: MultiStepCurrentLeaky(threshold=-1.0), ValueError, "threshold must be > 0.0"),
    (lambda: MultiStepLeaky(backend="jit"), ValueError, "unknown backend 'jit'"),
    (lambda: MultiStepCurrentLeaky(backend=None), TypeError, "backend must be a string"),
    (lambda: make_neuron("lif")(torch.randn(4)), ValueError, "time-major"),
    (lambda: make_encoder("poisson"), ValueError, "unknown encoder 'poisson'"),
    (lambda: Readout(3, 2, mode="spikes"), ValueError, "unknown (readout|decoder) 'spikes'"),
    (lambda: spiking_mlp(4, [], 2), ValueError, "net_arch must have at least one"),
    (lambda: spiking_mlp(4, [0], 2), ValueError, "net_arch\\[0\\] must be >= 1"),
    (lambda: spiking_mlp(4, [8], 2, num_steps=0), ValueError, "num_steps must be >= 1"),
    (lambda: spiking_mlp(4, [8], 2, num_steps=2.5), TypeError, "num_steps must be an int"),
])
def test_validation_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --- fused kernels: surrogate fast paths, exact membranes, benchmark baseline -------------------

class _Skewed(Surrogate):
    """A surrogate that is not even, σ'(-z) != σ'(z): exercises the kernels' generic path."""

    def grad(self, x):
        s = torch.sigmoid(3.0 * x + 0.5)
        return 3.0 * s * (1 - s)

    def spec(self):
        return {"name": "skewed"}


FAST_PATH_CASES = [
    ("lif", dict(beta=0.7, surrogate="atan", surrogate_kwargs={"alpha": 3.5})),
    ("lif", dict(beta=0.9, surrogate="rectangular", surrogate_kwargs={"width": 0.4})),
    ("lif", dict(beta=0.9, surrogate="sigmoid")),
    ("lif", dict(beta=0.9, surrogate="straight_through")),
    ("ternary", dict(beta=0.9, neg_threshold=1.3, surrogate="trapezoid")),
    ("ternary", dict(beta=0.6, neg_threshold=0.8, surrogate="rectangular")),
    ("ternary", dict(beta=0.9, neg_threshold=1.5, learn_neg_threshold=False)),
    ("symmetric_ternary", dict(beta=0.8)),
    ("current_lif", dict(surrogate="atan")),
    ("current_lif", dict(current_decay=0.0, volt_decay=1.0, surrogate="triangular")),
]


@pytest.mark.parametrize("kind,params", [*FAST_PATH_CASES, ("ternary", dict(beta=0.85)), ("current_lif", dict())])
@pytest.mark.parametrize("steps", [1, 2, 8])
def test_kernel_surrogate_paths_match_reference(kind, params, steps, device):
    torch.manual_seed(10 + steps)
    neuron = make_neuron(kind, **params).to(device)
    x = (torch.randn(steps, 5, 3, 7, device=device) * 1.5).requires_grad_()  # extra feature dims
    assert_kernel_matches_reference(neuron, x)


@pytest.mark.parametrize("kind", ["lif", "ternary", "current_lif", "dynamic"])
def test_kernel_with_non_even_custom_surrogate(kind, device):
    torch.manual_seed(3)
    neuron = make_neuron(kind, surrogate=_Skewed()).to(device)  # an already-built Surrogate instance
    assert isinstance(neuron.surrogate, _Skewed)
    x = (torch.randn(6, 4, 9, device=device) * 1.5).requires_grad_()
    fast, ref = neuron(x), neuron.reference(x)
    assert torch.equal(fast, ref)
    inputs = [x] + [p for p in neuron.parameters() if p.requires_grad]
    for a, b in zip(torch.autograd.grad(fast.sum(), inputs), torch.autograd.grad(ref.sum(), inputs)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _reference_membranes(neuron, x):
    """Membranes of the pure step function, step by step (no autograd)."""
    with torch.no_grad():
        if isinstance(neuron, MultiStepLeaky):
            mem, out = torch.zeros_like(x[0]), []
            neg_reset = neuron.neg.raw if isinstance(neuron.neg, ClampedParameter) else None
            for t in range(x.shape[0]):
                _, mem = ternary_leaky_step(x[t], mem, neuron.beta, neuron.threshold, neuron.neg_threshold,
                                            neuron.surrogate, reset=neuron.reset, fire=neuron.fire,
                                            surrogate_branches=neuron.surrogate_branches,
                                            neg_reset_threshold=neg_reset)
                out.append(mem)
            return torch.stack(out)
        if isinstance(neuron, MultiStepSJLeaky):
            volt, out = torch.zeros_like(x[0]), []
            for t in range(x.shape[0]):
                _, charged, volt = sj_lif_step(x[t], volt, neuron.tau, neuron.threshold, neuron.surrogate,
                                               reset=neuron.reset, fire=neuron.fire)
                out.append(charged)
            return torch.stack(out)
        if isinstance(neuron, MultiStepCurrentLeaky):
            current = volt = spike = torch.zeros_like(x[0])
            out = []
            for t in range(x.shape[0]):
                spike, current, volt = current_leaky_step(x[t], current, volt, spike, neuron.current_decay,
                                                          neuron.volt_decay, neuron.threshold, neuron.surrogate)
                out.append(volt)
            return torch.stack(out)
        from snnrl_sb3.neurons import dynamic_step

        current = volt = recovery = spike = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            spike, current, volt, recovery = dynamic_step(x[t], current, volt, recovery, spike,
                                                          *neuron.params.constants(), neuron.surrogate)
            out.append(volt)
        return torch.stack(out)


def _kernel_membranes(neuron, x):
    """``(spikes, membranes)`` of the eager kernel form, through its public function."""
    if isinstance(neuron, MultiStepLeaky) and neuron.reset == "zero":
        spikes, mem, _ = leaky.leaky_zero_forward_eager(x, neuron.beta, neuron.threshold, neuron.fire == "ge")
    elif isinstance(neuron, MultiStepLeaky):
        neg = None if not neuron.ternary else float(neuron.neg_threshold.detach())
        neg_reset = float(neuron.neg.raw.detach()) if isinstance(neuron.neg, ClampedParameter) else None
        spikes, mem, _ = leaky.leaky_forward_eager(x, neuron.beta, neuron.threshold, neg, neg_reset,
                                                   neuron.fire == "ge")
    elif isinstance(neuron, MultiStepSJLeaky):
        spikes, mem, _ = sj_leaky.sj_leaky_forward_eager(x, neuron.tau, neuron.threshold, neuron.reset == "zero",
                                                         neuron.fire == "ge")
    elif isinstance(neuron, MultiStepCurrentLeaky):
        spikes, mem, _ = current_leaky.current_leaky_forward_eager(x, neuron.current_decay, neuron.volt_decay,
                                                                   neuron.threshold)
    else:
        spikes, mem, _ = dynamic.dynamic_forward_eager(x, *neuron.params.constants())
    return spikes, mem


@pytest.mark.parametrize("kind,params", [("lif", dict(beta=0.8)), ("ternary", dict(beta=0.9, neg_threshold=0.9)),
                                         ("symmetric_ternary", dict(beta=0.95)), ("lif", dict(beta=0.3333333)),
                                         ("ternary", dict(beta=0.123456789, threshold=0.3, neg_threshold=0.7)),
                                         ("current_lif", dict()),
                                         ("current_lif", dict(current_decay=0.3, volt_decay=0.9)),
                                         ("dynamic", dict()),
                                         ("lif", dict(beta=0.3333333, reset="zero")),
                                         ("lif", dict(beta=0.8, threshold=0.7, reset="zero", fire="ge")),
                                         ("lif", dict(beta=0.9, fire="ge")),
                                         ("ternary", dict(beta=0.9, neg_threshold=0.7, surrogate_branches="sign",
                                                          neg_threshold_param="clamped")),
                                         ("symmetric_ternary", dict(beta=0.95, surrogate_branches="sign")),
                                         ("sj_lif", dict()),
                                         ("sj_lif", dict(tau=3.0, reset="subtract")),
                                         ("sj_lif", dict(tau=1.7, threshold=0.4, fire="gt"))])
def test_kernel_membranes_are_bit_identical_to_step_function(kind, params, device):
    torch.manual_seed(5)
    neuron = make_neuron(kind, **params).to(device)
    x = torch.randn(25, 8, 65, device=device) * (2.5 if kind == "sj_lif" else 1.5)  # 520 features: vector + tail
    spikes, mem = _kernel_membranes(neuron, x)
    assert torch.equal(mem, _reference_membranes(neuron, x))
    with torch.no_grad():
        assert torch.equal(spikes, neuron.reference(x))
    assert spikes.abs().mean() > 0.02  # the resets were exercised


def test_clamped_neg_threshold_outside_its_range_fires_at_the_bound_and_resets_by_the_raw_value():
    """DATSQN's θ⁻: the optimiser may push the raw parameter out of [0, max]; the kernel fires at the
    clamped value, adds the raw one back, and passes no firing-condition gradient outside the range."""
    torch.manual_seed(7)
    for raw, max_ in ((12.5, 10.0), (-0.3, 10.0), (3.0, 3.0), (0.0, 10.0)):
        neuron = make_neuron("ternary", beta=0.9, neg_threshold=1.0, surrogate_branches="sign",
                             neg_threshold_param="clamped", neg_threshold_max=max_)
        with torch.no_grad():
            neuron.neg.raw.fill_(raw)
        assert neuron.neg_threshold.item() == min(max(raw, 0.0), max_)
        x = (torch.randn(9, 4, 30) * 6).requires_grad_()
        assert_kernel_matches_reference(neuron, x)
        spikes, mem = _kernel_membranes(neuron, x.detach())
        assert torch.equal(mem, _reference_membranes(neuron, x.detach()))
        assert (spikes == -1).any()


def test_clamped_neg_threshold_is_a_plain_parameter_copied_with_the_state_dict():
    neuron = make_neuron("ternary", neg_threshold=2.0, surrogate_branches="sign", neg_threshold_param="clamped")
    assert [name for name, _ in neuron.named_parameters()] == ["neg.raw"]
    assert isinstance(neuron.neg.raw, torch.nn.Parameter) and neuron.neg.raw.shape == ()
    assert neuron.params.neg_threshold_max == 10.0 and neuron.neg.high == 10.0
    target = make_neuron("ternary", neg_threshold=2.0, surrogate_branches="sign", neg_threshold_param="clamped")
    with torch.no_grad():
        neuron.neg.raw.fill_(2.75)
    target.load_state_dict(neuron.state_dict())  # what SB3 does for the target network
    assert target.neg_threshold.item() == 2.75
    frozen = make_neuron("ternary", neg_threshold_param="clamped", learn_neg_threshold=False)
    assert not frozen.neg.raw.requires_grad
    x = torch.randn(5, 2, 8) * 3
    with torch.no_grad():
        assert torch.equal(frozen(x), frozen.reference(x))
    assert "clamped" in repr(neuron) and "surrogate_branches='sign'" in repr(neuron)


def test_kernel_double_backward_call_with_retained_graph_is_stable():
    neuron = make_neuron("ternary")
    x = (torch.randn(5, 3, 8) * 2).requires_grad_()
    out = neuron(x)
    (g1,) = torch.autograd.grad(out.sum(), x, retain_graph=True)
    (g2,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(g1, g2)  # backward must not modify saved tensors in place


def test_naive_benchmark_baseline_computes_the_same_function_as_spiking_mlp():
    from snnrl_sb3.benchmarks.core import NaiveSnnTorchMLP

    torch.manual_seed(0)
    naive = NaiveSnnTorchMLP([4, 32, 32, 3], num_steps=6)
    net = spiking_mlp(4, [32, 32], 3, num_steps=6, neuron="lif", readout="membrane_max")
    with torch.no_grad():
        for dst, src in zip([net.layers[0], net.layers[2], net.readout.linear], naive.fcs):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    x = torch.randn(16, 4) * 3
    torch.testing.assert_close(net(x), naive(x), rtol=1e-5, atol=1e-5)


def test_benchmark_cli_defaults_to_the_stable_mode():
    done = subprocess.run([sys.executable, "-m", "snnrl_sb3.benchmarks.core", "--help"], capture_output=True,
                          text=True, check=True)
    assert "--num-steps" in done.stdout and "--steps" not in done.stdout.replace("--num-steps", "")
    from snnrl_sb3.benchmarks import _baselines, core, dqn

    assert core.NaiveSnnTorchMLP is _baselines.NaiveSnnTorchMLP is dqn.NaiveSnnTorchMLP
    assert core.fwd_bwd is _baselines.fwd_bwd
    for flag, default in (("--threads", "default: 1"), ("--clock", "thread (default)"), ("--stat", "default: min")):
        assert flag in done.stdout and default in " ".join(done.stdout.split())


def test_timing_helpers():
    from snnrl_sb3.benchmarks._timing import time_calls

    t = time_calls({"a": lambda: None, "b": lambda: sum(range(100))}, rounds=2, min_seconds=0.003, warmup=1,
                   stat="min")
    assert set(t) == {"a", "b"} and all(v > 0 for v in t.values())
    with pytest.raises(ValueError, match="stat"):
        time_calls({"a": lambda: None}, stat="mean")
    # process-wide: run it in a fresh interpreter, not in the test session
    code = "from snnrl_sb3.utils import tune_allocator; print(tune_allocator())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() in {"True", "False"}


@pytest.mark.parametrize("kind,params", NEURON_CASES)
@pytest.mark.parametrize("steps,batch", [(1, 1), (8, 1), (5, 3)])
def test_numpy_inference_path_equals_torch_kernel(kind, params, steps, batch, monkeypatch):
    torch.manual_seed(steps + batch)
    neuron = make_neuron(kind, **params)
    x = (torch.randn(1, batch, 40) * 2).expand(steps, batch, 40)  # constant input, as the body passes it
    with torch.no_grad():
        assert base.use_numpy(x)
        fast = neuron(x)
    monkeypatch.setattr(base, "NUMPY_MAX_STEP_NUMEL", 0)  # force the torch kernel
    with torch.no_grad():
        assert not base.use_numpy(x)
        kernel = neuron(x)
    assert torch.equal(fast, kernel)
    assert torch.equal(fast, neuron.reference(x).detach())


def test_numpy_path_is_not_used_when_gradients_are_needed_or_off_the_cpu():
    x = torch.randn(4, 1, 8, requires_grad=True)
    assert not base.use_numpy(x)
    with torch.no_grad():
        assert base.use_numpy(x)
        assert not base.use_numpy(torch.randn(4, 64, 256))  # large: the torch kernel wins
        assert not base.use_numpy(x.double())  # float32 only
        assert not base.use_numpy(torch.randn(4, 1, 8, device="meta"))  # CPU tensors only


# --- backend="compile": torch.compile'd kernels, eager fallback ------------------------------------

COMPILE_CASES = [
    ("lif", dict(beta=0.8)),
    ("ternary", dict(beta=0.83, threshold=0.3, neg_threshold=0.7)),
    ("symmetric_ternary", dict(beta=0.9, surrogate="trapezoid")),
    ("current_lif", dict(surrogate="atan")),
    ("lif", dict(beta=0.8, reset="zero", fire="ge")),
    ("ternary", dict(beta=0.9, neg_threshold=0.8, surrogate_branches="sign", neg_threshold_param="clamped")),
    ("sj_lif", dict()),
]


@pytest.mark.parametrize("kind,params", COMPILE_CASES)
def test_compiled_kernels_match_reference(kind, params, device):
    torch.manual_seed(4)
    neuron = make_neuron(kind, backend="compile", **params).to(device)
    x = (torch.randn(4, 3, 10, device=device) * 1.5).requires_grad_()
    assert_kernel_matches_reference(neuron, x)  # spikes exact, gradients to 1e-5
    with torch.no_grad():  # the no-grad forward (target networks) takes the compiled kernel too
        big = torch.randn(3, 70, 40, device=device) * 1.5
        assert torch.equal(neuron(big), neuron.reference(big))
    if base.CompiledKernel.failed is not None:
        pytest.skip(f"torch.compile unavailable here, the eager fallback was tested: {base.CompiledKernel.failed}")


def test_compile_backend_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(base.CompiledKernel, "failed", None)
    monkeypatch.setattr(leaky, "_FORWARD_COMPILED", base.CompiledKernel(leaky.leaky_forward_graph))
    monkeypatch.setattr(base.torch, "compile", broken_compile)
    torch.manual_seed(0)
    x = torch.randn(5, 4, 6, requires_grad=True) * 2
    eager = make_neuron("ternary")(x)
    with pytest.warns(RuntimeWarning, match="backend='compile' is unavailable .*no C\\+\\+ compiler"):
        out = make_neuron("ternary", backend="compile")(x)
    assert torch.equal(out, eager)
    assert "no C++ compiler" in base.CompiledKernel.failed
    out.sum().backward()  # the backward falls back as well, silently: the failure is process-wide


# --- registry, parameter value objects, make_neuron ----------------------------------------------

def test_registry_records_and_parameter_classes():
    from snnrl_sb3.kernels import (
        NEURONS,
        CurrentLIFParameters,
        DynamicParameters,
        LIFParameters,
        MultiStepDynamic,
        NeuronKind,
        SJLIFParameters,
        SymmetricTernaryParameters,
        TernaryParameters,
    )

    assert sorted(NEURONS) == ["current_lif", "dynamic", "lif", "sj_lif", "symmetric_ternary", "ternary"]
    expected = {"lif": (LIFParameters, MultiStepLeaky, "atan"), "ternary": (TernaryParameters, MultiStepLeaky, "atan"),
                "symmetric_ternary": (SymmetricTernaryParameters, MultiStepLeaky, "atan"),
                "current_lif": (CurrentLIFParameters, MultiStepCurrentLeaky, "rectangular"),
                "dynamic": (DynamicParameters, MultiStepDynamic, "rectangular"),
                "sj_lif": (SJLIFParameters, MultiStepSJLeaky, "atan")}
    for name, (params_cls, module_cls, surrogate) in expected.items():
        kind = NEURONS[name]
        assert isinstance(kind, NeuronKind) and kind.name == name
        assert kind.parameters is params_cls and kind.module is module_cls
        assert kind.default_surrogate["name"] == surrogate
        neuron = make_neuron(name)
        assert type(neuron) is module_cls and neuron.params == params_cls()
    assert dict(NEURONS["current_lif"].default_surrogate) == {"name": "rectangular", "width": 0.5}
    assert NEURONS["ternary"].parameter_names == ("beta", "threshold", "neg_threshold", "learn_neg_threshold",
                                                  "surrogate_branches", "neg_threshold_param", "neg_threshold_max")
    assert NEURONS["lif"].parameter_names == ("beta", "threshold", "reset", "fire")
    assert NEURONS["symmetric_ternary"].parameter_names == ("beta", "threshold", "surrogate_branches")
    assert NEURONS["sj_lif"].parameter_names == ("tau", "threshold", "reset", "fire")
    assert dict(NEURONS["sj_lif"].default_surrogate) == {"name": "atan", "alpha": 2.0}


def test_parameter_objects_are_frozen_validated_values():
    from snnrl_sb3.kernels import LIFParameters, TernaryParameters, neuron_parameters

    p = neuron_parameters("ternary", {"neg_threshold": 1.5, "beta": 1})
    assert p == TernaryParameters(beta=1.0, neg_threshold=1.5) and isinstance(p.beta, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.beta = 0.5
    assert neuron_parameters("lif") == LIFParameters() and neuron_parameters("lif", None) == LIFParameters()
    assert hash(p) == hash(TernaryParameters(beta=1.0, neg_threshold=1.5))


@pytest.mark.parametrize("kind,params,exc,match", [
    ("lif", {"neg_threshold": 2.0}, TypeError, "bad parameters \\['neg_threshold'\\] for neuron 'lif': it takes "
                                               "\\['beta', 'fire', 'reset', 'threshold'\\]; neg_threshold is a "
                                               "parameter of \\['ternary'\\]"),
    ("lif", {"symmetric": True}, TypeError, "bad parameters \\['symmetric'\\] for neuron 'lif'"),
    ("symmetric_ternary", {"neg_threshold": 2.0}, TypeError, "for neuron 'symmetric_ternary'"),
    ("ternary", {"neg_threshold": None}, TypeError, "neg_threshold must be a real number, got NoneType"),
    ("ternary", {"learn_neg_threshold": 1}, TypeError, "learn_neg_threshold must be a bool"),
    ("lif", {"surrogate": "atan"}, TypeError, "not neuron parameters: pass them to make_neuron"),
    ("current_lif", {"beta": 0.9}, TypeError, "it takes \\['current_decay', 'threshold', 'volt_decay'\\]"),
    ("lif", {"beta": float("nan")}, ValueError, "beta must be finite, got nan"),
    ("lif", {"threshold": float("inf")}, ValueError, "threshold must be finite, got inf"),
    ("lif", {"beta": 1.5}, ValueError, "beta must be <= 1.0, got 1.5"),
    ("current_lif", {"volt_decay": -0.1}, ValueError, "volt_decay must be >= 0.0"),
    ("dynamic", {"theta_r": 0.6}, ValueError, "theta_r \\(reset voltage\\) must be below threshold"),
    ("dynamic", {"theta_u": 3.0}, ValueError, "theta_u must be <= 2.0"),
    ("izhikevich", {}, ValueError, "unknown neuron 'izhikevich'"),
    ("lif", ["beta"], TypeError, "must be a mapping"),
    # the options of the faithful presets: each belongs to its kinds, each value is checked
    ("lif", {"neg_threshold_param": "clamped"}, TypeError, "neg_threshold_param is a parameter of \\['ternary'\\]"),
    ("lif", {"surrogate_branches": "sign"}, TypeError,
     "surrogate_branches is a parameter of \\['symmetric_ternary', 'ternary'\\]"),
    ("symmetric_ternary", {"neg_threshold_param": "clamped"}, TypeError,
     "neg_threshold_param is a parameter of \\['ternary'\\]"),
    ("ternary", {"reset": "zero"}, TypeError, "reset is a parameter of \\['lif', 'sj_lif'\\]"),
    ("ternary", {"fire": "ge"}, TypeError, "fire is a parameter of \\['lif', 'sj_lif'\\]"),
    ("sj_lif", {"beta": 0.5}, TypeError, "beta is a parameter of \\['lif', 'symmetric_ternary', 'ternary'\\]"),
    ("lif", {"reset": "hard"}, ValueError, "unknown reset 'hard'; allowed: \\['subtract', 'zero'\\]"),
    ("lif", {"reset": None}, TypeError, "reset must be a string"),
    ("lif", {"fire": ">="}, ValueError, "unknown fire '>='; allowed: \\['ge', 'gt'\\]"),
    ("sj_lif", {"fire": "geq"}, ValueError, "unknown fire 'geq'"),
    ("sj_lif", {"tau": 0.5}, ValueError, "tau must be >= 1.0, got 0.5"),
    ("sj_lif", {"threshold": 0.0}, ValueError, "threshold must be > 0.0"),
    ("ternary", {"surrogate_branches": "sum"}, ValueError, "unknown surrogate_branches 'sum'; allowed: "
                                                           "\\['both', 'sign'\\]"),
    ("symmetric_ternary", {"surrogate_branches": True}, TypeError, "surrogate_branches must be a string"),
    ("ternary", {"neg_threshold_param": "raw"}, ValueError, "unknown neg_threshold_param 'raw'; allowed: "
                                                            "\\['clamped', 'softplus'\\]"),
    ("ternary", {"neg_threshold_max": 5.0}, ValueError,
     "neg_threshold_max applies to neg_threshold_param='clamped' only"),
    ("ternary", {"neg_threshold_param": "clamped", "neg_threshold": 12.0}, ValueError,
     "neg_threshold must be <= 10.0, got 12.0 \\(the clamped θ⁻ starts inside \\[0, neg_threshold_max=10.0\\]\\)"),
    ("ternary", {"neg_threshold_param": "clamped", "neg_threshold": -0.5}, ValueError, "neg_threshold must be >= 0.0"),
    ("ternary", {"neg_threshold_param": "clamped", "neg_threshold_max": 0.0}, ValueError,
     "neg_threshold_max must be > 0.0"),
    ("ternary", {"neg_threshold_param": "clamped", "neg_threshold_max": 1.5}, ValueError,
     "neg_threshold must be <= 1.5, got 2.0"),
    ("ternary", {"neg_threshold_param": "clamped", "neg_threshold_max": float("inf")}, ValueError,
     "neg_threshold_max must be finite"),
])
def test_neuron_parameters_errors(kind, params, exc, match):
    from snnrl_sb3.kernels import neuron_parameters

    with pytest.raises(exc, match=match):
        neuron_parameters(kind, params)


def test_make_neuron_surrogate_and_backend_are_not_parameters():
    from snnrl_sb3.surrogate import ATan, Trapezoid, rectangular

    assert isinstance(make_neuron("lif").surrogate, ATan)
    default = make_neuron("current_lif").surrogate
    assert isinstance(default, Trapezoid) and default.w1 == default.w2 == 0.5
    sg = rectangular(0.3)
    assert make_neuron("dynamic", surrogate=sg).surrogate is sg  # an already-built instance is used as is
    assert make_neuron("lif", beta=0.8, surrogate="trapezoid").surrogate.spec() == {"name": "trapezoid", "w1": 0.25,
                                                                                      "w2": 0.75}
    assert make_neuron("ternary", surrogate="atan", surrogate_kwargs={"alpha": 3.0}).surrogate.alpha == 3.0
    assert make_neuron("current_lif", backend="compile").backend == "compile"
    with pytest.raises(ValueError, match="surrogate_kwargs needs surrogate"):
        make_neuron("lif", surrogate_kwargs={"alpha": 3.0})
    with pytest.raises(ValueError, match="unknown backend 'jit'"):
        make_neuron("dynamic", backend="jit")


def test_new_parameters_are_json_plain_and_normalised():
    import json

    from snnrl_sb3.kernels import (
        LIFParameters,
        SJLIFParameters,
        SymmetricTernaryParameters,
        TernaryParameters,
        neuron_parameters,
    )

    datsqn = {"beta": 0.9, "threshold": 1.0, "neg_threshold": 2.0, "learn_neg_threshold": True,
              "surrogate_branches": "sign", "neg_threshold_param": "clamped", "neg_threshold_max": 10.0}
    assert json.loads(json.dumps(datsqn)) == datsqn
    p = neuron_parameters("ternary", datsqn)
    assert p == TernaryParameters(surrogate_branches="sign", neg_threshold_param="clamped")  # max defaults to 10
    assert dataclasses.asdict(p) == datsqn
    assert neuron_parameters("ternary").neg_threshold_max is None  # softplus: no bound
    assert neuron_parameters("ternary", {"neg_threshold_param": "clamped", "neg_threshold": 0}).neg_threshold == 0.0
    assert neuron_parameters("lif", {"reset": "zero"}) == LIFParameters(reset="zero", fire="gt")
    assert neuron_parameters("symmetric_ternary", {"surrogate_branches": "sign"}) == SymmetricTernaryParameters(
        surrogate_branches="sign")
    assert neuron_parameters("sj_lif") == SJLIFParameters(tau=2.0, threshold=1.0, reset="zero", fire="ge")
    assert isinstance(neuron_parameters("sj_lif", {"tau": 2}).tau, float)
    for cls in (LIFParameters, TernaryParameters, SymmetricTernaryParameters, SJLIFParameters):
        assert set(cls.choices) <= {f.name for f in dataclasses.fields(cls)}
        assert "choices" not in {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("kwargs,match", [
    (dict(neg_threshold=2.0, reset="zero"), "reset and fire apply to the binary neuron only"),
    (dict(symmetric=True, fire="ge"), "reset and fire apply to the binary neuron only"),
    (dict(surrogate_branches="sign"), "surrogate_branches='sign' applies to the ternary neurons only"),
    (dict(neg_threshold_param="clamped"), "apply to the asymmetric ternary neuron only"),
    (dict(symmetric=True, neg_threshold_max=3.0), "apply to the asymmetric ternary neuron only"),
    (dict(reset="hard"), "unknown reset 'hard'"),
])
def test_multistep_leaky_refuses_options_of_another_variant(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiStepLeaky(**kwargs)


def test_multistep_leaky_is_still_constructible_directly():
    from snnrl_sb3.kernels import LIFParameters, SymmetricTernaryParameters, TernaryParameters

    assert MultiStepLeaky(beta=0.7).params == LIFParameters(beta=0.7)
    ternary = MultiStepLeaky(beta=0.7, threshold=0.5, neg_threshold=1.2, learn_neg_threshold=False,
                             surrogate="trapezoid", surrogate_kwargs={"w1": 0.1, "w2": 0.2}, backend="eager")
    assert ternary.params == TernaryParameters(0.7, 0.5, 1.2, False) and not ternary.neg.rho.requires_grad
    assert MultiStepLeaky(symmetric=True).params == SymmetricTernaryParameters()
    with pytest.raises(ValueError, match="neg_threshold does not apply to symmetric=True"):
        MultiStepLeaky(symmetric=True, neg_threshold=2.0)
    with pytest.raises(TypeError, match="params must be one of"):
        MultiStepLeaky.from_parameters(object())


def test_deprecated_modules_reexport_the_new_names():
    from snnrl_sb3 import dynamic as old_dynamic
    from snnrl_sb3 import kernels, multistep

    for name in ("MultiStepNeuron", "MultiStepLeaky", "MultiStepCurrentLeaky", "NEURONS", "BACKENDS", "make_neuron",
                 "decay_matrix"):
        assert getattr(multistep, name) is getattr(kernels, name)
    assert old_dynamic.MultiStepDynamic is kernels.MultiStepDynamic
    assert "snnrl_sb3.kernels" in multistep.__doc__ and "snnrl_sb3.kernels.dynamic" in old_dynamic.__doc__


def test_dynamic_kind_is_registered_without_importing_the_old_module():
    code = ("import sys; from snnrl_sb3.kernels import NEURONS, make_neuron; "
            "assert 'dynamic' in NEURONS; make_neuron('dynamic'); assert 'snnrl_sb3.dynamic' not in sys.modules; "
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# --- defects found by fuzzing -------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda: make_neuron("ternary", neg_threshold=1e39), "neg_threshold must be finite in float32"),
    (lambda: make_neuron("lif", threshold=1e39), "threshold must be finite in float32"),
    (lambda: make_neuron("current_lif", threshold=-1e39), "threshold must be > 0.0"),
    (lambda: MultiStepLeaky(threshold=3.5e38), "threshold must be finite in float32"),
    (lambda: make_neuron("dynamic", theta_s=1e39), "theta_s must be finite in float32"),
    (lambda: make_neuron("dynamic", theta_v=-1e39), "theta_v must be finite in float32"),
])
def test_parameters_must_be_finite_in_float32(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_largest_float32_threshold_still_trains_finite():
    neuron = make_neuron("ternary", threshold=3.4e38, neg_threshold=3.4e38)
    x = (torch.randn(4, 3, 5) * 2).requires_grad_()
    neuron(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(neuron.neg.rho.grad).all()


@pytest.mark.parametrize("kind", ["lif", "ternary", "symmetric_ternary", "current_lif", "dynamic", "sj_lif"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_input_is_refused_with_a_clear_type_error(kind, dtype):
    x = torch.ones(3, 2, 4, dtype=dtype)
    with pytest.raises(TypeError, match=f"input must be a floating-point tensor, got {dtype}"):
        make_neuron(kind)(x)
    with pytest.raises(TypeError, match=r"input must be a torch\.Tensor, got list"):
        make_neuron(kind)([[1.0]])


def test_decay_matrix_from_inference_mode_can_be_saved_for_backward():
    # one model acts under inference_mode (the matrix gets cached), another one then trains
    with torch.inference_mode():
        Readout(5, 3, mode="membrane_mean", beta=0.37)(torch.rand(6, 2, 5))
        Readout(5, 3, mode="membrane_max", beta=0.37)(torch.rand(6, 2, 5))
        cached = decay_matrix(6, 0.37)
    assert not cached.is_inference()
    readout = Readout(5, 3, mode="membrane_max", beta=0.37)
    spikes = torch.rand(6, 2, 5, requires_grad=True)
    readout(spikes).sum().backward()  # failed with "Inference tensors cannot be saved for backward"
    assert spikes.grad is not None
    x = torch.randn(6, 4, requires_grad=True)
    (decay_matrix(6, 0.37) @ x).sum().backward()
    assert x.grad is not None


def test_decay_matrix_from_inference_mode_does_not_break_the_dynamic_neuron():
    neuron = make_neuron("dynamic", current_decay=0.41)
    with torch.inference_mode():
        neuron(torch.randn(7, 1, 3))
        neuron(torch.randn(7, 64, 300))  # the torch kernel, not NumPy
    x = torch.randn(7, 2, 3, requires_grad=True)
    neuron(x).sum().backward()
    assert x.grad is not None


def test_decay_matrix_cache_is_bounded_and_per_device():
    from snnrl_sb3.kernels import _time

    small = decay_matrix(8, 0.9)
    assert decay_matrix(8, 0.9) is small  # cached
    assert decay_matrix(8, 0.9, dtype=torch.float64) is not small
    assert decay_matrix(8, 0.9, device="meta").device.type == "meta"
    big_steps = _time.DECAY_MATRIX_CACHE_MAX_STEPS + 1
    assert decay_matrix(big_steps, 0.9) is not decay_matrix(big_steps, 0.9)  # large T: never kept alive
    for steps in range(1, 3 * _time.DECAY_MATRIX_CACHE_SIZE):
        decay_matrix(steps % _time.DECAY_MATRIX_CACHE_MAX_STEPS + 1, 0.5 + steps * 1e-4)
    assert len(_time._cache) <= _time.DECAY_MATRIX_CACHE_SIZE
    cached_bytes = sum(m.numel() * m.element_size() for m in _time._cache.values())
    assert cached_bytes <= _time.DECAY_MATRIX_CACHE_SIZE * _time.DECAY_MATRIX_CACHE_MAX_STEPS ** 2 * 8


def test_decay_matrix_of_long_runs_is_freed_after_use():
    import gc
    import weakref

    m = decay_matrix(2000, 0.9)
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None  # T = 2000 is 16 MB: nothing keeps it (T = 10**4 was 400 MB, kept by an lru_cache)


@pytest.mark.parametrize("steps,decay", [(1, 0.5), (9, 0.0), (9, 1.0), (13, 0.77), (70, 0.95)])
def test_decay_matrix_values(steps, decay):
    m = decay_matrix(steps, decay, dtype=torch.float64)
    expected = torch.tensor([[decay ** (t - s) if s <= t else 0.0 for s in range(steps)] for t in range(steps)],
                            dtype=torch.float64)
    assert torch.equal(m, expected)
    assert torch.equal(decay_matrix(steps, decay, transpose=True, dtype=torch.float64), expected.T)
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        decay_matrix(0, decay)
