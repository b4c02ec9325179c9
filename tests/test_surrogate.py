import pickle

import pytest
import snntorch as snn
import snntorch.surrogate as sts
import torch

from snnrl_sb3 import surrogate as S


def backward_of(sg, x):
    x = x.clone().requires_grad_()
    sg(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("w1,w2", [(0.25, 0.75), (0.0, 1.0), (0.5, 0.5), (0.1, 0.3)])
def test_trapezoid_backward_matches_formula_and_has_unit_area(w1, w2):
    x = torch.linspace(-2, 2, 40001, dtype=torch.float64)
    grad = backward_of(S.trapezoid(w1, w2), x)
    h = 1 / (w1 + w2)
    d = x.abs()
    expected = torch.where(d < w1, torch.full_like(d, h),
                           torch.where(d < w2, h * (w2 - d) / (w2 - w1 if w2 > w1 else 1), 0.0))
    torch.testing.assert_close(grad, expected)
    area = torch.trapezoid(grad, x).item()
    assert area == pytest.approx(1.0, abs=1e-3)


def test_trapezoid_forward_is_strict_heaviside():
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 1.0])
    assert S.trapezoid()(x).tolist() == [0, 0, 0, 1, 1]


def test_rectangular_and_triangular_are_trapezoid_limits():
    x = torch.linspace(-1.5, 1.5, 301)
    torch.testing.assert_close(backward_of(S.rectangular(0.5), x), (x.abs() < 0.5).float())  # Pop-SAN's window
    torch.testing.assert_close(backward_of(S.triangular(1.0), x), (1 - x.abs()).clamp(min=0))


def test_triangular_is_a_triangle_unlike_snntorch():
    x = torch.tensor([-0.5, 0.5])
    ours = backward_of(S.triangular(1.0), x)
    assert ours[0] == ours[1] > 0  # symmetric, positive
    theirs = backward_of(sts.triangular(), x)
    assert theirs[0] != theirs[1]  # snnTorch's is sign-shaped: documents why we ship our own


@pytest.mark.parametrize("ours,theirs", [
    (S.atan(2.0), sts.atan(alpha=2.0)),
    (S.fast_sigmoid(25.0), sts.fast_sigmoid(slope=25)),
    (S.sigmoid(25.0), sts.sigmoid(slope=25)),
])
def test_named_surrogates_match_snntorch(ours, theirs):
    x = torch.linspace(-2, 2, 101)
    torch.testing.assert_close(backward_of(ours, x), backward_of(theirs, x))
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("name", sorted(S.SURROGATES))
def test_every_surrogate_pickles_and_roundtrips_its_spec(name, tmp_path):
    sg = S.make_surrogate(name)
    again = pickle.loads(pickle.dumps(sg))
    x = torch.linspace(-1, 1, 11)
    torch.testing.assert_close(again.grad(x), sg.grad(x))
    assert S.make_surrogate(sg.spec()).spec() == sg.spec()
    torch.save(sg, tmp_path / "s.pt")
    assert torch.load(tmp_path / "s.pt", weights_only=False).spec() == sg.spec()


def test_usable_as_spike_grad_of_snntorch_neurons_and_picklable_there():
    lif = snn.Leaky(beta=0.9, spike_grad=S.trapezoid(0.2, 0.6))
    x = torch.full((3,), 1.5, requires_grad=True)
    spk, _ = lif(x, torch.zeros(3))
    spk.sum().backward()
    assert spk.tolist() == [1, 1, 1] and x.grad is not None
    clone = pickle.loads(pickle.dumps(snn.Leaky(beta=0.9, spike_grad=S.trapezoid())))
    assert isinstance(clone.spike_grad, S.Trapezoid)


def test_make_surrogate_by_name_with_params():
    assert S.make_surrogate("trapezoid", {"w1": 0.1, "w2": 0.2}).spec() == {"name": "trapezoid", "w1": 0.1, "w2": 0.2}
    assert S.make_surrogate({"name": "atan", "alpha": 3.0}).alpha == 3.0


