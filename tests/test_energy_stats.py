import numpy as np
import pytest
import torch

from snnrl_sb3 import spiking_mlp
from snnrl_sb3.energy import PJ_PER_AC, PJ_PER_MAC, estimate_energy
from snnrl_sb3.stats import record_spikes, spike_statistics


def toy_network():
    """2-3-2 LIF network, T=2, whose spikes are known by hand."""
    net = spiking_mlp(2, [3], 2, num_steps=2, neuron="lif", neuron_kwargs={"beta": 0.9})
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.5, 0.0], [0.0, 0.0], [0.6, 0.0]]))
        net.layers[0].bias.zero_()
    return net


def test_toy_spikes_are_as_computed_by_hand():
    net = toy_network()
    with record_spikes(net) as spikes:
        net(torch.tensor([[1.0, 0.0]]))
    # neuron 0: 1.5 -> spike, 0.9*1.5 + 1.5 - 1 = 1.85 -> spike; neuron 2: 0.6, 0.54 + 0.6 = 1.14 -> spike
    assert spikes["layers.1"][:, 0].tolist() == [[1, 0, 0], [1, 0, 1]]


def test_energy_matches_hand_count():
    report = estimate_energy(toy_network(), [[1.0, 0.0]], verbose=False)
    first, readout = report["layers"]
    assert first["macs"] == 6 and first["synops"] == 0  # direct input: 2x3 MACs, computed once
    assert readout["synops"] == 3 * 2  # 3 spikes, each fanning out to 2 outputs
    assert report["ann_macs"] == 6 + 6
    assert report["energy_pj"] == pytest.approx(6 * PJ_PER_MAC + 6 * PJ_PER_AC)
    assert report["ann_energy_pj"] == pytest.approx(12 * PJ_PER_MAC)
    assert report["energy_ratio"] == pytest.approx(33.0 / 55.2)


def test_energy_counts_ternary_negative_spikes_and_conv_fanout():
    from snnrl_sb3.body import spiking_nature_cnn
    from snnrl_sb3.coding import BernoulliEncoder

    net = spiking_nature_cnn(1, (36, 36), 16, 2, num_steps=3, neuron="ternary", encoder=BernoulliEncoder(seed=0))
    report = estimate_energy(net, torch.rand(2, 1, 36, 36), verbose=False)
    assert report["macs"] == 0  # Bernoulli input: every layer is spike-driven
    conv1 = report["layers"][0]
    # an all-ones input drives every synapse: synops == dense count x steps
    full = estimate_energy(net, torch.ones(1, 1, 36, 36), verbose=False)["layers"][0]
    assert full["synops"] == pytest.approx(full["ann_macs"] * 3)
    assert 0 < conv1["synops"] < full["synops"]


def test_spike_statistics_by_hand():
    spikes = torch.tensor([[[1.0, -1.0, 0.0, 1.0]], [[1.0, 0.0, 0.0, 1.0]]])  # T=2, B=1, 4 neurons
    stats = spike_statistics(spikes)
    assert stats == {"pos_rate": 0.5, "neg_rate": 0.125, "rate": 0.625, "dead": 0.25, "saturated": 0.5}


def test_record_spikes_leaves_no_hooks():
    net = toy_network()
    with record_spikes(net):
        pass
    assert all(not m._forward_hooks for m in net.modules())


