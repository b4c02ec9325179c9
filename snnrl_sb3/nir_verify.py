r"""Check that an exported spiking agent, re-imported by another framework, takes the same actions.

:func:`verify_nir` exports the policy's spiking core with :func:`~snnrl_sb3.nir_export.export_nir`
(for that importer: ``target=importer``), writes it to a file and reads it back, imports it with
snnTorch, norse or spikingjelly, runs it for ``T`` steps on the *same* encoded inputs as the agent
(encoded once by the policy's own encoder, Bernoulli noise included), applies the host side from
the graph's metadata alone (:func:`~snnrl_sb3.nir_export.host_readout`) and compares the result with
the agent's own outputs on those observations: the fraction of observations on which the imported
network takes the agent's action (the greedy action of a Q-network; for an actor, an action within
tolerance of the agent's) and the largest output difference.

Exactness, as measured by ``tests/test_nir_verify.py`` on the installed versions:

* snnTorch 1.0.0 runs the same float32 operations as the agent (:math:`\beta U + I`, a zero reset,
  :math:`U > \theta`; :math:`\beta` recovered exactly from the written :math:`\tau`): the spikes are
  identical, the outputs differ by the host read-out's float rounding only;
* norse 1.1.0 and spikingjelly 2.0 integrate NIR's equation in another float arithmetic
  (:math:`v + \frac{dt}{\tau}(I - v)`, :math:`v - v/\tau + I`); spikingjelly also fires on
  :math:`v \ge \theta`. A membrane within float rounding of the threshold can then spike
  differently: ``action_agreement`` says how often that changed the action.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import BasePolicy
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_choice, check_observations, check_real
from snnrl_sb3.body import SpikingNetwork
from snnrl_sb3.coding import Readout
from snnrl_sb3.nir_export import BATCHED_FLATTEN, DT, TARGETS, _first_synapse, export_nir, host_readout
from snnrl_sb3.stats import _check_module, preserved_rng_state, spiking_networks

__all__ = ["NIRVerification", "verify_nir", "compare_networks", "IMPORTERS"]

#: The importers :func:`verify_nir` runs: distribution name and how to install it next to a pinned torch.
IMPORTERS: dict[str, tuple[str, str]] = {
    "snntorch": ("snntorch", 'pip install "snntorch>=0.9" nir nirtorch'),
    "norse": ("norse", "pip install --no-deps norse==1.1.0 nir nirtorch"),
    "spikingjelly": ("spikingjelly", "pip install --no-deps spikingjelly==2.0.0 nir nirtorch"),
}
assert tuple(IMPORTERS) == TARGETS

_NOTES = {
    "snntorch": "snnTorch imports LIF as a zero-reset snn.Leaky with beta = 1 - 1e-4/tau in float32 (dt fixed at 1e-4)",
    "norse": "norse's LIF ignores r: written with r=1 and the threshold scaled by dt/tau (the same network); "
             "its Euler step v + dt/tau (I - v) rounds differently from beta U + I",
    "spikingjelly": "spikingjelly fires on v >= threshold (the agent and NIR: v > threshold) and charges "
                    "v - v/tau + I, which rounds differently from beta U + I",
}


@dataclass(frozen=True)
class NIRVerification:
    """What :func:`verify_nir` (or :func:`compare_networks`) measured.

    :ivar importer: the importer and its version, e.g. ``"snntorch 1.0.0"``
    :ivar n_observations: observations compared
    :ivar action_agreement: fraction of them on which the imported network takes the agent's action
        (Q-networks: the same greedy action; actors: every output within tolerance)
    :ivar max_abs_diff: the largest output difference (Q-values, or actor outputs in [-1, 1] before
        SB3's rescaling)
    :ivar max_abs_value: the largest agent output, the scale of ``max_abs_diff``
    :ivar quantity: ``"Q"`` or ``"action"``
    :ivar passed: ``action_agreement == 1`` and ``max_abs_diff`` within the tolerance
    :ivar spike_rate: mean firing rate of the agent's spiking neurons on these observations (0: the
        comparison says nothing about the spiking dynamics)
    :ivar notes: what the import approximates, and the export's approximations
    """

    importer: str
    n_observations: int
    action_agreement: float
    max_abs_diff: float
    max_abs_value: float
    quantity: str
    passed: bool
    spike_rate: float
    notes: tuple[str, ...] = ()

    def row(self) -> str:
        """One line for a table: importer | agreement | max |Δ| | status."""
        status = "exact" if self.passed else "DIFFERS"
        return (f"{self.importer:<22} | {self.action_agreement:9.1%} | {self.max_abs_diff:10.3g} "
                f"(of {self.max_abs_value:.3g}) | {status}")


def _load_importer(importer: str) -> tuple[Any, str]:
    """``(import function graph -> module, "name version")``; an ImportError saying how to install it."""
    package, install = IMPORTERS[importer]
    module = {"snntorch": "snntorch.import_nir", "norse": "norse.torch",
              "spikingjelly": "spikingjelly.activation_based.nir_exchange"}[importer]
    try:
        loaded = importlib.import_module(module)
        importlib.import_module("nirtorch")
    except ImportError as error:
        raise ImportError(f"verify_nir(importer={importer!r}) needs {package} (and nir, nirtorch), which cannot be "
                          f"imported here ({error}); install it with: {install}"
                          + (" (--no-deps keeps the installed torch: its declared dependencies would replace it)"
                             if "--no-deps" in install else "")) from None
    version = importlib.metadata.version(package)
    if importer == "snntorch":
        def load(graph: Any) -> nn.Module:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints progress messages
                return loaded.import_from_nir(graph)
    elif importer == "norse":
        def load(graph: Any) -> nn.Module:  # IF's r = 1/dt is NIR's: norse ignores r and warns
            with warnings.catch_warnings():  # norse 1.1.0 calls nirtorch's deprecated load
                warnings.simplefilter("ignore", DeprecationWarning)
                return loaded.from_nir(graph, dt=DT, ignore_warnings=True)
    else:
        def load(graph: Any) -> nn.Module:
            return loaded.import_from_nir(graph, dt=DT, step_mode="s")
    return load, f"{importer} {version}"


def _agent_run(model: nn.Module, network: SpikingNetwork, observations: Any,
               networks: tuple[SpikingNetwork, ...]) -> tuple[Tensor, list[Tensor], Tensor]:
    """``(network input, [outputs of each of networks on it], encoded input [T, B, ...])``: the
    policy's preprocessing, the same encoder noise for every network, RNG states left as they were."""
    direct = isinstance(model, SpikingNetwork)
    check_observations("observations", observations, batched=direct)
    with torch.no_grad():
        if direct:
            device = next((p.device for p in network.parameters()), torch.device("cpu"))
            features = torch.as_tensor(np.asarray(observations) if not isinstance(observations, Tensor)
                                       else observations, dtype=torch.float32, device=device)
        elif isinstance(model, BasePolicy):
            captured: list[Tensor] = []
            handle = network.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
            try:
                with preserved_rng_state(model):
                    obs, _ = model.obs_to_tensor(observations)
                    model._predict(obs, deterministic=True)
            finally:
                handle.remove()
            if not captured:
                raise ValueError("the policy's forward pass did not run its spiking network")
            features = captured[0]
        else:
            raise TypeError(f"model must be an SB3 policy or a SpikingNetwork, got {type(model).__name__}")
        outputs = []
        for net in networks:
            with preserved_rng_state(model):  # the same noise for each
                try:
                    outputs.append(net(features, True))
                except RuntimeError as error:  # shape mismatch deep inside torch: name the argument
                    raise ValueError(f"observations of shape {tuple(features.shape)} do not fit the spiking "
                                     f"network: {error}") from error
        with preserved_rng_state(model):
            encoded = network.encoder.spikes(features, network.num_steps, True)
    if network.encoder.static:
        encoded = encoded.unsqueeze(0).expand(network.num_steps, *encoded.shape)
    return features, outputs, encoded


