import copy
import pickle
import subprocess
import sys

import pytest
import snntorch as snn
import torch

from snnrl_sb3 import BernoulliEncoder, MultiStepCurrentLeaky, MultiStepLeaky, Readout, make_neuron, spiking_mlp
from snnrl_sb3.body import spiking_nature_cnn
from snnrl_sb3.coding import make_encoder
from snnrl_sb3.multistep import decay_matrix
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
def test_fast_kernel_equals_step_by_step_reference(kind, params, steps):
    torch.manual_seed(steps)
    neuron = make_neuron(kind, **params)
    x = (torch.randn(steps, 6, 33) * 1.5).requires_grad_()
    assert_kernel_matches_reference(neuron, x)


def test_binary_kernel_equals_snn_leaky_loop():
    torch.manual_seed(1)
    x = torch.randn(30, 4, 16) * 1.5
    lif = snn.Leaky(beta=0.85)
    mem, expected = lif.init_leaky(), []
    for t in range(x.shape[0]):
        spk, mem = lif(x[t], mem)
        expected.append(spk)
    assert torch.equal(make_neuron("lif", beta=0.85)(x), torch.stack(expected))


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
    (lambda: make_neuron("lif", tau=2.0), TypeError, "bad parameters \\['tau'\\] for neuron 'lif'"),
    (lambda: make_neuron("ternary", neg_threshold=0.0), ValueError, "neg_threshold must be >"),
    (lambda: MultiStepLeaky(beta=2.0), ValueError, "beta must be <= 1.0"),
    (lambda: MultiStepCurrentLeaky(threshold=-1.0), ValueError, "threshold must be > 0.0"),
    (lambda: MultiStepLeaky(backend="jit"), ValueError, "unknown backend 'jit'"),
    (lambda: MultiStepCurrentLeaky(backend=None), TypeError, "backend must be a string"),
    (lambda: make_neuron("lif")(torch.randn(4)), ValueError, "time-major"),
    (lambda: make_encoder("poisson"), ValueError, "unknown encoder 'poisson'"),
    (lambda: Readout(3, 2, mode="spikes"), ValueError, "unknown decoder 'spikes'"),
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


@pytest.mark.parametrize("kind,params", FAST_PATH_CASES + [("ternary", dict(beta=0.85)), ("current_lif", dict())])
@pytest.mark.parametrize("steps", [1, 2, 8])
def test_kernel_surrogate_paths_match_reference(kind, params, steps):
    torch.manual_seed(10 + steps)
    neuron = make_neuron(kind, **params)
    x = (torch.randn(steps, 5, 3, 7) * 1.5).requires_grad_()  # extra feature dims
    assert_kernel_matches_reference(neuron, x)


@pytest.mark.parametrize("kind", ["lif", "ternary"])
def test_kernel_with_non_even_custom_surrogate(kind):
    torch.manual_seed(3)
    neuron = make_neuron(kind, surrogate=_Skewed())
    x = (torch.randn(6, 4, 9) * 1.5).requires_grad_()
    fast, ref = neuron(x), neuron.reference(x)
    assert torch.equal(fast, ref)
    inputs = [x] + [p for p in neuron.parameters() if p.requires_grad]
    for a, b in zip(torch.autograd.grad(fast.sum(), inputs), torch.autograd.grad(ref.sum(), inputs)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind,params", [("lif", dict(beta=0.8)), ("ternary", dict(beta=0.9, neg_threshold=0.9)),
                                         ("symmetric_ternary", dict(beta=0.95))])
def test_kernel_membranes_are_bit_identical_to_step_function(kind, params):
    from snnrl_sb3.neurons import ternary_leaky_step

    torch.manual_seed(5)
    neuron = make_neuron(kind, **params)
    x = (torch.randn(25, 8, 64) * 1.5).requires_grad_()
    mem_kernel = neuron(x).grad_fn.saved_tensors[0]
    mem, expected = torch.zeros_like(x[0]), []
    with torch.no_grad():
        for t in range(x.shape[0]):
            _, mem = ternary_leaky_step(x[t], mem, neuron.beta, neuron.threshold, neuron.neg_threshold,
                                        neuron.surrogate)
            expected.append(mem)
    assert torch.equal(mem_kernel, torch.stack(expected))