def test_spike_stats_callback_logs_short_keys_through_sb3_logger(tmp_path):
    import csv

    from stable_baselines3 import DQN
    from stable_baselines3.common.logger import configure

    from snnrl_sb3 import SpikeStatsCallback, SpikingQPolicy

    model = DQN(SpikingQPolicy, "CartPole-v1", learning_starts=50, train_freq=50, buffer_size=1000,
                policy_kwargs=dict(net_arch=[16, 16], num_steps=4), seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    callback = SpikeStatsCallback(log_freq=100, batch_size=32)
    model.learn(300, callback=callback, log_interval=1)
    with open(tmp_path / "progress.csv") as f:
        header = next(csv.reader(f))
    keys = {k for k in header if k.startswith("spikes/")}
    for layer in ("L0", "L1"):
        for stat in ("pos_rate", "neg_rate", "rate", "dead", "saturated", "neg_thr"):
            assert f"spikes/q_net/{layer}/{stat}" in keys
    assert all(len(k) <= 36 for k in keys)
    values = callback.collect()
    assert 0.0 <= values["spikes/q_net/L0/rate"] <= 1.0 and values["spikes/q_net/L0/neg_thr"] > 0


def test_spike_stats_callback_validates_arguments():
    from snnrl_sb3 import SpikeStatsCallback

    with pytest.raises(ValueError, match="log_freq must be >= 1"):
        SpikeStatsCallback(log_freq=0)


def test_energy_of_a_population_actor_and_a_dueling_q_network():
    from stable_baselines3 import DQN, TD3

    from snnrl_sb3 import PopSpikingTD3Policy, SpikingQPolicy

    actor = TD3(PopSpikingTD3Policy, "Pendulum-v1",
                policy_kwargs=dict(net_arch=[16, 16], encoder_kwargs={"pop_dim": 4}))
    report = estimate_energy(actor.policy, np.zeros((3, 3), dtype=np.float32), verbose=False)
    first = report["layers"][0]
    assert first["layer"].endswith("encoder.synapse") and first["macs"] == 0  # fed by population spikes
    assert first["ann_macs"] == 3 * 4 * 16
    dueling = DQN(SpikingQPolicy, "CartPole-v1", policy_kwargs=dict(net_arch=[8], dueling=True))
    names = [r["layer"] for r in estimate_energy(dueling.policy, np.zeros((2, 4), np.float32), verbose=False)["layers"]]
    assert any("value" in n for n in names) and any("advantage" in n for n in names)


def _unit_cartpole():
    """CartPole with observations squashed into (0, 1): fractional firing probabilities, so the
    Bernoulli encoder's noise matters (one-hot inputs would spike deterministically)."""
    import gymnasium as gym

    space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    return gym.wrappers.TransformObservation(gym.make("CartPole-v1"),
                                             lambda o: (1.0 / (1.0 + np.exp(-o))).astype(np.float32), space)


def _seeded_dqn_parameters(policy_kwargs, dqn_kwargs, callback):
    from stable_baselines3 import DQN

    from snnrl_sb3 import SpikingQPolicy

    dqn_kwargs = {"buffer_size": 200, **dqn_kwargs}
    model = DQN(SpikingQPolicy, _unit_cartpole(), learning_starts=20, train_freq=4, gradient_steps=2, batch_size=8,
                policy_kwargs=dict(net_arch=[8], num_steps=2, **policy_kwargs), seed=3, **dqn_kwargs)
    model.learn(120, callback=callback)
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.mark.parametrize("policy_kwargs,dqn_kwargs", [
    ({}, {}),
    ({"encoder": "bernoulli"}, {}),
    # one array for obs and next_obs, and a buffer that wraps around (pos != 0 once full)
    ({}, {"buffer_size": 50, "optimize_memory_usage": True,
          "replay_buffer_kwargs": {"handle_timeout_termination": False}}),
])
def test_spike_stats_callback_does_not_change_a_seeded_dqn_run(policy_kwargs, dqn_kwargs):
    from snnrl_sb3 import SpikeStatsCallback

    # SB3's buffer.sample draws from the global NumPy RNG that exploration and training use too
    callback = SpikeStatsCallback(log_freq=10, batch_size=8)
    watched = _seeded_dqn_parameters(policy_kwargs, dqn_kwargs, callback)
    assert callback.n_calls == 120 and callback.model.replay_buffer.size() > 0
    alone = _seeded_dqn_parameters(policy_kwargs, dqn_kwargs, None)
    assert all(torch.equal(a, b) for a, b in zip(watched, alone))


def test_observation_tools_leave_rngs_and_module_state_alone():
    import copy
    import random

    from stable_baselines3 import DQN

    from snnrl_sb3 import SpikingQPolicy

    model = DQN(SpikingQPolicy, _unit_cartpole(), policy_kwargs=dict(net_arch=[8], num_steps=3, encoder="bernoulli"),
                seed=0)
    watched, alone = model.policy, copy.deepcopy(model.policy)
    for policy in (watched, alone):  # a mixed train/eval, partly frozen policy
        policy.set_training_mode(True)
        policy.q_net_target.set_training_mode(False)
        policy.q_net.q_net.layers[0].weight.requires_grad_(False)
    obs = np.random.default_rng(0).uniform(0.2, 0.8, (6, 4)).astype(np.float32)
    obs_t, _ = watched.obs_to_tensor(obs)

    def state(policy):
        return ([m.training for m in policy.modules()], [p.requires_grad for p in policy.parameters()],
                [p.detach().clone() for p in policy.parameters()])

    def draws(policy):  # the next stochastic forward (encoder generator) and the next global draws
        return policy.q_net(obs_t), torch.rand(3), np.random.rand(3), random.random()

    before = state(watched)
    results = []
    for policy, analyse in ((watched, True), (alone, False)):
        torch.manual_seed(1), np.random.seed(1), random.seed(1)
        policy.q_net(obs_t)  # the encoder's generator is in use
        if analyse:
            estimate_energy(policy, obs, verbose=False)
            with torch.no_grad(), record_spikes(policy) as spikes:
                policy._predict(obs_t, deterministic=True)
            assert all(0 <= spike_statistics(s)["rate"] <= 1 for s in spikes.values())
        results.append(draws(policy))
    for a, b in zip(*results):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    after = state(watched)
    assert before[:2] == after[:2] and all(torch.equal(a, b) for a, b in zip(before[2], after[2]))


def test_energy_refuses_empty_and_non_finite_observations():
    from stable_baselines3 import DQN

    from snnrl_sb3 import SpikingQPolicy

    net = toy_network()
    with pytest.raises(ValueError, match=r"observations must hold at least one observation, got shape \(0, 2\)"):
        estimate_energy(net, np.zeros((0, 2)), verbose=False)  # used to divide by zero
    with pytest.raises(ValueError, match=r"observations must be finite: it contains NaN or inf \(shape \(1, 2\)\)"):
        estimate_energy(net, [[float("nan"), 0.0]], verbose=False)
    with pytest.raises(ValueError, match=r"observations must be a batch \[N, \.\.\.\] of observations, got "
                                         r"shape \(2,\)"):
        estimate_energy(net, [1.0, 0.0], verbose=False)  # would count the 2 features as 2 samples
    with pytest.raises(ValueError, match=r"observations of shape \(1, 7\) do not fit spiking network 'network'"):
        estimate_energy(net, np.zeros((1, 7)), verbose=False)
    model = DQN(SpikingQPolicy, "CartPole-v1", policy_kwargs=dict(net_arch=[8]))
    with pytest.raises(ValueError, match=r"observations must hold at least one observation, got shape \(0, 4\)"):
        estimate_energy(model.policy, np.zeros((0, 4)), verbose=False)
    with pytest.raises(ValueError, match="observations must be finite"):
        estimate_energy(model.policy, np.full((2, 4), np.inf), verbose=False)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module .*, got DQN; for an SB3 model, pass "
                                        r"its \.policy"):
        estimate_energy(model, np.zeros((2, 4)), verbose=False)
    with pytest.raises(TypeError, match="verbose must be a bool"):
        estimate_energy(net, [[1.0, 0.0]], verbose=1)


