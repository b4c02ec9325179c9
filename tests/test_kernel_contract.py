"""The surrogate / kernel contract, over every registered surrogate and every kernel form.

* a surrogate's fast gradient :meth:`~snnrl_sb3.surrogate.Surrogate.grad_times` equals
  ``grad * surrogate.grad(z)`` to 1 ulp (``z = x - shift`` or ``shift - x``), as a fresh tensor;
* every surrogate's ``grad`` is finite, nonnegative, even where it claims to be, and integrates
  to its documented ``area``;
* every kernel form (eager, compile, cpp, NumPy no-grad forward) of every kind, with every value of every
  option of the kind (:data:`KIND_CASES`: resets, firing conditions, ternary surrogate branches, θ⁻
  parametrisations), equals the reference step loop spike for spike, with gradients (input and
  trainable parameters) to 1e-5.

``SNNRL_TEST_DEVICE=cuda`` runs the device-aware cases on a GPU (see ``conftest.py``).
"""

from __future__ import annotations

import math

import pytest
import torch

from snnrl_sb3.kernels import NEURONS, base, make_neuron, neuron_parameters
from snnrl_sb3.surrogate import SURROGATES, Surrogate, make_surrogate


class Skewed(Surrogate):
    """Not even, σ'(-z) != σ'(z): only the base ``grad_times`` and a correct ``flip`` get it right."""

    def grad(self, x):
        s = torch.sigmoid(3.0 * x + 0.5)
        return 3.0 * s * (1 - s)

    @property
    def area(self):
        return 1.0

    def spec(self):
        return {"name": "skewed"}


#: every registered surrogate with its defaults, a few other parameters, and a custom non-even one
SURROGATE_CASES = [*((name, {}) for name in sorted(SURROGATES)),
                   ("trapezoid", {"w1": 0.1, "w2": 0.4}), ("rectangular", {"width": 0.3}),
                   ("triangular", {"width": 1e-3}), ("atan", {"alpha": 3.5}), ("atan", {"alpha": 1e-6}),
                   ("fast_sigmoid", {"slope": 10.0}), ("sigmoid", {"slope": 5.0}), ("rectangular", {"width": 1e6})]


def build(name: str, params: dict) -> Surrogate:
    return Skewed() if name == "skewed" else make_surrogate(name, params)


ALL_CASES = [*SURROGATE_CASES, ("skewed", {})]
IDS = [f"{name}{params or ''}" for name, params in ALL_CASES]