def _actions(model: nn.Module, network: SpikingNetwork, values: Tensor) -> Tensor | None:
    """Greedy actions of a Q-network's values (``None`` for an actor)."""
    space = getattr(model, "action_space", None)
    n_actions = int(space.n) if space is not None and hasattr(space, "n") else None
    if n_actions is None and isinstance(model, SpikingNetwork) and isinstance(network.readout, Readout):
        n_actions = values.shape[-1]
    if n_actions is None:
        return None
    return values.reshape(values.shape[0], -1, n_actions).mean(1).argmax(-1)  # quantile nets: the mean


def _spike_rate(network: SpikingNetwork, features: Tensor, model: nn.Module) -> float:
    from snnrl_sb3.stats import record_spikes

    with torch.no_grad(), preserved_rng_state(model), record_spikes(network) as records:
        network(features, True)
    rates = [r.abs().float().mean().item() for r in records.values()]
    return float(np.mean(rates)) if rates else 0.0


def _compare(model: nn.Module, network: SpikingNetwork, features: Tensor, agent: Tensor, other: Tensor,
             importer: str, atol: float, rtol: float, notes: tuple[str, ...]) -> NIRVerification:
    agent, other = agent.detach().float().cpu(), other.detach().float().cpu().reshape(agent.shape)
    diff = (agent - other).abs()
    actions = _actions(model, network, agent)
    within = (diff <= atol + rtol * agent.abs()).reshape(agent.shape[0], -1).all(1)
    if actions is not None:
        imported = _actions(model, network, other)
        assert imported is not None  # the same model, so a Q-network too
        agree = torch.eq(actions, imported).float().mean().item()
    else:
        agree = within.float().mean().item()
    max_diff = float(diff.max()) if diff.numel() else 0.0
    return NIRVerification(importer=importer, n_observations=int(agent.shape[0]), action_agreement=agree,
                           max_abs_diff=max_diff, max_abs_value=float(agent.abs().max()),
                           quantity="Q" if actions is not None else "action",
                           passed=agree == 1.0 and bool(within.all()), spike_rate=_spike_rate(network, features, model),
                           notes=notes)


