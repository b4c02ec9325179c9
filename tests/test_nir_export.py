import numpy as np
import pytest

nir = pytest.importorskip("nir")

from snnrl_sb3 import spiking_mlp  # noqa: E402
from snnrl_sb3.body import spiking_nature_cnn  # noqa: E402
from snnrl_sb3.nir_export import DT, export_nir  # noqa: E402


def test_binary_mlp_round_trip(tmp_path):
    net = spiking_mlp(4, [16, 8], 2, num_steps=5, neuron="lif",
                      neuron_kwargs={"beta": 0.8, "threshold": 1.5, "reset": "zero"})
    export_nir(net, tmp_path / "net.nir", host_readout=False)
    graph = nir.read(tmp_path / "net.nir")
    assert set(graph.nodes) == {"input", "layers_0", "layers_1", "layers_2", "layers_3", "readout_linear",
                                "readout", "output"}
    assert isinstance(graph.nodes["layers_1"], nir.LIF)
    np.testing.assert_allclose(graph.nodes["layers_0"].weight, net.layers[0].weight.detach().numpy())
    lif = graph.nodes["layers_1"]
    # one Euler step of NIR's LIF reproduces U = beta U + I
    np.testing.assert_allclose(1 - DT / lif.tau, 0.8, rtol=1e-5)
    assert lif.tau.dtype == np.float32 and np.all(np.float32(1) - np.float32(DT) / lif.tau == np.float32(0.8))
    np.testing.assert_allclose(lif.r * DT / lif.tau, 1.0, rtol=1e-5)
    np.testing.assert_allclose(lif.v_threshold, 1.5)
    np.testing.assert_allclose(lif.v_reset, 0.0)  # exact: the neuron resets to zero
    assert isinstance(graph.nodes["readout"], nir.LI)
    assert {("input", "layers_0"), ("readout", "output")} <= set(map(tuple, graph.edges))


def test_the_default_read_out_is_its_synapse_with_the_host_side_in_the_metadata(tmp_path):
    net = spiking_mlp(4, [8], 3, num_steps=5, neuron="lif", neuron_kwargs={"reset": "zero"}, readout="membrane_last",
                      readout_beta=0.7)
    export_nir(net, tmp_path / "net.nir")
    graph = nir.read(tmp_path / "net.nir")
    assert set(graph.nodes) == {"input", "layers_0", "layers_1", "readout_linear", "output"}
    assert ("readout_linear", "output") in set(map(tuple, graph.edges))
    meta = graph.metadata  # survives nir.write / nir.read
    assert (meta["num_steps"], meta["readout"], meta["readout_beta"], meta["readout_input_scale"]) == (
        5, "membrane_last", 0.7, 1.0)
    assert (meta["dt"], meta["encoder"], meta["host_readout"], meta["target"]) == (DT, "DirectEncoder", True, "none")


def test_host_readout_rebuilds_every_statistic_from_the_metadata():
    import torch

    from snnrl_sb3.nir_export import host_readout

    torch.manual_seed(0)
    spikes = (torch.rand(6, 5, 8) < 0.4).float()
    for mode in ("spike_count", "current_sum", "membrane_max", "membrane_mean", "membrane_last"):
        net = spiking_mlp(4, [8], 3, num_steps=6, neuron="lif", neuron_kwargs={"reset": "zero"}, readout=mode,
                          readout_beta=0.6)
        net.readout.input_scale = 0.5
        graph = export_nir(net)
        currents = net.readout.linear(spikes).detach()  # what the output node carries at every step
        torch.testing.assert_close(host_readout(currents, graph.metadata), net.readout(spikes).detach(),
                                   rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="outputs has 5 steps, the graph's num_steps is 6"):
        host_readout(currents[:5], graph.metadata)
    with pytest.raises(ValueError, match="this graph was exported with host_readout=False"):
        host_readout(currents, export_nir(net, host_readout=False).metadata)
    with pytest.raises(ValueError, match="the graph's metadata has no 'num_steps'"):
        host_readout(currents, {})


def test_integrate_and_fire_and_current_lif_nodes():
    g = export_nir(spiking_mlp(3, [4], 2, neuron="lif", neuron_kwargs={"beta": 1.0, "reset": "zero"},
                               readout="spike_count"), host_readout=False)
    assert isinstance(g.nodes["layers_1"], nir.IF) and isinstance(g.nodes["readout"], nir.I)
    g = export_nir(spiking_mlp(3, [4], 2, neuron="current_lif"))
    assert isinstance(g.nodes["layers_1"], nir.CubaLIF)