@pytest.mark.parametrize("call,exc,match", [
    (lambda: S.trapezoid(0.8, 0.4), ValueError, "w1 <= w2"),
    (lambda: S.trapezoid(-0.1, 0.4), ValueError, "w1 must be >= 0"),
    (lambda: S.trapezoid(0.0, 0.0), ValueError, "w2 must be >= 1e-06"),
    (lambda: S.trapezoid("a", 1.0), TypeError, "w1 must be a real number"),
    (lambda: S.trapezoid(0.1, float("nan")), ValueError, "w2 must be finite"),
    (lambda: S.rectangular(0.0), ValueError, "width must be >= 1e-06"),
    (lambda: S.triangular(-1.0), ValueError, "width must be >= 1e-06"),
    (lambda: S.atan(0.0), ValueError, "alpha must be >= 1e-06"),
    # fuzzing: these trained to NaN (the window's height 1/(2w) overflows float32)
    (lambda: S.rectangular(1e-39), ValueError, "width must be >= 1e-06, got 1e-39"),
    (lambda: S.trapezoid(1e-39, 1e-39), ValueError, "w2 must be >= 1e-06"),
    (lambda: S.trapezoid(0.0, 1e7), ValueError, "w2 must be <= 1000000.0"),
    (lambda: S.make_surrogate("rectangular", {"width": 1e-39}), ValueError, "width must be >= 1e-06"),
    (lambda: S.atan(1e39), ValueError, "alpha must be <= 1000000.0"),
    (lambda: S.fast_sigmoid(0.0), ValueError, "slope must be >= 1e-06"),
    (lambda: S.sigmoid(float("inf")), ValueError, "slope must be finite"),
    (lambda: S.make_surrogate("boxcar"), ValueError, "unknown surrogate 'boxcar'"),
    (lambda: S.make_surrogate(3), TypeError, "surrogate must be a name"),
    (lambda: S.make_surrogate("atan", {"slope": 1.0}), TypeError, "bad parameters \\['slope'\\] for surrogate 'atan'"),
])
def test_validation_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("sg", [S.rectangular(1e-6), S.trapezoid(0.0, 1e-6), S.trapezoid(1e-6 - 1e-18, 1e-6),
                                S.atan(1e6), S.fast_sigmoid(1e6), S.sigmoid(1e6), S.rectangular(1e6)])
def test_extreme_allowed_surrogates_keep_float32_gradients_finite(sg):
    x = torch.tensor([0.0, 1e-7, -5e-7, 1.0, -3e38, 3e38])
    g = sg.grad_times(x, torch.full_like(x, 1e3))
    assert torch.isfinite(g).all() and torch.isfinite(sg.grad(x)).all()


def test_grad_times_base_version_is_grad_times_surrogate_grad():
    class Half(S.Surrogate):
        def grad(self, x):
            return torch.full_like(x, 0.5)

    x, g = torch.randn(5), torch.randn(5)
    assert torch.equal(Half().grad_times(x, g, shift=0.3), g * 0.5)
    assert torch.equal(Half().grad_times(x), torch.full_like(x, 0.5))
    assert Half().area is None and not Half().even


def test_grad_times_flip_differentiates_at_shift_minus_x():
    class Ramp(S.Surrogate):  # not even: tells x - shift from shift - x
        def grad(self, x):
            return x.clamp(min=0.0)

    x = torch.tensor([0.0, 1.0, 2.0])
    assert Ramp().grad_times(x, shift=0.5).tolist() == [0.0, 0.5, 1.5]
    assert Ramp().grad_times(x, shift=0.5, flip=True).tolist() == [0.5, 0.0, 0.0]


def test_sigmoid_gradient_is_even_where_the_textbook_expression_loses_it():
    x = torch.tensor([0.8, -0.8])  # k x = 20: s(20) rounds to 1 in float32
    ours = S.sigmoid(25.0).grad(x)
    assert ours[0] == ours[1] > 0
    s = torch.sigmoid(25.0 * x)
    textbook = 25.0 * s * (1 - s)  # the previous formula: zero on one side only
    assert textbook[0] == 0 < textbook[1]
    torch.testing.assert_close(ours, backward_of(sts.sigmoid(slope=25), x), rtol=1e-5, atol=0)
