"""Population-coded spiking actors for TD3 / DDPG / SAC (Pop-SAN, MDC-SAN)."""

import json
import math
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import make_tiny_model
from gymnasium import spaces
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from snnrl_sb3 import (
    MultiStepDynamic,
    PopSpikingSACPolicy,
    PopSpikingTD3Policy,
    PopulationDecoder,
    PopulationEncoder,
)
from snnrl_sb3.config import SPIKING_KWARGS
from snnrl_sb3.population import NORMALISED_RANGE, POPSAN_STD, PopulationInput, receptive_fields
from snnrl_sb3.td3 import lr_scaled, make_scaled_optimizer

TINY = dict(net_arch=[16], encoder_kwargs={"pop_dim": 4}, num_steps=3)
ALGOS = {"TD3": (TD3, PopSpikingTD3Policy), "DDPG": (DDPG, PopSpikingTD3Policy), "SAC": (SAC, PopSpikingSACPolicy)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(algo="TD3", env="Pendulum-v1", seed=0, **policy_kwargs):
    kwargs = {**TINY, **policy_kwargs}
    kwargs["encoder_kwargs"] = {**TINY["encoder_kwargs"], **policy_kwargs.get("encoder_kwargs", {})}
    return make_tiny_model(algo, kwargs, env=env, seed=seed, buffer_size=1000)


# ------------------------------------------------------------------ encoder / decoder


def test_receptive_fields_spread_over_finite_bounds_else_normalised_range():
    low = np.array([-1.0, -np.inf, -8.0, -1e30])
    high = np.array([1.0, np.inf, 8.0, 1e30])
    means, stds = receptive_fields(4, 5, low, high)
    torch.testing.assert_close(means[0], torch.linspace(-1, 1, 5))
    torch.testing.assert_close(means[1], torch.linspace(*NORMALISED_RANGE, 5))
    torch.testing.assert_close(means[2], torch.linspace(-8, 8, 5))
    torch.testing.assert_close(means[3], torch.linspace(*NORMALISED_RANGE, 5))  # huge bound = unbounded
    assert stds[1, 0].item() == pytest.approx(POPSAN_STD)  # Pop-SAN: sqrt(0.15) over (-3, 3)
    assert stds[0, 0].item() == pytest.approx(POPSAN_STD / 3)
    means, stds = receptive_fields(2, 3, low[:2], high[:2], mean_range=(-2, 2), std=0.5)
    torch.testing.assert_close(means, torch.tensor([[-2.0, 0.0, 2.0]] * 2))
    assert torch.all(stds == 0.5)
    assert receptive_fields(1, 1)[0].item() == 0.0  # one neuron: centre of the range


@pytest.mark.filterwarnings("ignore:observation dimensions")  # randn reaches past the fields
def test_regular_encoder_spikes_match_popsan_loop_and_gradients_reach_means_and_stds():
    torch.manual_seed(0)
    enc = PopulationEncoder(3, 10, low=[-1, -1, -8], high=[1, 1, 8])
    obs = torch.randn(7, 3)
    fast, ref = enc(obs, 5), enc.reference(obs, 5)
    assert fast.shape == (5, 7, 30)
    assert torch.equal(fast, ref)
    assert set(fast.unique().tolist()) <= {0.0, 1.0}
    # regular coding: a stimulus A fires floor-ish(T * A / (1 - eps)) spikes, evenly spread
    a = enc.stimulus(obs)
    assert torch.all((fast.sum(0) - 5 * a / enc.threshold).abs() <= 1)
    w = torch.randn_like(fast)
    g_fast = torch.autograd.grad((fast * w).sum(), [enc.mean, enc.std])
    g_ref = torch.autograd.grad((ref * w).sum(), [enc.mean, enc.std])
    for gf, gr in zip(g_fast, g_ref):
        torch.testing.assert_close(gf, gr)
        assert gf.abs().sum() > 0


@pytest.mark.filterwarnings("ignore:observation dimensions")  # randn reaches past the fields
@pytest.mark.parametrize("steps", [1, 5])
def test_fused_population_input_layer_equals_linear_over_reference_spikes(steps):
    torch.manual_seed(steps)
    layer = PopulationInput(PopulationEncoder(4, 6, mean_range=(-2, 2)), 9)
    obs = torch.randn(5, 4) * 1.5
    fast, ref = layer(obs, steps), layer.reference(obs, steps)
    torch.testing.assert_close(fast, ref)
    w = torch.randn_like(ref)
    params = [layer.encoder.mean, layer.encoder.std, layer.linear.weight, layer.linear.bias]
    for a, b in zip(torch.autograd.grad((fast * w).sum(), params), torch.autograd.grad((ref * w).sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert a.abs().sum() > 0


def test_bernoulli_encoder_frozen_noise_when_deterministic_and_gradient():
    torch.manual_seed(0)
    enc = PopulationEncoder(2, 6, spikes="bernoulli", seed=3)
    obs = torch.randn(4, 2)
    assert torch.equal(enc(obs, 5, deterministic=True), enc(obs, 5, deterministic=True))
    out = enc(obs, 50)
    assert out.shape == (50, 4, 12)
    torch.testing.assert_close(out.mean(0), enc.stimulus(obs).detach(), atol=0.25, rtol=0)
    out.sum().backward()
    assert enc.mean.grad.abs().sum() > 0 and enc.std.grad.abs().sum() > 0


def test_bernoulli_encoder_fresh_noise_even_when_deterministic():
    enc = PopulationEncoder(2, 6, spikes="bernoulli", seed=3, deterministic_noise="fresh")
    obs = torch.zeros(64, 2)
    assert not torch.equal(enc(obs, 5, deterministic=True), enc(obs, 5, deterministic=True))


@pytest.mark.filterwarnings("ignore:observation dimensions")  # randn reaches past the fields
def test_analog_population_input_is_the_activations_at_every_step():
    # MDC-SAN (ILC-SAN's encode='pop'): no spikes, the Gaussian activations feed the first layer at every step
    torch.manual_seed(0)
    layer = PopulationInput(PopulationEncoder(3, 5, mean_range=(-3, 3), spikes="analog"), 7)
    obs = torch.randn(4, 3)
    assert not layer.emits_spikes and layer.encoder.emits_spikes is False
    stimulus = layer.encoder.stimulus(obs)
    assert torch.equal(layer.spikes(obs, 4), stimulus.expand(4, -1, -1))
    out = layer(obs, 4)
    assert out.shape == (4, 4, 7) and torch.equal(out, layer.linear(stimulus).expand(4, -1, -1))
    torch.testing.assert_close(out, layer.reference(obs, 4))
    w = torch.randn_like(out)
    (out * w).sum().backward()
    assert layer.encoder.mean.grad.abs().sum() > 0 and layer.encoder.std.grad.abs().sum() > 0
    torch.testing.assert_close(layer.linear.bias.grad, w.sum((0, 1)))


def test_decoder_weighted_sum_of_population_rates():
    dec = PopulationDecoder(act_dim=2, pop_dim=3)
    spikes = torch.bernoulli(torch.full((5, 4, 6), 0.5)).requires_grad_()
    out = dec(spikes)
    rates = spikes.mean(0).view(4, 2, 3)
    expected = torch.tanh((rates * dec.weight).sum(-1) + dec.bias)
    torch.testing.assert_close(out, expected)
    assert out.shape == (4, 2) and out.abs().max() <= 1
    out.sum().backward()
    assert dec.weight.grad is not None and spikes.grad.abs().sum() > 0
    raw = PopulationDecoder(2, 3, squash=False)
    assert raw(spikes).shape == (4, 2)


# ------------------------------------------------------------------ MDC-SAN dynamic neuron


@pytest.mark.parametrize("surrogate", [None, "triangular", "trapezoid"])
@pytest.mark.parametrize("steps", [1, 5, 16])
def test_dynamic_fused_kernel_equals_reference(surrogate, steps):
    torch.manual_seed(steps)
    neuron = MultiStepDynamic(surrogate=surrogate)
    x = (torch.randn(steps, 4, 21) * 1.5).requires_grad_()
    fast, ref = neuron(x), neuron.reference(x)
    assert torch.equal(fast, ref)
    w = torch.randn_like(ref)
    g_fast, = torch.autograd.grad((fast * w).sum(), x)
    g_ref, = torch.autograd.grad((ref * w).sum(), x)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-5)


def test_dynamic_neuron_follows_mdcsan_equations_by_hand():
    neuron = MultiStepDynamic()
    x = torch.tensor([[0.3], [0.4], [0.0]])
    out = neuron(x)
    # t0: C=0.3, V=0.3 (no spike); t1: C=0.55, V^=0.3, U^=0, V=0.09+0.55=0.64 -> spike
    assert out[:, 0].tolist() == [0.0, 1.0, 0.0]


# ------------------------------------------------------------------ learning runs


@pytest.mark.parametrize("algo", ["TD3", "DDPG", "SAC"])
@pytest.mark.parametrize("neuron", ["current_lif", "dynamic", "ternary"])
def test_learn_runs_for_each_algorithm_and_neuron(algo, neuron):
    model = tiny_model(algo, neuron=neuron)
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.learn(60)
    after = list(model.actor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "actor did not train"
    action, _ = model.predict(model.env.observation_space.sample(), deterministic=True)
    assert model.action_space.contains(action.astype(np.float32))


@pytest.mark.parametrize("surrogate,kwargs", [("rectangular", None), ("triangular", None), ("trapezoid", None),
                                              ("trapezoid", {"w1": 0.2, "w2": 0.6})])
def test_learn_with_each_surrogate(surrogate, kwargs):
    model = tiny_model(surrogate=surrogate, surrogate_kwargs=kwargs)
    model.learn(40)
    sur = model.actor.snn.layers[0].surrogate
    assert type(sur).__name__ == "Trapezoid"
    if kwargs:
        assert (sur.w1, sur.w2) == (0.2, 0.6)


def test_learn_with_bernoulli_encoding_and_two_hidden_layers():
    model = tiny_model(encoder_kwargs={"spikes": "bernoulli"}, net_arch=[8, 8], readout_kwargs={"pop_dim": 3})
    model.learn(40)
    assert model.actor.snn.readout.pop_dim == 3


def test_critic_stays_a_deep_mlp_and_default_architecture_is_popsan():
    model = TD3(PopSpikingTD3Policy, "Pendulum-v1")
    assert model.policy.net_arch == [256, 256]
    linear = [m for m in model.critic.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear[:3]] == [256, 256, 1]
    snn = model.actor.snn
    assert snn.num_steps == 5 and snn.encoder.encoder.pop_dim == 10 and snn.readout.pop_dim == 10
    linears = [snn.encoder.linear] + [m for m in snn.layers if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [256, 256, 10] and snn.encoder.linear.in_features == 30
    neuron = snn.layers[0]
    assert type(neuron).__name__ == "MultiStepCurrentLeaky"
    assert (neuron.current_decay, neuron.volt_decay, neuron.threshold) == (0.5, 0.75, 0.5)
    assert (neuron.surrogate.w1, neuron.surrogate.w2) == (0.5, 0.5)  # Pop-SAN's rectangular window


# ------------------------------------------------------------------ two learning rates


def test_actor_and_critic_optimizers_step_with_two_rates(monkeypatch):
    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append((type(self).__name__, [g["lr"] for g in self.param_groups]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    model = TD3(PopSpikingTD3Policy, "Pendulum-v1", learning_rate=1e-3, learning_starts=20, batch_size=8,
                policy_kwargs=dict(TINY, actor_lr_ratio=0.1), seed=0)
    model.learn(40)
    actor_lrs = {lr for name, lrs in seen if name == "LRScaledAdam" for lr in lrs}
    critic_lrs = {lr for name, lrs in seen if name == "Adam" for lr in lrs}
    assert actor_lrs and critic_lrs
    assert all(lr == pytest.approx(1e-4) for lr in actor_lrs) and all(lr == pytest.approx(1e-3) for lr in critic_lrs)
    # SB3 still writes and logs the base rate into the group; the scale survives the update
    group = model.actor.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(1e-3) and group["lr_scale"] == 0.1


def test_actor_lr_ratio_follows_a_schedule_and_is_exact_with_sgd():
    model = TD3(PopSpikingTD3Policy, "Pendulum-v1", learning_rate=lambda progress: 0.5 * progress,
                learning_starts=10, batch_size=8, policy_kwargs=dict(TINY, actor_lr_ratio=0.25,
                                                                     optimizer_class=torch.optim.SGD), seed=1)
    model.learn(20)  # fill the buffer
    model._current_progress_remaining = 0.5
    model._update_learning_rate([model.actor.optimizer, model.critic.optimizer])
    actor_opt, critic_opt = model.actor.optimizer, model.critic.optimizer
    params = list(model.actor.parameters())
    for p in params:
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in params]
    actor_opt.step()
    for b, p in zip(before, params):
        torch.testing.assert_close(b - p.detach(), torch.full_like(b, 0.25 * 0.25))  # lr 0.25 * ratio 0.25
    assert critic_opt.param_groups[0]["lr"] == pytest.approx(0.25)
    assert actor_opt.param_groups[0]["lr"] == pytest.approx(0.25)


def test_lr_scale_travels_with_the_optimizer_state_dict():
    p = [torch.nn.Parameter(torch.zeros(3))]
    opt = make_scaled_optimizer(torch.optim.Adam, p, 1e-3, 0.1)
    fresh = make_scaled_optimizer(torch.optim.Adam, p, 1e-3, 1.0)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["lr_scale"] == 0.1
    assert lr_scaled(torch.optim.Adam) is lr_scaled(lr_scaled(torch.optim.Adam))
    assert issubclass(lr_scaled(torch.optim.Adam), torch.optim.Adam)


# ------------------------------------------------------------------ Markov, determinism, persistence


def test_actor_is_markov_and_deterministic():
    model = tiny_model()
    obs = torch.as_tensor(np.stack([model.observation_space.sample() for _ in range(6)]))
    a1, a2 = model.actor(obs), model.actor(obs)
    assert torch.equal(a1, a2)
    one_by_one = torch.cat([model.actor(o[None]) for o in obs])
    torch.testing.assert_close(one_by_one, a1)  # batch-independent: zero state every call
    o = obs[0].numpy()
    assert np.array_equal(model.predict(o)[0], model.predict(o)[0])


def test_bernoulli_actor_is_deterministic_only_when_asked():
    model = tiny_model(encoder_kwargs={"spikes": "bernoulli", "pop_dim": 8})
    obs = model.observation_space.sample()
    assert np.array_equal(model.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    draws = {tuple(model.predict(obs, deterministic=False)[0].round(6)) for _ in range(10)}
    assert len(draws) > 1


def test_parameters_are_learnable_and_copied_to_the_target_actor():
    model = tiny_model(neuron="ternary")
    names = dict(model.actor.named_parameters())
    for key in ("snn.encoder.encoder.mean", "snn.encoder.encoder.std", "snn.encoder.linear.weight",
                "snn.readout.weight", "snn.readout.bias"):
        assert key in names and names[key].requires_grad
    assert any("rho" in k for k in names)  # the ternary neuron's learnable threshold
    target = model.policy.actor_target.state_dict()
    for key, value in model.actor.state_dict().items():
        assert torch.equal(value, target[key])


def test_constructor_parameters_are_json_plain():
    model = tiny_model(neuron="dynamic", surrogate="trapezoid", surrogate_kwargs={"w1": 0.1, "w2": 0.3},
                       encoder_kwargs={"mean_range": (-2, 2)}, actor_lr_ratio=0.1)
    params = model.policy._get_constructor_parameters()
    spiking = {k: params[k] for k in (*SPIKING_KWARGS, "actor_lr_ratio")}
    assert json.loads(json.dumps(spiking)) == spiking
    assert spiking == {"num_steps": 3, "neuron": "dynamic", "neuron_kwargs": None, "surrogate": "trapezoid",
                       "surrogate_kwargs": {"w1": 0.1, "w2": 0.3}, "encoder": "population",
                       "encoder_kwargs": {"pop_dim": 4, "mean_range": [-2.0, 2.0]}, "readout": "population",
                       "readout_kwargs": None, "backend": "eager", "actor_lr_ratio": 0.1}


@pytest.mark.parametrize("algo,kwargs", [("TD3", dict(neuron="dynamic", surrogate="trapezoid", actor_lr_ratio=0.1,
                                                       surrogate_kwargs={"w1": 0.1, "w2": 0.3})),
                                         ("SAC", dict(neuron="ternary", neuron_kwargs={"neg_threshold": 1.5}))])
def test_save_load_in_a_fresh_process_gives_identical_actions(tmp_path, run_fresh, algo, kwargs):
    model = tiny_model(algo, **kwargs)
    model.learn(40)
    obs = np.stack([model.observation_space.sample() for _ in range(5)]).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    model.save(tmp_path / "model.zip")
    model.policy.save(tmp_path / "policy.zip")
    expected = model.predict(obs, deterministic=True)[0]
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from stable_baselines3 import {algo}
        from snnrl_sb3 import {ALGOS[algo][1].__name__} as Policy
        obs = np.load({str(tmp_path / 'obs.npy')!r})
        model = {algo}.load({str(tmp_path / 'model.zip')!r})
        policy = Policy.load({str(tmp_path / 'policy.zip')!r})
        np.save({str(tmp_path / 'a.npy')!r}, model.predict(obs, deterministic=True)[0])
        np.save({str(tmp_path / 'b.npy')!r}, policy.predict(obs, deterministic=True)[0])
        print(model.actor.optimizer.param_groups[0]["lr_scale"], model.actor.snn.layers[0].extra_repr())
    """)
    stdout = run_fresh(script)
    assert np.array_equal(np.load(tmp_path / "a.npy"), expected)
    assert np.array_equal(np.load(tmp_path / "b.npy"), expected)
    ratio, repr_ = stdout.split(" ", 1)
    assert float(ratio) == kwargs.get("actor_lr_ratio", 1.0)
    if kwargs.get("neuron") == "dynamic":
        assert "theta_r=0.021" in repr_


def test_evaluate_policy_works():
    model = tiny_model()
    env = Monitor(gym.make("Pendulum-v1", max_episode_steps=20))
    mean, std = evaluate_policy(model, env, n_eval_episodes=2, deterministic=True)
    assert math.isfinite(mean) and math.isfinite(std)


# ------------------------------------------------------------------ errors


class _DictObsEnv(gym.Env):
    observation_space = spaces.Dict({"a": spaces.Box(-1, 1, (2,))})
    action_space = spaces.Box(-1, 1, (1,))


def _policy(obs_space=spaces.Box(-1, 1, (3,)), act_space=spaces.Box(-1, 1, (1,)), cls=PopSpikingTD3Policy, **kw):
    return cls(obs_space, act_space, lambda _: 1e-3, **{**TINY, **kw})


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(act_space=spaces.Discrete(3)), TypeError, "needs a Box action space"),
    (dict(obs_space=spaces.Dict({"a": spaces.Box(-1, 1, (2,))})), TypeError,
     "unsupported observation space Dict.*takes Box observations"),
    (dict(obs_space=spaces.Box(0, 255, (4, 4, 3), np.uint8)), ValueError, "flat \\(1-D\\) Box observation"),
    (dict(encoder_kwargs={"pop_dim": 0}), ValueError, "encoder_kwargs\\['pop_dim'\\] must be >= 1"),
    (dict(encoder_kwargs={"pop_dim": 2.5}), TypeError, "encoder_kwargs\\['pop_dim'\\] must be an int"),
    (dict(readout_kwargs={"pop_dim": 0}), ValueError, "readout_kwargs\\['pop_dim'\\] must be >= 1"),
    (dict(num_steps=0), ValueError, "num_steps must be >= 1"),
    (dict(num_steps=10**7), ValueError, "num_steps must be <= 4096"),
    (dict(neuron="izhikevich"), ValueError, "unknown neuron 'izhikevich'"),
    (dict(neuron=3), TypeError, "neuron must be a string"),
    (dict(surrogate="box"), ValueError, "unknown surrogate 'box'"),
    (dict(surrogate="trapezoid", surrogate_kwargs={"w1": 0.9, "w2": 0.3}), ValueError, "w1 <= w2"),
    (dict(surrogate="rectangular", surrogate_kwargs={"w": 1}), TypeError, "bad parameters \\['w'\\] for surrogate"),
    (dict(surrogate_kwargs={"w1": 0.1}), ValueError, "surrogate_kwargs needs surrogate"),
    (dict(neuron_kwargs={"current_decay": 1.5}), ValueError, "current_decay must be <= 1.0"),
    (dict(neuron_kwargs={"threshold": -1}), ValueError, "threshold must be > 0.0"),
    (dict(neuron_kwargs={"bogus": 1}), TypeError, "bogus.*current_lif"),
    (dict(neuron="dynamic", neuron_kwargs={"bogus": 1}), TypeError, "bogus.*dynamic"),
    (dict(neuron="dynamic", neuron_kwargs={"theta_r": 0.7}), ValueError, "theta_r .* below threshold"),
    (dict(neuron_kwargs=[1]), TypeError, "neuron_kwargs must be a dict"),
    (dict(encoder_kwargs={"spikes": "poisson"}), ValueError, "unknown encoder_kwargs\\['spikes'\\] 'poisson'"),
    (dict(encoder="direct"), ValueError, "unknown encoder 'direct'; allowed: \\['population'\\]"),
    (dict(readout="membrane_max"), ValueError, "unknown readout 'membrane_max'; allowed: \\['population'\\]"),
    (dict(encoder_kwargs={"mean_range": [1, -1]}), ValueError, "mean_range'\\] must have low < high"),
    (dict(encoder_kwargs={"mean_range": "ab"}), TypeError, "mean_range'\\] must be a pair"),
    (dict(encoder_kwargs={"std": 0.0}), ValueError, "std'\\] must be >= 1e-06"),
    (dict(encoder_kwargs={"threshold": 1.5}), ValueError, "threshold'\\] must be <= 1.0"),
    (dict(encoder_kwargs={"seed": 3}), ValueError, "seed'\\] applies only to spikes='bernoulli'"),
    (dict(encoder_kwargs={"spikes": "bernoulli", "seed": 2**70}), ValueError, "seed'\\] must be <= 2\\*\\*63 - 1"),
    (dict(encoder_kwargs={"spikes": "bernoulli", "seed": -5}), ValueError, "seed'\\] must be >= 0"),
    (dict(encoder_kwargs={"bogus": 1}), TypeError, "encoder_kwargs has unknown keys \\['bogus'\\]"),
    (dict(actor_lr_ratio=0.0), ValueError, "actor_lr_ratio must be >= 1e-06"),
    (dict(actor_lr_ratio="fast"), TypeError, "actor_lr_ratio must be a real number"),
    (dict(bogus_kwarg=1), TypeError, "unknown spiking policy kwargs \\['bogus_kwarg'\\]"),
    (dict(net_arch=[0]), ValueError, "net_arch\\[0\\] must be >= 1"),
    (dict(cls=PopSpikingSACPolicy, use_sde=True), ValueError, "use_sde"),
])
def test_error_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        _policy(**kwargs)


def test_algorithm_rejects_non_box_action_space_and_dict_observations():
    with pytest.raises(AssertionError, match="The algorithm only supports .*Box"):
        TD3(PopSpikingTD3Policy, "CartPole-v1")  # stock TD3 checks its action space before any policy
    with pytest.raises(TypeError, match="FlattenObservation"):
        TD3(PopSpikingTD3Policy, _DictObsEnv())


def test_other_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="optimizer_class must be a torch.optim.Optimizer"):
        lr_scaled(object)
    with pytest.raises(ValueError, match="PopulationEncoder expects observations \\[B, 3\\]"):
        PopulationEncoder(3, 4)(torch.zeros(2, 5), 5)
    with pytest.raises(ValueError, match="PopulationDecoder expects spikes"):
        PopulationDecoder(2, 3)(torch.zeros(5, 2, 7))
    with pytest.raises(ValueError, match="theta_u must be <= 2.0"):
        MultiStepDynamic(theta_u=3.0)
    with pytest.raises(TypeError, match="surrogate_kwargs must be a dict"):
        _policy(surrogate="trapezoid", surrogate_kwargs=[0.1, 0.2])
