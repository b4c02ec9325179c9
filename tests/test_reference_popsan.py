"""The ``popsan`` and ``mdcsan`` presets against independent re-implementations of the authors' actors.

``tests/reference/popsan.py`` re-implements Pop-SAN's ``PopSpikeActor``
(combra-lab/pop-spiking-deep-rl, ``popsan_drl/popsan_td3/popsan.py``) and MDC-SAN's
``MDCSpikeActor`` as ILC-SAN runs it (lucifer2859/ILC-SAN, ``ilcsan-td3/mdcsan.py`` with
``--encode pop --decode fr-mlp --neurons DN --connections none``), written from reading that
code. Fed our actor's weights (and, for Pop-SAN's Poisson encoder, our input spikes), it must give
the same spikes in every layer at every step, the same actions, and the same gradients of a loss
with respect to every actor parameter (receptive-field means and stds, weights, biases, decoder),
for each of the seed's three pseudo-gradients. The reference itself is checked on hand-worked
trajectories first.
"""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from reference.popsan import (
    MDCSAN_THETA,
    POPSAN_ENCODER_VTH,
    SEED_WINDOWS,
    ReferenceActor,
    actor_grads_as_plain,
    our_layer_spikes,
    plain_from_actor,
    run_neuron,
)

from snnrl_sb3 import PopSpikingTD3Policy
from snnrl_sb3.kernels import make_neuron
from snnrl_sb3.kernels.current_leaky import current_leaky_forward_eager
from snnrl_sb3.kernels.dynamic import dynamic_forward_eager
from snnrl_sb3.surrogate import make_surrogate