def _the_network(model: nn.Module) -> SpikingNetwork:
    _check_module("model", model)
    networks = spiking_networks(model)
    if len(networks) != 1:
        raise ValueError(f"verify_nir needs exactly one spiking network, found {sorted(networks)}; pass the one "
                         "to verify")
    return next(iter(networks.values()))


def compare_networks(model: nn.Module, network: SpikingNetwork, other: SpikingNetwork, observations: Any, *,
                     atol: float = 1e-5, rtol: float = 1e-5) -> NIRVerification:
    """Compare ``other`` (e.g. :func:`~snnrl_sb3.nir_export.as_exported`'s approximation) with the
    policy's ``network`` on ``observations``: same preprocessing, same encoder noise."""
    features, (agent, approx), _ = _agent_run(model, network, observations, (network, other))
    return _compare(model, network, features, agent, approx, "snnrl_sb3 (as exported)", atol, rtol, ())


def verify_nir(model: nn.Module, observations: Any, importer: str = "snntorch", *, approximate: bool = False,
               plain: bool = False, atol: float = 1e-5, rtol: float = 1e-5) -> NIRVerification:
    """Export ``model``'s spiking network, import it with ``importer`` and compare it with the agent.

    :param model: an SB3 policy holding one spiking network (a Q-network or an actor), or a
        :class:`~snnrl_sb3.body.SpikingNetwork` (then ``observations`` are its direct inputs)
    :param observations: a batch of observations (as the policy's ``predict`` takes them)
    :param importer: ``"snntorch"``, ``"norse"`` or ``"spikingjelly"`` (:data:`IMPORTERS`)
    :param approximate: export subtractive-reset and ternary networks as the zero-reset
        approximation (``export_nir(approximate=True)``): the result then measures how much the
        approximation changes the policy
    :param plain: verify the plain NIR graph (``export_nir(target=None)``, what any NIR reader gets)
        instead of the one written for this importer: shows where the importer misreads NIR
    :param atol, rtol: tolerance of an output difference (``|Δ| <= atol + rtol |agent|``)
    :return: a :class:`NIRVerification`
    :raises ImportError: when the importer is not installed (the message says how to install it)
    :raises NotImplementedError: for what ``export_nir`` refuses (with ``target=importer``)
    :raises ValueError: for empty, non-finite or ill-shaped observations
    """
    import nir

    check_choice("importer", importer, TARGETS)
    check_bool("plain", plain)
    atol = check_real("atol", atol, low=0.0)
    rtol = check_real("rtol", rtol, low=0.0)
    network = _the_network(model)
    features, (agent,), encoded = _agent_run(model, network, observations, (network,))
    load, name = _load_importer(importer)
    _, first = _first_synapse(network)
    input_shape = tuple(encoded.shape[2:]) if isinstance(first, nn.Conv2d) else None
    with tempfile.TemporaryDirectory() as tmp:  # what is verified is the file
        path = Path(tmp) / "policy.nir"
        target = None if plain else importer
        export_nir(model, path, input_shape=input_shape, approximate=approximate, target=target)
        graph = nir.read(str(path), type_check=target not in BATCHED_FLATTEN)
    imported = load(graph)
    steps = []
    with torch.no_grad():
        state = None
        for x_t in encoded.detach().float().cpu():
            out, state = imported(x_t, state)
            steps.append(out.detach().float())
    other = host_readout(torch.stack(steps), graph.metadata)
    notes = [_NOTES[importer] if not plain else f"the plain NIR graph (not written for {importer})"]
    if "approximation" in graph.metadata:
        notes.append(f"export approximation: {graph.metadata['approximation']}")
    return _compare(model, network, features, agent, other, name, atol, rtol, tuple(notes))