def ulp_distance_at_most_one(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise: ``a`` and ``b`` equal (signed zeros alike) or adjacent floats."""
    inf = torch.full_like(b, math.inf)
    up, down = torch.nextafter(b, inf), torch.nextafter(b, -inf)
    same = (a == b) | (torch.isnan(a) & torch.isnan(b))
    return same | (a == up) | (a == down)


def probe_points(device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    torch.manual_seed(0)
    special = torch.tensor([0.0, -0.0, 0.25, -0.25, 0.3, 0.5, -0.5, 0.75, 1.0, -1.0, 1e-3, 1e-7, 1e3, -1e3, 1e20,
                            -1e30, 3.4e38, -3.4e38], dtype=dtype)
    return torch.cat([torch.randn(4000, dtype=dtype) * 1.5, torch.randn(1000, dtype=dtype) * 1e-3,
                      torch.rand(1000, dtype=dtype) * 200 - 100, special]).to(device)


@pytest.mark.parametrize("name,params", ALL_CASES, ids=IDS)
@pytest.mark.parametrize("shift,flip", [(0.0, False), (0.7, False), (1.0, False), (-1.3, True), (-2.0, True),
                                        (0.4, True)])
def test_fast_gradient_equals_base_to_one_ulp(name, params, shift, flip, device):
    sg = build(name, params)
    x = probe_points(device)
    grad = torch.randn_like(x) * 3
    x_before, grad_before = x.clone(), grad.clone()
    z = torch.rsub(x, shift) if flip else torch.sub(x, shift)
    expected = grad * sg.grad(z)
    fast = sg.grad_times(x, grad, shift=shift, flip=flip)
    bad = ~ulp_distance_at_most_one(fast, expected)
    assert not bad.any(), (x[bad][:5], fast[bad][:5], expected[bad][:5])
    assert fast.data_ptr() not in (x.data_ptr(), grad.data_ptr())  # a fresh tensor
    assert torch.equal(x, x_before) and torch.equal(grad, grad_before)  # inputs untouched
    alone = sg.grad_times(x, None, shift=shift, flip=flip)  # grad=None: σ'(z) itself
    assert not (~ulp_distance_at_most_one(alone, sg.grad(z))).any()
    assert alone.data_ptr() != x.data_ptr()
    out = torch.full_like(x, float("nan"))  # out=: written in place, same values
    assert sg.grad_times(x, grad, shift=shift, flip=flip, out=out) is out
    assert torch.equal(out, fast) or not (~ulp_distance_at_most_one(out, expected)).any()
    assert torch.equal(sg.grad_times(x, None, shift=shift, flip=flip, out=out), alone)
    if name in ("atan", "trapezoid", "rectangular", "triangular"):  # the library's fast paths: bitwise or 1 ulp
        assert type(sg).grad_times is not Surrogate.grad_times


@pytest.mark.parametrize("name,params", ALL_CASES, ids=IDS)
def test_surrogate_grad_is_finite_nonnegative_and_even_where_claimed(name, params, device):
    sg = build(name, params)
    x = probe_points(device)
    g = sg.grad(x)
    assert g.dtype == x.dtype and g.shape == x.shape
    assert torch.isfinite(g).all() and (g >= 0).all()
    if sg.even:
        torch.testing.assert_close(sg.grad(-x), g, rtol=1e-6, atol=1e-7)
    else:
        assert not torch.allclose(sg.grad(-x), g)
    assert name == "skewed" or sg.even  # every library surrogate is even


@pytest.mark.parametrize("name,params", ALL_CASES, ids=IDS)
def test_surrogate_integrates_to_its_documented_area(name, params):
    sg = build(name, params)
    area = sg.area
    assert area is not None, f"{name} documents no area"
    if math.isinf(area):
        x = torch.linspace(-100.0, 100.0, 1001, dtype=torch.float64)
        assert torch.trapezoid(sg.grad(x), x).item() == pytest.approx(200.0)  # unbounded: grows with the range
        return
    # x = sinh(u): fine steps near 0 (narrow windows), long tails (atan, fast sigmoid) up to |x| = 1e13
    u = torch.linspace(-math.asinh(1e13), math.asinh(1e13), 600_001, dtype=torch.float64)
    u = torch.cat([u, torch.asinh(torch.tensor([-1e-3, 1e-3], dtype=torch.float64))]).sort().values
    x = torch.sinh(u)
    integral = torch.trapezoid(sg.grad(x) * torch.cosh(u), u).item()
    tolerance = 2e-3 if name in ("triangular", "rectangular", "trapezoid") and min(params.values() or [1]) < 0.01 \
        else 1e-3
    assert integral == pytest.approx(area, rel=tolerance)


# --- kernel forms against the reference step loop --------------------------------------------------

_TERNARY = {"beta": 0.85, "threshold": 0.6, "neg_threshold": 0.9}

#: (kind, parameters): every kind, and every value of every string option of every kind
#: (``test_every_kind_and_option_is_covered``), each alone and the published combinations
KIND_CASES = [
    ("lif", {"beta": 0.8}),
    ("lif", {"beta": 0.8, "reset": "zero"}),
    ("lif", {"beta": 0.7, "fire": "ge"}),
    ("lif", {"beta": 0.9, "threshold": 0.6, "reset": "zero", "fire": "ge"}),
    ("ternary", _TERNARY),
    ("ternary", {**_TERNARY, "surrogate_branches": "sign"}),
    ("ternary", {**_TERNARY, "neg_threshold_param": "clamped"}),
    ("ternary", {**_TERNARY, "surrogate_branches": "sign", "neg_threshold_param": "clamped",
                 "neg_threshold_max": 5.0}),  # DATSQN's neuron
    ("symmetric_ternary", {"beta": 0.9, "threshold": 0.7}),
    ("symmetric_ternary", {"beta": 0.9, "threshold": 0.7, "surrogate_branches": "sign"}),  # DTSQN's
    ("current_lif", {"current_decay": 0.4}),
    ("dynamic", {}),
    ("sj_lif", {}),  # DSQN's
    ("sj_lif", {"tau": 3.0, "reset": "subtract"}),
    ("sj_lif", {"tau": 1.5, "threshold": 0.5, "fire": "gt"}),
]
CASE_IDS = [f"{kind}{params or ''}" for kind, params in KIND_CASES]


def assert_matches_reference(neuron, x: torch.Tensor) -> None:
    fast, ref = neuron(x), neuron.reference(x)
    assert torch.equal(fast, ref)  # spike for spike
    weights = torch.randn_like(ref)
    inputs = [x] + [p for p in neuron.parameters() if p.requires_grad]
    for a, b in zip(torch.autograd.grad((fast * weights).sum(), inputs),
                    torch.autograd.grad((ref * weights).sum(), inputs)):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def kernel_input(kind: str, device: torch.device, shape: tuple[int, ...]) -> torch.Tensor:
    scale = {"current_lif": 0.8, "dynamic": 0.8, "sj_lif": 2.5}.get(kind, 1.5)  # sj_lif charges with X / tau
    return (torch.randn(*shape, device=device) * scale).requires_grad_()


def test_every_kind_and_option_is_covered():
    assert {kind for kind, _ in KIND_CASES} == set(NEURONS)
    for name, entry in NEURONS.items():
        for option, allowed in getattr(entry.parameters, "choices", {}).items():
            covered = {getattr(neuron_parameters(kind, params), option) for kind, params in KIND_CASES
                       if kind == name}
            assert covered == set(allowed), (name, option)


@pytest.mark.parametrize("kind,kind_params", KIND_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("name,params", ALL_CASES, ids=IDS)
def test_eager_kernel_equals_reference(kind, kind_params, name, params, device):
    torch.manual_seed(1)
    neuron = make_neuron(kind, surrogate=build(name, params), **kind_params).to(device)
    assert_matches_reference(neuron, kernel_input(kind, device, (7, 6, 37)))
    assert_matches_reference(neuron, kernel_input(kind, device, (1, 2, 3)))  # T = 1


@pytest.mark.parametrize("kind,kind_params", KIND_CASES, ids=CASE_IDS)
def test_numpy_forward_equals_reference(kind, kind_params, monkeypatch):
    torch.manual_seed(2)
    neuron = make_neuron(kind, **kind_params)
    x = kernel_input(kind, torch.device("cpu"), (9, 1, 40)).detach()
    calls = []
    original = base.use_numpy

    def spy(*args):
        calls.append(original(*args))
        return calls[-1]

    monkeypatch.setattr(f"snnrl_sb3.kernels.{neuron.__module__.rsplit('.', 1)[-1]}.use_numpy", spy)
    with torch.no_grad():
        out = neuron(x)
    assert calls == [True]  # the NumPy form ran
    assert torch.equal(out, neuron.reference(x))


@pytest.mark.parametrize("name,params", ALL_CASES, ids=IDS)
def test_compiled_kernel_equals_reference(name, params, device):
    """One small case per surrogate (compiling costs seconds per variant); the ternary kind uses both
    thresholds and the trainable θ⁻."""
    torch.manual_seed(3)
    neuron = make_neuron("ternary", surrogate=build(name, params), backend="compile", **_TERNARY).to(device)
    assert_matches_reference(neuron, kernel_input("ternary", device, (3, 2, 5)))
    if base.CompiledKernel.failed is not None:
        pytest.skip(f"torch.compile unavailable here, the eager fallback was tested: {base.CompiledKernel.failed}")


@pytest.mark.parametrize("kind,kind_params", [case for case in KIND_CASES if case != ("ternary", _TERNARY)],
                         ids=[i for i, case in zip(CASE_IDS, KIND_CASES) if case != ("ternary", _TERNARY)])
def test_compiled_kernels_of_the_other_cases_equal_reference(kind, kind_params, device):
    torch.manual_seed(4)
    neuron = make_neuron(kind, backend="compile", **kind_params).to(device)
    assert_matches_reference(neuron, kernel_input(kind, device, (3, 2, 5)))
    if base.CompiledKernel.failed is not None:
        pytest.skip(f"torch.compile unavailable here, the eager fallback was tested: {base.CompiledKernel.failed}")


@pytest.mark.parametrize("kind,kind_params", KIND_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("name,params", ALL_CASES, ids=IDS)
def test_cpp_backend_equals_reference(kind, kind_params, name, params, device):
    """``backend="cpp"`` for every kind, option and surrogate: the fused C++ kernels where they apply (the leaky
    kinds on CPU float32 with the ATan or trapezoid-family surrogates), the eager kernels elsewhere; the same
    contract either way (one build of the extension per session, see tests/test_kernel_cpp.py)."""
    torch.manual_seed(1)
    neuron = make_neuron(kind, surrogate=build(name, params), backend="cpp", **kind_params).to(device)
    assert_matches_reference(neuron, kernel_input(kind, device, (7, 6, 37)))
    assert_matches_reference(neuron, kernel_input(kind, device, (1, 2, 3)))  # T = 1