def test_cnn_export_needs_and_uses_input_shape(tmp_path):
    net = spiking_nature_cnn(2, (36, 36), 32, 3, num_steps=2, neuron="lif", neuron_kwargs={"reset": "zero"})
    with pytest.raises(ValueError, match="input_shape is required"):
        export_nir(net)
    export_nir(net, tmp_path / "cnn.nir", input_shape=(2, 36, 36))
    graph = nir.read(tmp_path / "cnn.nir")
    assert isinstance(graph.nodes["layers_0"], nir.Conv2d) and isinstance(graph.nodes["layers_6"], nir.Flatten)
    assert (graph.nodes["layers_6"].start_dim, graph.nodes["layers_6"].end_dim) == (0, -1)  # NIR: no batch axis
    # snnTorch and norse apply the dims to batched tensors: written as torch's, outside NIR's type check
    export_nir(net, tmp_path / "cnn_snntorch.nir", input_shape=(2, 36, 36), target="snntorch")
    with pytest.raises(ValueError):
        nir.read(tmp_path / "cnn_snntorch.nir")
    assert nir.read(tmp_path / "cnn_snntorch.nir", type_check=False).nodes["layers_6"].start_dim == 1


@pytest.mark.parametrize("neuron", ["ternary", "symmetric_ternary"])
def test_ternary_network_refuses_to_export_unless_the_approximation_is_asked_for(neuron):
    import torch

    net = spiking_mlp(4, [8], 2, neuron=neuron, neuron_kwargs={"threshold": 0.3})
    with pytest.raises(NotImplementedError, match="NIR has no ternary .*or pass approximate=True"):
        export_nir(net)
    torch.manual_seed(0)
    obs = torch.rand(32, 4) * 4 - 2
    with pytest.warns(UserWarning, match=r"ternary written as zero-reset binary LIF neurons.*on 32 observations it "
                                         r"takes the agent's action on"):
        graph = export_nir(net, approximate=True, observations=obs)
    assert isinstance(graph.nodes["layers_1"], nir.LIF) and graph.metadata["approximation_n"] == 32
    assert 0.0 <= graph.metadata["approximation_agreement"] <= 1.0


def test_population_actor_exports_its_spiking_core(tmp_path):
    from stable_baselines3 import TD3

    from snnrl_sb3 import PopSpikingTD3Policy

    model = TD3(PopSpikingTD3Policy, "Pendulum-v1", policy_kwargs=dict(neuron="lif", neuron_kwargs={"reset": "zero"},
                                                                 net_arch=[16, 16], encoder_kwargs={"pop_dim": 4}))
    export_nir(model.policy, tmp_path / "actor.nir")
    graph = nir.read(tmp_path / "actor.nir")
    first = graph.nodes["encoder_synapse"]
    assert isinstance(first, nir.Affine) and first.weight.shape == (16, 3 * 4)  # fed by the population spikes
    assert graph.metadata["readout"] == "population"  # decoded on the host
    assert ("layers_4", "output") in set(map(tuple, graph.edges))  # output-population spikes leave the chip
    with pytest.raises(NotImplementedError, match="NIR has no ternary"):
        export_nir(TD3(PopSpikingTD3Policy, "Pendulum-v1", policy_kwargs=dict(neuron="ternary")).policy)


def test_input_shape_is_checked_against_the_network():
    from stable_baselines3 import DQN

    from snnrl_sb3 import SpikingQPolicy

    policy = DQN(SpikingQPolicy, "CartPole-v1",
                 policy_kwargs=dict(neuron="lif", neuron_kwargs={"reset": "zero"}, net_arch=[8])).policy
    with pytest.raises(ValueError, match=r"input_shape must be \(4,\) for this network \(its first synaptic layer, "
                                         r"layers.0, takes 4 input features\), got \(7,\)"):
        export_nir(policy, input_shape=(7,))  # used to fail with a matmul shape error
    assert isinstance(export_nir(policy, input_shape=(4,)).nodes["layers_0"], nir.Affine)
    with pytest.raises(TypeError, match="input_shape must be a tuple of ints"):
        export_nir(policy, input_shape=4)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module .*, got DQN; for an SB3 model, pass "
                                        r"its \.policy"):
        export_nir(DQN(SpikingQPolicy, "CartPole-v1"))
    cnn = spiking_nature_cnn(2, (36, 36), 32, 3, num_steps=2, neuron="lif", neuron_kwargs={"reset": "zero"})
    with pytest.raises(ValueError, match=r"input_shape must be \(channels, height, width\) with 2 channels .*, "
                                         r"got \(3, 36, 36\)"):
        export_nir(cnn, input_shape=(3, 36, 36))
    with pytest.raises(ValueError, match=r"input_shape \(2, 8, 8\) does not fit the network at layer layers.2"):
        export_nir(cnn, input_shape=(2, 8, 8))  # too small for the second kernel
    with pytest.raises(ValueError, match=r"input_shape \(2, 52, 52\) does not fit the network: layer layers.7 takes "
                                         r"64 features but gets shape \(576,\)"):
        export_nir(cnn, input_shape=(2, 52, 52))


def test_non_decaying_current_lif_refuses_to_export():
    net = spiking_mlp(3, [4], 2, neuron="current_lif", neuron_kwargs={"volt_decay": 1.0})
    with pytest.raises(NotImplementedError, match=r"volt_decay=1.0 \(no decay\) has no finite NIR time constant"):
        export_nir(net)  # used to raise ZeroDivisionError