def test_energy_counts_every_synapse_of_a_chain_and_refuses_unknown_layers():
    from torch import nn

    from snnrl_sb3.body import SpikingNetwork
    from snnrl_sb3.coding import Readout
    from snnrl_sb3.kernels import make_neuron

    # Linear -> Linear: the second layer is fed by the first one's currents (3 MACs x 2 outputs)
    net = SpikingNetwork([nn.Linear(2, 3), nn.Linear(3, 2), make_neuron("lif")], Readout(2, 1), num_steps=2)
    first, second, _ = estimate_energy(net, torch.ones(4, 2), verbose=False)["layers"]
    assert (first["macs"], second["macs"], second["synops"]) == (6, 6, 0)
    pooled = SpikingNetwork([nn.Linear(2, 3), nn.Tanh(), make_neuron("lif")], Readout(3, 1), num_steps=2)
    with pytest.raises(NotImplementedError, match=r"no operation count for layer layers\.1 of type Tanh"):
        estimate_energy(pooled, torch.ones(1, 2), verbose=False)


def test_spike_statistics_and_record_spikes_validate_their_input():
    with pytest.raises(ValueError, match=r"spikes must hold at least one step, sample and neuron, got shape "
                                         r"\(0, 1, 4\)"):
        spike_statistics(torch.zeros(0, 1, 4))  # used to return NaN rates
    with pytest.raises(TypeError, match=r"spikes must be a torch\.Tensor"):
        spike_statistics(np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match=r"saturation must be > 0\.0"):
        spike_statistics(torch.zeros(2, 1, 4), saturation=0.0)
    with pytest.raises(ValueError, match="spikes must be finite"):
        spike_statistics(torch.full((2, 1, 4), float("nan")))
    with pytest.raises(TypeError, match=r"module must be a torch\.nn\.Module"):
        with record_spikes("q_net"):
            pass


