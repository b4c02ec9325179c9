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

    actor = TD3(PopSpikingTD3Policy, "Pendulum-v1", policy_kwargs=dict(net_arch=[16, 16], pop_dim=4))
    report = estimate_energy(actor.policy, np.zeros((3, 3), dtype=np.float32), verbose=False)
    first = report["layers"][0]
    assert first["layer"].endswith("encoder.synapse") and first["macs"] == 0  # fed by population spikes
    assert first["ann_macs"] == 3 * 4 * 16
    dueling = DQN(SpikingQPolicy, "CartPole-v1", policy_kwargs=dict(net_arch=[8], dueling=True))
    names = [r["layer"] for r in estimate_energy(dueling.policy, np.zeros((2, 4), np.float32), verbose=False)["layers"]]
    assert any("value" in n for n in names) and any("advantage" in n for n in names)