def test_readout_input_scale_and_current_sum_are_exported(tmp_path):
    from snnrl_sb3.coding import Readout

    net = spiking_mlp(4, [8], 2, num_steps=3, neuron="lif", neuron_kwargs={"reset": "zero"}, readout="membrane_max")
    net.readout = Readout(8, 2, "membrane_max", beta=0.5, input_scale=0.5)
    graph = export_nir(net, host_readout=False)
    np.testing.assert_allclose(graph.nodes["readout"].r, 0.5 * graph.nodes["readout"].tau / DT)
    net.readout = Readout(8, 2, "current_sum")
    graph = export_nir(net, host_readout=False)
    assert type(graph.nodes["readout"]).__name__ == "I" and graph.metadata["readout"] == "current_sum"
    np.testing.assert_allclose(graph.nodes["readout"].r, 1.0 / DT)


def test_a_network_on_another_schedule_is_refused():
    from snnrl_sb3.conversion import _DelayedSpikingNetwork

    plain = spiking_mlp(4, [8], 2, num_steps=3, neuron="lif")
    delayed = _DelayedSpikingNetwork(list(plain.layers), plain.readout, 3, plain.encoder)
    with pytest.raises(NotImplementedError, match="_DelayedSpikingNetwork runs its layers on another schedule"):
        export_nir(delayed)


def test_subtractive_reset_is_refused_unless_the_approximation_is_asked_for():
    net = spiking_mlp(4, [8], 2, num_steps=3, neuron="lif")  # reset="subtract", the default
    with pytest.raises(NotImplementedError, match="NIR has no subtractive reset.*neuron_kwargs=\\{'reset': 'zero'\\}"):
        export_nir(net)
    with pytest.warns(UserWarning, match="subtractive reset written as zero-reset binary LIF neurons; the exported "
                                         "network computes something else than the policy$"):
        graph = export_nir(net, approximate=True)
    np.testing.assert_allclose(graph.nodes["layers_1"].v_reset, 0.0)
    with pytest.raises(ValueError, match="observations measure an approximation: pass them with approximate=True"):
        export_nir(net, observations=np.zeros((2, 4)))
    with pytest.raises(TypeError, match="approximate must be a bool"):
        export_nir(net, approximate="yes")
    with pytest.raises(NotImplementedError, match="fire='gt'"):
        export_nir(spiking_mlp(4, [8], 2, neuron="lif", neuron_kwargs={"reset": "zero", "fire": "ge"}))


def test_targets_write_what_each_importer_reads_or_refuse():
    lif = {"beta": 0.75, "threshold": 1.25, "reset": "zero"}
    net = spiking_mlp(4, [8], 2, neuron="lif", neuron_kwargs=lif)
    plain, norse = export_nir(net).nodes["layers_1"], export_nir(net, target="norse").nodes["layers_1"]
    np.testing.assert_allclose(plain.r, plain.tau / DT, rtol=1e-6)
    # norse takes r = 1: the same network with the membrane (and threshold) scaled by dt / tau = 1 - beta
    np.testing.assert_allclose(norse.r, 1.0)
    np.testing.assert_allclose(norse.v_threshold, 1.25 * 0.25, rtol=1e-6)
    np.testing.assert_array_equal(norse.tau, plain.tau)
    assert export_nir(net, target="snntorch").metadata["target"] == "snntorch"
    integrate = spiking_mlp(4, [8], 2, neuron="lif", neuron_kwargs={"beta": 1.0, "reset": "zero"})
    with pytest.raises(NotImplementedError, match=r"snnTorch 1.0.0's import_from_nir imports NIR's IF neuron as a "
                                                  r"leaky neuron with beta=0.9 .*#416"):
        export_nir(integrate, target="snntorch")
    assert isinstance(export_nir(integrate, target="norse").nodes["layers_1"], nir.IF)
    with pytest.raises(NotImplementedError, match="host_readout=False writes the read-out integrator as NIR LI/I "
                                                  "nodes, which spikingjelly's importer does not read"):
        export_nir(net, target="spikingjelly", host_readout=False)
    with pytest.raises(ValueError, match="unknown target 'lava'"):
        export_nir(net, target="lava")
    with pytest.raises(TypeError, match="host_readout must be a bool"):
        export_nir(net, host_readout=1)


def test_population_decoder_and_encoder_are_in_the_metadata():
    from stable_baselines3 import TD3

    from snnrl_sb3 import PopSpikingTD3Policy

    model = TD3(PopSpikingTD3Policy, "Pendulum-v1", seed=0, policy_kwargs=dict(
        neuron="lif", neuron_kwargs={"reset": "zero"}, net_arch=[8], encoder_kwargs={"pop_dim": 3,
                                                                                    "spikes": "bernoulli"}))
    meta = export_nir(model.policy).metadata
    decoder = model.policy.actor.snn.readout
    assert (meta["readout"], meta["decoder_squash"], meta["encoder"], meta["encoder_spikes"]) == (
        "population", True, "PopulationEncoder", "bernoulli")
    np.testing.assert_array_equal(meta["decoder_weight"], decoder.weight.detach().numpy())
    assert meta["encoder_seed"] == model.policy.actor.snn.encoder.encoder.bernoulli.seed
