"""``backend="cpp"``: the fused C++ kernels of the leaky neurons (:mod:`snnrl_sb3.kernels._cpp`).

* spike for spike equal to the eager kernel and the reference step loop (inputs on and next to both
  thresholds included), gradients (input, θ⁻) equal to the reference to 1e-5, for every option of the
  leaky kinds and every surrogate the kernels implement;
* everything else (another surrogate, float64, the other kinds) runs the eager kernels, and a failed
  build warns once and falls back to them;
* a policy built with ``backend="cpp"`` trains, saves and loads with its backend.

The extension is built once per machine (about 30-60 s, cached in ``TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``) and once per test session at most: every test shares the process's build.
Without a C++ compiler or ninja the tests that need the build are skipped (the fallback test still runs).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from snnrl_sb3.kernels import _cpp, make_neuron
from snnrl_sb3.surrogate import ATan, make_surrogate

#: (kind, parameters): every option of the leaky kinds (tests/test_kernel_contract.py's KIND_CASES), plus
#: the edge decays and a fixed θ⁻
LEAKY_CASES = [
    ("lif", {"beta": 0.8}),
    ("lif", {"beta": 0.8, "reset": "zero"}),
    ("lif", {"beta": 0.7, "fire": "ge"}),
    ("lif", {"beta": 0.9, "threshold": 0.6, "reset": "zero", "fire": "ge"}),
    ("lif", {"beta": 0.0}),
    ("ternary", {"beta": 0.85, "threshold": 0.6, "neg_threshold": 0.9}),
    ("ternary", {"beta": 1.0}),
    ("ternary", {"beta": 0.85, "threshold": 0.6, "neg_threshold": 0.9, "surrogate_branches": "sign"}),
    ("ternary", {"beta": 0.85, "threshold": 0.6, "neg_threshold": 0.9, "neg_threshold_param": "clamped"}),
    ("ternary", {"beta": 0.85, "threshold": 0.6, "neg_threshold": 0.9, "surrogate_branches": "sign",
                 "neg_threshold_param": "clamped", "neg_threshold_max": 5.0}),
    ("ternary", {"neg_threshold": 1.5, "learn_neg_threshold": False}),
    ("symmetric_ternary", {"beta": 0.9, "threshold": 0.7}),
    ("symmetric_ternary", {"beta": 0.9, "threshold": 0.7, "surrogate_branches": "sign"}),
]
CASE_IDS = [f"{kind}{params}" for kind, params in LEAKY_CASES]
#: the surrogates the C++ kernels implement (their defaults and other parameters)
SURROGATES = ["atan", {"name": "atan", "alpha": 3.5}, "trapezoid", {"name": "trapezoid", "w1": 0.1, "w2": 0.4},
              "rectangular", "triangular"]


@pytest.fixture(scope="session")
def cpp_built() -> None:
    """The extension of this session (built here at most once); the test is skipped when it cannot be built."""
    if _cpp.CppKernels.load() is None:
        pytest.skip(f"the C++ kernels cannot be built here: {_cpp.CppKernels.failed}")


def ran_cpp(out: torch.Tensor) -> bool:
    return out.grad_fn is not None and "LeakyFunction" in out.grad_fn.name()


def on_thresholds(shape: tuple[int, ...], threshold: float, neg_threshold: float) -> torch.Tensor:
    """Random currents, with some exactly on and one float away from both thresholds (at t = 0 the membrane is
    the current itself, so ``>`` and ``>=`` and the θ⁻ comparison all meet ties)."""
    x = torch.randn(*shape) * 1.5
    th = torch.tensor(threshold)
    neg = torch.tensor(-neg_threshold)
    ties = torch.stack([th, torch.nextafter(th, th + 1), torch.nextafter(th, th - 1),
                        neg, torch.nextafter(neg, neg + 1), torch.nextafter(neg, neg - 1)])
    flat = x.view(x.shape[0], -1)
    count = min(flat.shape[1], 6)
    flat[:, :count] = ties[:count]
    return x.requires_grad_()


def thresholds_of(neuron: torch.nn.Module) -> tuple[float, float]:
    neg = neuron.neg_threshold
    return neuron.threshold, neuron.threshold if neg is None else float(neg.detach())


@pytest.mark.parametrize("surrogate", SURROGATES, ids=str)
@pytest.mark.parametrize("kind,params", LEAKY_CASES, ids=CASE_IDS)
def test_cpp_kernel_equals_eager_and_reference(kind, params, surrogate, cpp_built):
    torch.manual_seed(5)
    eager = make_neuron(kind, surrogate=surrogate, **params)
    fast = make_neuron(kind, surrogate=surrogate, backend="cpp", **params)
    for shape in ((7, 6, 37), (1, 2, 3), (33, 3, 100)):  # T = 33: backward blocks narrower than the forward's
        x = on_thresholds(shape, *thresholds_of(eager))
        out, ref = fast(x), eager.reference(x)
        assert ran_cpp(out)
        assert torch.equal(out, ref) and torch.equal(out, eager(x))  # spike for spike
        weights = torch.randn_like(ref)
        fast_inputs = [x, *(p for p in fast.parameters() if p.requires_grad)]
        ref_inputs = [x, *(p for p in eager.parameters() if p.requires_grad)]
        learned = kind == "ternary" and params.get("learn_neg_threshold", True)
        assert len(fast_inputs) == len(ref_inputs) == (2 if learned else 1)  # x, and a trainable θ⁻
        for a, b in zip(torch.autograd.grad((out * weights).sum(), fast_inputs),
                        torch.autograd.grad((ref * weights).sum(), ref_inputs)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_cpp_kernel_without_grad_noncontiguous_and_thread_count(cpp_built):
    torch.manual_seed(6)
    neuron = make_neuron("ternary", backend="cpp")
    x = torch.randn(8, 300, 64).transpose(1, 2) * 2  # 19200 elements per step: past the NumPy forms
    with torch.no_grad():
        assert torch.equal(neuron(x), neuron.reference(x))
    with torch.inference_mode():
        assert torch.equal(neuron(x), neuron.reference(x))
    grads = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):  # block sums in a fixed order: the same gradients for any number of threads
            torch.set_num_threads(count)
            xg = x.detach().requires_grad_()
            out = neuron(xg)
            grads.append(torch.autograd.grad((out * torch.linspace(-1, 1, 64)[:, None]).sum(),
                                             [xg, neuron.neg.rho]))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*grads))


class _ShiftedATan(ATan):
    """A subclass may change ``grad``: the C++ kernels do not take it for an ATan."""

    def grad(self, x):
        return super().grad(x) * 0.5


@pytest.mark.parametrize("kind,params,dtype", [
    ("ternary", {"surrogate": "fast_sigmoid"}, torch.float32),
    ("lif", {"surrogate": "sigmoid"}, torch.float32),
    ("lif", {"surrogate": _ShiftedATan()}, torch.float32),
    ("ternary", {}, torch.float64),
    ("current_lif", {}, torch.float32),
    ("sj_lif", {}, torch.float32),
])
def test_unsupported_cases_run_the_eager_kernels(kind, params, dtype):
    torch.manual_seed(7)
    fast = make_neuron(kind, backend="cpp", **params).to(dtype)
    eager = make_neuron(kind, **params).to(dtype)
    x = (torch.randn(5, 3, 8, dtype=dtype) * 1.5).requires_grad_()
    out = fast(x)
    assert not ran_cpp(out) and out.grad_fn is not None
    assert torch.equal(out, eager(x))
    grad_fast, = torch.autograd.grad(out.sum(), x)
    grad_eager, = torch.autograd.grad(eager(x).sum(), x)
    assert torch.equal(grad_fast, grad_eager)  # the very same kernels


def test_failed_build_warns_once_and_falls_back_to_eager(monkeypatch):
    def broken_build():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(_cpp.CppKernels, "module", None)
    monkeypatch.setattr(_cpp.CppKernels, "failed", None)
    monkeypatch.setattr(_cpp, "_build", broken_build)
    torch.manual_seed(8)
    x = (torch.randn(5, 4, 6) * 2).requires_grad_()
    neuron = make_neuron("ternary", backend="cpp")
    with pytest.warns(RuntimeWarning, match="backend='cpp' is unavailable .*Ninja is required"):
        out = neuron(x)
    assert torch.equal(out, make_neuron("ternary")(x)) and out.grad_fn.name() == "LeakyKernelBackward"
    assert "Ninja is required" in _cpp.CppKernels.failed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once per process
        make_neuron("lif", reset="zero", backend="cpp")(x).sum().backward()


def test_surrogate_codes_are_the_grad_times_constants():
    assert _cpp.surrogate_code(make_surrogate("rectangular", {"width": 0.3})) == (1, 0.3, 1 / 0.6, 0.0)
    kind, c, ck2, _ = _cpp.surrogate_code(make_surrogate("atan", {"alpha": 2.0}))
    assert (kind, c) == (0, 1.0) and ck2 == pytest.approx(torch.pi ** 2)
    assert _cpp.surrogate_code(make_surrogate("triangular")) == (2, 1.0, -1.0, 1.0)
    assert _cpp.surrogate_code(make_surrogate("fast_sigmoid")) is None
    assert _cpp.extension_name().startswith("snnrl_sb3_leaky_v")


def test_policy_with_cpp_backend_trains_saves_and_loads(tmp_path, tiny_model, one_torch_thread, cpp_built):
    from stable_baselines3 import DQN

    # the policy-level backend (neuron_kwargs={"backend": "cpp"} is its deprecated spelling, moved there)
    model = tiny_model("DQN", {"neuron": "ternary", "backend": "cpp", "num_steps": 3})
    model.learn(60)
    model.save(tmp_path / "m.zip")
    loaded = DQN.load(tmp_path / "m.zip", device="cpu")
    for net in (loaded.q_net, loaded.q_net_target):
        assert {m.backend for m in net.modules() if hasattr(m, "backend")} == {"cpp"}
    obs = torch.randn(70, 4)  # batch 70: past the NumPy forms, so the C++ forward runs
    with torch.no_grad():
        assert torch.equal(model.q_net(obs), loaded.q_net(obs))