def test_current_kernel_membranes_are_bit_identical_to_step_function():
    from snnrl_sb3.neurons import current_leaky_step

    torch.manual_seed(6)
    neuron = make_neuron("current_lif")
    x = (torch.randn(12, 8, 40) * 0.8).requires_grad_()
    volt_kernel = neuron(x).grad_fn.saved_tensors[0]
    current = volt = spike = torch.zeros_like(x[0])
    expected = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            spike, current, volt = current_leaky_step(x[t], current, volt, spike, neuron.current_decay,
                                                      neuron.volt_decay, neuron.threshold, neuron.surrogate)
            expected.append(volt)
    assert torch.equal(volt_kernel, torch.stack(expected))


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
def test_numpy_inference_path_equals_torch_kernel(kind, params, steps, batch):
    from snnrl_sb3 import multistep

    torch.manual_seed(steps + batch)
    neuron = make_neuron(kind, **params)
    x = (torch.randn(1, batch, 40) * 2).expand(steps, batch, 40)  # constant input, as the body passes it
    with torch.no_grad():
        fast = neuron(x)
    assert multistep._use_numpy(x)
    limit = multistep.NUMPY_MAX_STEP_NUMEL
    try:
        multistep.NUMPY_MAX_STEP_NUMEL = 0  # force the torch kernel
        with torch.no_grad():
            assert not multistep._use_numpy(x)
            kernel = neuron(x)
    finally:
        multistep.NUMPY_MAX_STEP_NUMEL = limit
    assert torch.equal(fast, kernel)
    assert torch.equal(fast, neuron.reference(x).detach())


def test_numpy_path_is_not_used_when_gradients_are_needed():
    from snnrl_sb3 import multistep

    x = torch.randn(4, 1, 8, requires_grad=True)
    assert not multistep._use_numpy(x)
    with torch.no_grad():
        assert multistep._use_numpy(x)
    assert not multistep._use_numpy(torch.randn(4, 64, 256))  # large: the torch kernel wins


# --- backend="compile": torch.compile'd kernels, eager fallback ------------------------------------

COMPILE_CASES = [
    ("lif", dict(beta=0.8)),
    ("ternary", dict(beta=0.83, threshold=0.3, neg_threshold=0.7)),
    ("symmetric_ternary", dict(beta=0.9, surrogate="trapezoid")),
    ("current_lif", dict(surrogate="atan")),
]


@pytest.mark.parametrize("kind,params", COMPILE_CASES)
def test_compiled_kernels_match_reference(kind, params):
    from snnrl_sb3.multistep import _CompiledKernel

    torch.manual_seed(4)
    neuron = make_neuron(kind, backend="compile", **params)
    x = (torch.randn(4, 3, 10) * 1.5).requires_grad_()
    assert_kernel_matches_reference(neuron, x)  # spikes exact, gradients to 1e-5
    with torch.no_grad():  # the no-grad forward (target networks) takes the compiled kernel too
        big = torch.randn(3, 70, 40) * 1.5
        assert torch.equal(neuron(big), neuron.reference(big))
    if _CompiledKernel.failed is not None:
        pytest.skip(f"torch.compile unavailable here, the eager fallback was tested: {_CompiledKernel.failed}")


def test_compile_backend_falls_back_to_eager_with_a_warning(monkeypatch):
    from snnrl_sb3 import multistep

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(multistep._CompiledKernel, "failed", None)
    monkeypatch.setattr(multistep, "_LEAKY_FORWARD", multistep._CompiledKernel(multistep._leaky_forward_graph))
    monkeypatch.setattr(multistep.torch, "compile", broken_compile)
    torch.manual_seed(0)
    x = torch.randn(5, 4, 6, requires_grad=True) * 2
    eager = make_neuron("ternary")(x)
    with pytest.warns(RuntimeWarning, match="backend='compile' is unavailable .*no C\\+\\+ compiler"):
        out = make_neuron("ternary", backend="compile")(x)
    assert torch.equal(out, eager)
    assert "no C++ compiler" in multistep._CompiledKernel.failed
    out.sum().backward()  # the backward falls back as well, silently: the failure is process-wide