OBS_DIM, ACT_DIM, BATCH = 17, 6, 48  # HalfCheetah's sizes, Pop-SAN's [256, 256] hidden layers
SURROGATES = ["rectangular", "triangular", "trapezoid"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def our_policy(preset, surrogate=None, act_limit=1.0, **kwargs):
    obs_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    act_space = spaces.Box(-act_limit, act_limit, (ACT_DIM,), np.float32)
    if surrogate is not None:
        kwargs["surrogate"] = surrogate
    return PopSpikingTD3Policy(obs_space, act_space, lambda _: 1e-3, preset=preset, **kwargs)


def observations(seed=0, batch=BATCH):
    """Normalised observations, clipped to +-3 as both references feed them."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, OBS_DIM, generator=g) * 1.5).clamp(-3, 3)


# ------------------------------------------------------------------ the reference, by hand

def test_reference_popsan_neuron_reproduces_a_hand_worked_trajectory():
    # Two neurons, three steps, currents I (dyadic, so every value below is exact in float32):
    #   neuron a, I = 0.25, 0.5, 0.125:  C = 0.25, 0.625, 0.4375
    #     V0 = 0.25;  V1 = 0.75*0.25 + 0.625 = 0.8125 -> spike;  V2 = 0 (reset) + 0.4375 = 0.4375
    #   neuron b, I = 0.75, 0.125, 0.375:  C = 0.75, 0.5, 0.625
    #     V0 = 0.75 -> spike;  V1 = 0 + 0.5 = 0.5 (not > 0.5: no spike);  V2 = 0.375 + 0.625 = 1.0 -> spike
    # Loss L = sum of spikes; rectangle window h = 1 for 0 < V < 1, so h_a = 1, 1, 1 and h_b = 1, 1, 0.
    # Backward (dV_t+1/dV_t = 0.75 (1 - S_t), dV_t+1/dS_t = -0.75 V_t, dC_t+1/dC_t = 0.5):
    #   a: dL/dV2 = 1; dL/dS1 = 1 - 0.75*0.8125 = 0.390625 = dL/dV1;
    #      dL/dS0 = 1 - 0.390625*0.1875 = 0.9267578125; dL/dV0 = 0.9267578125 + 0.75*0.390625 = 1.2197265625
    #      dL/dI = dL/dC = [1.2197265625 + 0.5*0.890625, 0.390625 + 0.5*1, 1] = [1.6650390625, 0.890625, 1]
    #   b: dL/dV2 = 0; dL/dS1 = 1 = dL/dV1; dL/dS0 = 1 - 0.75*0.75 = 0.4375 = dL/dV0 (S0 = 1 cuts the leak)
    #      dL/dI = [0.4375 + 0.5*1, 1 + 0, 0] = [0.9375, 1, 0]
    currents = torch.tensor([[0.25, 0.75], [0.5, 0.125], [0.125, 0.375]], requires_grad=True)
    spikes, volts = run_neuron("popsan", currents)
    assert spikes.tolist() == [[0, 1], [1, 0], [0, 1]]
    assert volts.tolist() == [[0.25, 0.75], [0.8125, 0.5], [0.4375, 1.0]]
    spikes.sum().backward()
    assert currents.grad.tolist() == [[1.6650390625, 0.9375], [0.890625, 1.0], [1.0, 0.0]]
    # ... and our kernel on the same currents (time-major [T, B=1, N])
    ours_in = currents.detach().clone().unsqueeze(1).requires_grad_()
    ours = make_neuron("current_lif")(ours_in)
    assert ours[:, 0].tolist() == spikes.tolist()
    ours.sum().backward()
    assert ours_in.grad[:, 0].tolist() == currents.grad.tolist()


def test_reference_mdcsan_neuron_reproduces_a_hand_worked_trajectory():
    # theta_v -0.172, theta_u 0.529, theta_r 0.021, theta_s 0.132, current decay 0.5, threshold 0.5.
    #   neuron a, I = 0.3, 0.4, 0.0:
    #     t0: C = 0.3, V^ = U^ = 0, V = 0 + (0 - 0 - 0 + 0.3) = 0.3, U = 0
    #     t1: C = 0.55, V^ = 0.3, U^ = 0, V = 0.3 + (0.09 - 0.3 - 0 + 0.55) = 0.64 -> spike,
    #         U = 0 + (-0.172*0.3 - 0) = -0.0516
    #     t2: C = 0.275, V^ = 0.021 (reset), U^ = -0.0516 + 0.132 = 0.0804,
    #         V = 0.021 + (0.000441 - 0.021 - 0.0804 + 0.275) = 0.195041
    #   neuron b, I = 0.6, 0.0, 0.2:
    #     t0: C = 0.6, V = 0.6 -> spike, U = 0
    #     t1: C = 0.3, V^ = 0.021, U^ = 0.132, V = 0.021 + (0.000441 - 0.021 - 0.132 + 0.3) = 0.168441,
    #         U = 0.132 + (-0.172*0.021 - 0.529*0.132) = 0.05856
    #     t2: C = 0.35, V^ = 0.168441, U^ = 0.05856, V = 0.168441^2 - 0.05856 + 0.35 = 0.319812370481
    currents = torch.tensor([[0.3, 0.6], [0.4, 0.0], [0.0, 0.2]])
    spikes, volts = run_neuron("mdcsan", currents)
    assert spikes.tolist() == [[0, 1], [1, 0], [0, 0]]
    expected = [[0.3, 0.6], [0.64, 0.168441], [0.195041, 0.319812370481]]
    np.testing.assert_allclose(volts.numpy(), expected, rtol=0, atol=2e-7)
    assert MDCSAN_THETA == dict(theta_v=-0.172, theta_u=0.529, theta_r=0.021, theta_s=0.132)
    assert torch.equal(make_neuron("dynamic")(currents.unsqueeze(1))[:, 0], spikes)


@pytest.mark.parametrize("kind", ["popsan", "mdcsan"])
def test_our_kernels_give_the_reference_voltages_bit_for_bit(kind):
    # same order of operations as the reference (for MDC-SAN: V^ + (V^2 - V^ - U^ + C) and
    # U^ + (theta_v V^ - theta_u U^), mdcsan.py:264-267), hence the same roundings
    torch.manual_seed(0)
    x = torch.randn(7, 3, 40) * 0.8
    ref_spikes, ref_volts = run_neuron(kind, x.reshape(7, -1))
    if kind == "popsan":
        spikes, volts, _ = current_leaky_forward_eager(x, 0.5, 0.75, 0.5)
    else:
        spikes, volts, _ = dynamic_forward_eager(x, 0.5, 0.5, **MDCSAN_THETA)
    assert torch.equal(volts.reshape(7, -1), ref_volts) and torch.equal(spikes.reshape(7, -1), ref_spikes)
    x.requires_grad_()
    assert torch.equal(make_neuron("current_lif" if kind == "popsan" else "dynamic")(x).reshape(7, -1), ref_spikes)


@pytest.mark.parametrize("preset", ["popsan", "mdcsan"])
def test_receptive_fields_are_the_references_bit_for_bit(preset):
    # exp(-(1/2)(o - mu)^2 / sigma^2), popsan.py:73 / mdcsan.py:172, in the reference's rounding order
    enc = our_policy(preset).actor.snn.encoder.encoder
    ref = ReferenceActor(preset, OBS_DIM, ACT_DIM)
    obs = observations(1)
    assert torch.equal(enc.stimulus(obs), ref.stimulus(obs))


@pytest.mark.parametrize("name", SURROGATES)
def test_reference_windows_are_the_seeds_pseudo_gradients(name):
    x = torch.linspace(-1.5, 1.5, 3001)
    ref = SEED_WINDOWS[name](x)
    assert torch.trapezoid(ref, x).item() == pytest.approx(1.0, abs=2e-3)  # unit area
    torch.testing.assert_close(make_surrogate(name).grad(x), ref, rtol=0, atol=1e-6)
    if name == "rectangular":  # Pop-SAN's window: height 1 for |v - 0.5| < 0.5 (popsan.py:148)
        assert ref.max().item() == 1.0 and ref[(x.abs() >= 0.5)].abs().max().item() == 0.0


# ------------------------------------------------------------------ the presets' configuration

@pytest.mark.parametrize("preset", ["popsan", "mdcsan"])
def test_preset_builds_the_reference_configuration(preset):
    policy = our_policy(preset)
    actor = policy.actor
    snn, enc = actor.snn, actor.snn.encoder.encoder
    assert snn.num_steps == 5 and policy.actor_lr_ratio == 0.1  # T; actor lr 1e-4 with learning_rate 1e-3
    assert policy.net_arch == [256, 256] and actor.net_arch == [256, 256]
    assert (enc.pop_dim, snn.readout.pop_dim) == (10, 10)
    assert enc.spike_mode == ("regular" if preset == "popsan" else "analog")
    if preset == "popsan":
        assert enc.threshold == pytest.approx(POPSAN_ENCODER_VTH, abs=0)
    ref = ReferenceActor(preset, OBS_DIM, ACT_DIM)
    assert torch.equal(enc.mean.unsqueeze(0), ref.mean) and torch.equal(enc.std.unsqueeze(0), ref.std)
    neurons = [m for m in snn.layers if not isinstance(m, torch.nn.Linear)]
    assert len(neurons) == 3  # two hidden layers and the output population
    for neuron in neurons:
        assert neuron.surrogate.spec() == {"name": "trapezoid", "w1": 0.5, "w2": 0.5}  # Pop-SAN's rectangle
        if preset == "popsan":
            assert (neuron.current_decay, neuron.volt_decay, neuron.threshold) == (0.5, 0.75, 0.5)
        else:
            assert (neuron.current_decay, neuron.threshold) == (0.5, 0.5)
            got = dict(theta_v=neuron.theta_v, theta_u=neuron.theta_u, theta_r=neuron.theta_r, theta_s=neuron.theta_s)
            assert got == pytest.approx(MDCSAN_THETA, rel=1e-7)
    # the decoder: one weight per output neuron and a bias per action, Conv1d's default init range
    bound = 1 / math.sqrt(10)
    assert snn.readout.weight.shape == (ACT_DIM, 10) and snn.readout.weight.abs().max() <= bound
    assert snn.readout.bias.abs().max() <= bound


# ------------------------------------------------------------------ equivalence over T

def check_equivalent(policy, ref, obs, spikes=None, clear=None, act_limit=1.0):
    """Same spikes in every layer at every step, same actions, same gradients of a loss."""
    actor = policy.actor
    ref.load_plain(plain_from_actor(actor))
    if clear:
        clear()
    ours_layers = our_layer_spikes(actor, obs)
    record = []
    ref_action = ref(obs, spikes, record=record)
    assert len(record) == len(ours_layers) == 3
    for i, (a, b) in enumerate(zip(ours_layers, record)):
        assert torch.equal(a, b), f"layer {i}: {int((a != b).sum())} spikes differ"
        assert 0 < a.mean() < 1  # the comparison is not vacuous
    if clear:
        clear()
    action = actor(obs)
    low, high = (torch.as_tensor(b) for b in (policy.action_space.low, policy.action_space.high))
    scaled = low + 0.5 * (action.detach() + 1.0) * (high - low)  # SB3's unscale_action: what the env receives
    torch.testing.assert_close(scaled, ref_action, rtol=0, atol=1e-6 * act_limit)
    w = torch.linspace(-1, 1, ACT_DIM)
    (((action * act_limit) * w).sum() + (action * act_limit).square().sum()).backward()
    ((ref_action * w).sum() + ref_action.square().sum()).backward()
    ours, theirs = actor_grads_as_plain(actor), ref.plain_grads()
    assert set(ours) == set(theirs)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-5, msg=name)
    assert all(ours[name].abs().sum() > 0 for name in ours), "every parameter gets a gradient"


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("preset", ["popsan", "mdcsan"])
def test_actor_equals_the_reference_over_T(preset, surrogate):
    torch.manual_seed(1)
    policy = our_policy(preset, surrogate)
    ref = ReferenceActor(preset, OBS_DIM, ACT_DIM, window=SEED_WINDOWS[surrogate])
    check_equivalent(policy, ref, observations(2))


def test_popsan_with_poisson_spikes_equals_the_reference_fed_the_same_spikes():
    torch.manual_seed(2)
    policy = our_policy("popsan", "trapezoid", encoder_kwargs={"spikes": "bernoulli", "seed": 5})
    encoder = policy.actor.snn.encoder
    obs = observations(3)
    clear = encoder.encoder.bernoulli._generators.clear  # restart the noise stream from the seed
    clear()
    spikes = encoder.spikes(obs, 5).permute(1, 2, 0).detach()  # [B, N, T]
    ref = ReferenceActor("popsan", OBS_DIM, ACT_DIM, encoding="poisson", window=SEED_WINDOWS["trapezoid"])
    check_equivalent(policy, ref, obs, spikes, clear)


def test_action_limit_scaling_matches_the_references():
    # the references return act_limit * tanh(...); ours returns tanh(...) and SB3 rescales to the bounds
    torch.manual_seed(3)
    policy = our_policy("popsan", act_limit=2.0)
    ref = ReferenceActor("popsan", OBS_DIM, ACT_DIM, act_limit=2.0)
    check_equivalent(policy, ref, observations(4), act_limit=2.0)