def test_spike_stats_callback_needs_a_spiking_model():
    from stable_baselines3 import DQN

    from snnrl_sb3 import SpikeStatsCallback

    with pytest.raises(RuntimeError, match=r"collect\(\) needs a model"):
        SpikeStatsCallback().collect()
    with pytest.raises(ValueError, match="DQNPolicy contains no SpikingNetwork to analyse"):
        DQN("MlpPolicy", "CartPole-v1", learning_starts=10).learn(20, callback=SpikeStatsCallback(log_freq=100))
    with pytest.raises(TypeError, match="seed must be an int"):
        SpikeStatsCallback(seed=0.5)


def test_preserved_rng_state_restores_global_and_encoder_generators():
    import random

    from snnrl_sb3.coding import BernoulliEncoder
    from snnrl_sb3.stats import preserved_rng_state

    x = torch.full((4, 5), 0.5)
    for warm in (False, True):  # generator built inside the block / already in use
        encoder, reference = BernoulliEncoder(seed=7), BernoulliEncoder(seed=7)
        if warm:
            encoder(x, 3), reference(x, 3)
        torch.manual_seed(0), np.random.seed(0), random.seed(0)
        with preserved_rng_state(encoder):
            encoder(x, 3), torch.rand(2), np.random.rand(2), random.random()
        after = encoder(x, 3), torch.rand(2), np.random.rand(2), random.random()
        torch.manual_seed(0), np.random.seed(0), random.seed(0)
        expected = reference(x, 3), torch.rand(2), np.random.rand(2), random.random()
        for a, b in zip(after, expected):
            assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))


@pytest.mark.parametrize("optimize_memory_usage", [False, True])
def test_spike_stats_callback_samples_only_valid_replay_observations(optimize_memory_usage):
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    from snnrl_sb3 import SpikeStatsCallback

    buffer = ReplayBuffer(10, spaces.Box(-1e3, 1e3, (1,)), spaces.Discrete(2),
                          optimize_memory_usage=optimize_memory_usage, handle_timeout_termination=False)
    for t in range(13):  # full, wrapped round to pos = 3
        buffer.add(np.array([[t]]), np.array([[t + 1]]), np.array([0]), np.array([0.0]), np.array([False]), [{}])
    callback = SpikeStatsCallback(batch_size=2000)
    callback.model = None  # no VecNormalize
    seen = set(callback._sample_buffer(buffer).flatten().tolist())
    # index 3 holds t = 13 (the next obs of the last transition) with one shared array, t = 3 otherwise
    assert seen == set(range(4, 13)) | ({3} if not optimize_memory_usage else set())


def test_energy_of_a_network_built_on_a_population_encoder():
    # the encoder's spike mode used to be stored as ``spikes``, hiding Encoder.spikes(): estimate_energy crashed
    from snnrl_sb3 import PopulationDecoder, PopulationEncoder, SpikingNetwork
    from snnrl_sb3.kernels import make_neuron

    torch.manual_seed(0)
    net = SpikingNetwork([torch.nn.Linear(12, 5), make_neuron("lif")], PopulationDecoder(1, 5), 4,
                         PopulationEncoder(3, 4, mean_range=(-1, 1)))
    obs = torch.rand(6, 3) * 2 - 1
    spikes = net.encoder.spikes(obs, 4)
    report = estimate_energy(net, obs, verbose=False)
    (first,) = report["layers"]
    # the first Linear is fed by the population spikes: one accumulate per non-zero spike and output, per sample
    assert first["layer"] == "network.layers.0"
    assert first["synops"] == pytest.approx(spikes.abs().sum().item() * 5 / obs.shape[0])
    assert first["ann_macs"] == 12 * 5


def test_an_encoder_that_assigns_its_synapse_exposes_it():
    from snnrl_sb3.coding import Encoder

    class Owning(Encoder):
        def __init__(self) -> None:
            super().__init__()
            self.synapse = torch.nn.Linear(3, 2)

    encoder = Owning()
    assert isinstance(encoder.synapse, torch.nn.Linear)
    assert "synapse.weight" in encoder.state_dict()


def test_analog_population_input_counts_its_synapse_once_as_macs():
    # MDC-SAN feeds the Gaussian activations themselves, the same at every step: one matrix product per decision
    from stable_baselines3 import TD3

    from snnrl_sb3 import PopSpikingTD3Policy

    actor = TD3(PopSpikingTD3Policy, "Pendulum-v1", policy_kwargs=dict(preset="mdcsan", net_arch=[16]))
    report = estimate_energy(actor.policy, np.zeros((3, 3), np.float32), verbose=False)
    first = report["layers"][0]
    assert first["layer"] == "actor.snn.encoder.synapse"
    assert (first["synops"], first["macs"], first["ann_macs"]) == (0.0, 30 * 16, 30 * 16)
