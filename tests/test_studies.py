"""The study runner: study files, checkpoints and resume, Optuna workers (killed ones too), reports."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT

pytest.importorskip("optuna")
pytest.importorskip("rliable")

from optuna.trial import TrialState

from snnrl_sb3.studies import load_study, parse_study, results_dir, run_worker, train_cell, write_report
from snnrl_sb3.studies.__main__ import main as studies_main
from snnrl_sb3.studies.checkpoint import CHECKPOINT
from snnrl_sb3.studies.runner import open_optuna_study, open_storage, study_progress

HYPER = {"learning_rate": 2.3e-3, "batch_size": 32, "buffer_size": 5000, "learning_starts": 100, "gamma": 0.99,
         "target_update_interval": 10, "train_freq": 50, "gradient_steps": 4, "exploration_fraction": 0.2}


def study_dict(**changes: object) -> dict:
    raw = {"name": "tiny", "algo": "dqn", "envs": ["CartPole-v1"], "seeds": [0, 1], "budget": 600,
           "eval": {"freq": 200, "episodes": 1}, "checkpoint_freq": 200, "diagnostics": True, "hyperparams": HYPER,
           "variants": {"ann": {"policy": "MlpPolicy", "policy_kwargs": {"net_arch": [16]}},
                        "snn": {"policy": "snnrl_sb3.SpikingQPolicy",
                                "policy_kwargs": {"net_arch": [16], "num_steps": 2}}},
           "claims": [{"better": "snn", "worse": "ann"}]}
    raw.update(changes)
    return raw


def write_study(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(study_dict(**changes)))
    return path


def check_curve(record: dict, budget: int, freq: int) -> None:
    """Evaluations at 0, every freq steps and at the end, once each, in order."""
    steps = [p[0] for p in record["curve"]]
    assert steps[0] == 0
    assert steps == sorted(set(steps)), steps
    assert steps[-1] == record["steps"] >= budget
    assert all(b - a <= freq + 50 for a, b in itertools.pairwise(steps)), steps  # no evaluation lost (train_freq 50)


# --- study files ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"algo": "dqnn"}, "algo"),
    ({"envs": []}, "envs must be a non-empty list"),
    ({"seeds": [0, 0]}, "must not repeat"),
    ({"seeds": [1.5]}, "seeds"),
    ({"budget": 0}, "budget"),
    ({"bogus": 1}, "unknown key"),
    ({"eval": {"freq": 10, "every": 3}}, "eval: unknown key"),
    ({"variants": {"a b": {"policy": "MlpPolicy"}}}, "variant names"),
    ({"variants": {"ann": {"policy_kwargs": {}}}}, "variants.ann.policy"),
    ({"variants": {"ann": {"policy": "MlpPolicy", "policy_kwargs": {"x": float("nan")}}}}, "JSON-plain"),
    ({"baseline": "cnn"}, "baseline"),
    ({"claims": [{"better": "snn", "worse": "dqn"}]}, r"claims\[0\].worse"),
    ({"claims": [{"better": "snn", "worse": "ann", "relation": "matches", "margin": 0.7}]}, "margin"),
    ({"tune": {"variant": "snn", "space": {"learning_rate": {"type": "float", "low": 1, "high": 2}}}},
     "must start with"),
    ({"tune": {"variant": "snn", "space": {"hyperparams.learning_rate": {"type": "float", "low": 0, "high": 1,
                                                                        "log": True}}}}, "log-scale"),
    ({"tune": {"variant": "snn", "space": {"hyperparams.gamma": {"type": "uniform"}}}}, "type"),
    ({"hyperparams": {**HYPER, "normalize": {"norm_obs": True, "clip": 3}}}, "hyperparams.normalize"),
    ({"env_hyperparams": {"CartPole-v1": {"normalize": "yes"}}}, "hyperparams.normalize"),
])
def test_bad_study_files_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_study(study_dict(**change))


def test_study_cells_and_definitions() -> None:
    study = parse_study(study_dict(env_hyperparams={"CartPole-v1": {"gamma": 0.98}},
                                   variants={"ann": {"policy": "MlpPolicy", "hyperparams": {"batch_size": 8}},
                                             "snn": {"policy": "SpikingQPolicy", "preset": "datsqn"}}))
    cells = study.cells()
    assert [c.key for c in cells] == ["ann/CartPole-v1/seed0", "snn/CartPole-v1/seed0", "ann/CartPole-v1/seed1",
                                      "snn/CartPole-v1/seed1"]
    ann, snn = cells[0], cells[1]
    assert ann.hyperparams["gamma"] == 0.98 and ann.hyperparams["batch_size"] == 8
    assert snn.hyperparams["batch_size"] == 32 and snn.policy_kwargs == {"preset": "datsqn"}
    assert len({c.digest for c in cells}) == 4
    per_env = parse_study(study_dict(env_hyperparams={"CartPole-v1": {"budget": 900, "n_envs": 2, "gamma": 0.9}}))
    assert [(c.budget, c.n_envs, c.hyperparams["gamma"], "budget" in c.hyperparams) for c in per_env.cells()[:1]] \
        == [(900, 2, 0.9, False)]
    with pytest.raises(ValueError, match="env_hyperparams.CartPole-v1.n_envs"):
        parse_study(study_dict(env_hyperparams={"CartPole-v1": {"n_envs": 0}}))
    changed = parse_study(study_dict(budget=601)).cells()[0]
    assert changed.key == parse_study(study_dict()).cells()[0].key
    assert changed.digest != parse_study(study_dict()).cells()[0].digest


def test_shipped_study_files_parse() -> None:
    files = sorted((ROOT / "examples" / "studies").glob("*.yml"))
    assert any(f.name == "cartpole_smoke.yml" for f in files)
    for path in files:
        study = load_study(path)
        assert study.cells(), path


# --- one run: checkpoints, resume, corruption, observation ----------------------------------------------------

def test_resume_after_kill_keeps_the_curve(tmp_path: Path) -> None:
    study = parse_study(study_dict())
    cell = study.cell("snn", "CartPole-v1", 0)
    assert train_cell(cell, tmp_path, verbose=0, stop_after=450) == {}
    assert (tmp_path / CHECKPOINT / "manifest.json").is_file() and not (tmp_path / "result.json").exists()
    record = train_cell(cell, tmp_path, verbose=0)
    assert record["resumed"] == 1 and record["restarted_corrupt"] == 0
    check_curve(record, 600, 200)
    assert not (tmp_path / CHECKPOINT).exists() and (tmp_path / "model.zip").is_file()
    assert train_cell(cell, tmp_path, verbose=0) == record  # finished: never trained again


def test_throughput_counts_cpu_time_not_pauses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker stopped (or starved by other processes) mid-run inflates its wall time, not its
    CPU time: the recorded env-steps per CPU-second stay the training's own cost, across a resume."""
    from snnrl_sb3.studies import training

    original = training._StudyCallback._on_step

    def pausing_on_step(self: training._StudyCallback) -> bool:
        if self.model.num_timesteps == 300:
            time.sleep(2.0)  # as if SIGSTOPped for two seconds
        return original(self)

    monkeypatch.setattr(training._StudyCallback, "_on_step", pausing_on_step)
    cell = parse_study(study_dict()).cell("snn", "CartPole-v1", 0)
    train_cell(cell, tmp_path, verbose=0, stop_after=450)
    record = train_cell(cell, tmp_path, verbose=0)
    assert record["resumed"] == 1
    assert record["train_seconds"] - record["train_cpu_seconds"] > 1.5  # (CPU time also counts torch threads)
    assert 0 < record["train_cpu_seconds"] <= record["wall_seconds"]
    assert record["steps_per_cpu_second"] == record["steps"] / record["train_cpu_seconds"]


@pytest.mark.parametrize("damage", ["truncate_model", "drop_manifest", "other_definition"])
def test_corrupt_checkpoint_restarts_cleanly(tmp_path: Path, damage: str) -> None:
    study = parse_study(study_dict())
    cell = study.cell("snn", "CartPole-v1", 0)
    train_cell(cell, tmp_path, verbose=0, stop_after=450)
    folder = tmp_path / CHECKPOINT
    if damage == "truncate_model":
        data = (folder / "model.zip").read_bytes()
        (folder / "model.zip").write_bytes(data[: len(data) // 2])
    elif damage == "drop_manifest":
        (folder / "manifest.json").unlink()
    else:
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "digest": "0" * 16}))
    with pytest.warns(RuntimeWarning, match="restarting this run from step 0"):
        record = train_cell(cell, tmp_path, verbose=0)
    assert record["restarted_corrupt"] == 1 and record["resumed"] == 0
    check_curve(record, 600, 200)


def test_observing_does_not_change_training(tmp_path: Path) -> None:
    """Evaluations, diagnostics and checkpoints are observation only: same final parameters."""
    quiet = parse_study(study_dict(diagnostics=False, eval={"freq": 600, "episodes": 1}, checkpoint_freq=10_000))
    busy = parse_study(study_dict(diagnostics=True, eval={"freq": 100, "episodes": 2}, checkpoint_freq=150))
    params = []
    for i, study in enumerate([quiet, busy]):
        train_cell(study.cell("snn", "CartPole-v1", 0), tmp_path / str(i), verbose=0)
        from stable_baselines3 import DQN

        params.append(DQN.load(tmp_path / str(i) / "model.zip").policy.state_dict())
    assert params[0].keys() == params[1].keys()
    for key in params[0]:
        assert torch.equal(params[0][key], params[1][key]), key


def test_diagnostics_record_spikes_thresholds_and_gradients(tmp_path: Path) -> None:
    study = parse_study(study_dict(variants={"snn": {"policy": "SpikingQPolicy", "policy_kwargs": {
        "net_arch": [16], "num_steps": 2, "neuron": "ternary"}}}, claims=[]))
    record = train_cell(study.cell("snn", "CartPole-v1", 0), tmp_path, verbose=0)
    last = record["diagnostics"][-1]
    assert last["steps"] == record["steps"]
    assert 0.0 <= last["spikes/q_net/L0/neg_rate"] <= 1.0
    assert last["spikes/q_net/L0/neg_thr"] > 0
    grads = {k: v for k, v in last.items() if k.startswith("grad/")}
    assert grads and all(np.isfinite(v) and v > 0 for v in grads.values()), grads
    first = record["diagnostics"][0]
    assert first["steps"] == 0 and not any(k.startswith("grad/") for k in first)  # no update yet


# --- workers on an Optuna journal ---------------------------------------------------------------------------

def _trials(study_path: Path, root: Path) -> list:
    study = load_study(study_path)
    return open_optuna_study(study, open_storage(study, None, root)).get_trials(deepcopy=False)


def test_two_workers_complete_a_study_and_report(tmp_path: Path) -> None:
    path = write_study(tmp_path)
    root = tmp_path / "results"
    run = subprocess.run([sys.executable, "-m", "snnrl_sb3.studies", "run", str(path), "--workers", "2",
                          "--results", str(root), "--verbose", "0"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    trials = _trials(path, root)
    complete = [t.user_attrs["cell"] for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(complete) == sorted(c.key for c in load_study(path).cells())  # each cell once
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # enqueued once, not once per worker
    hosts = {t.user_attrs["worker"]["pid"] for t in trials if t.state == TrialState.COMPLETE}
    assert len(hosts) == 2  # both workers took trials
    out = root / "tiny"
    for cell in load_study(path).cells():
        check_curve(json.loads((out / cell.key / "result.json").read_text()), 600, 200)
    report = (out / "report.md").read_text()
    assert "| CartPole-v1 | snn | 2 |" in report and "P(X > Y)" in report
    assert (out / "curves_CartPole-v1.png").stat().st_size > 0 and (out / "profile.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 4 and summary["aggregates"]["ann"]["mean"][0] == pytest.approx(1.0)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    write_report(load_study(path), out)  # the bootstraps are seeded: the same report, the global RNG untouched
    assert json.loads((out / "summary.json").read_text()) == summary
    assert np.array_equal(np.random.get_state()[1], before)
    status = subprocess.run([sys.executable, "-m", "snnrl_sb3.studies", "status", str(path), "--results", str(root)],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and status.stdout.split("\n")[1].split() == ["ann", "2", "0", "0", "0", "0"]


def test_killed_worker_is_retried_from_its_checkpoint(tmp_path: Path) -> None:
    path = write_study(tmp_path, budget=2000, seeds=[0], eval={"freq": 250, "episodes": 1}, checkpoint_freq=250,
                       variants={"snn": {"policy": "SpikingQPolicy",
                                         "policy_kwargs": {"net_arch": [64], "num_steps": 8}},
                                 "lif": {"policy": "SpikingQPolicy", "policy_kwargs": {
                                     "net_arch": [64], "num_steps": 8, "neuron": "lif"}}},
                       claims=[])
    root = tmp_path / "results"
    out = root / "tiny"
    command = [sys.executable, "-m", "snnrl_sb3.studies", "worker", str(path), "--results", str(root), "--verbose", "0"]
    victim = subprocess.Popen(command)
    deadline = time.time() + 240
    killed_cell = None
    while time.time() < deadline and killed_cell is None:
        for trial in _trials(path, root) if (out / "optuna.log").exists() else []:
            worker = trial.user_attrs.get("worker")
            if trial.state == TrialState.RUNNING and worker and worker["pid"] == victim.pid and \
                    (out / trial.user_attrs["cell"] / CHECKPOINT / "manifest.json").exists():
                killed_cell = trial.user_attrs["cell"]
                break
        time.sleep(0.05)
    assert killed_cell is not None, "the worker never reached a checkpoint"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    survivor = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert survivor.returncode == 0, survivor.stderr[-3000:]
    trials = _trials(path, root)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.user_attrs["cell"] for t in failed] == [killed_cell]
    assert failed[0].user_attrs["failed_because"] == "worker process gone"
    complete = {t.user_attrs["cell"]: t for t in trials if t.state == TrialState.COMPLETE}
    assert sorted(complete) == sorted(c.key for c in load_study(path).cells())
    other = next(key for key in complete if key != killed_cell)
    if complete[other].number > failed[0].number:  # the other cell was still waiting when the worker died:
        # the retry, enqueued after it, is claimed first because it has a checkpoint
        assert complete[killed_cell].datetime_start < complete[other].datetime_start
    record = json.loads((out / killed_cell / "result.json").read_text())
    assert record["resumed"] == 1
    check_curve(record, 2000, 250)


def test_duplicate_and_finished_trials_never_run_twice(tmp_path: Path) -> None:
    path = write_study(tmp_path, seeds=[0], variants={"ann": {"policy": "MlpPolicy",
                                                              "policy_kwargs": {"net_arch": [8]}}}, claims=[])
    study = load_study(path)
    root = tmp_path / "results"
    optuna_study = open_optuna_study(study, open_storage(study, None, root))
    cell = study.cells()[0]
    for _ in range(2):  # two workers that raced to enqueue the same cell
        optuna_study.enqueue_trial({}, user_attrs={"cell": cell.key, "digest": cell.digest})
    assert run_worker(study, root=root, verbose=0) == 1
    states = [(t.state, t.user_attrs.get("duplicate_of")) for t in optuna_study.get_trials(deepcopy=False)]
    assert states == [(TrialState.COMPLETE, None), (TrialState.PRUNED, 0)]
    result = results_dir(study, root) / cell.key / "result.json"
    mtime = result.stat().st_mtime_ns
    assert run_worker(study, root=root, verbose=0) == 0  # everything complete: nothing runs
    assert result.stat().st_mtime_ns == mtime
    # a fresh clone has the committed result.json but no journal: still complete, and not run again
    (results_dir(study, root) / "optuna.log").unlink()
    assert study_progress(study, root=root)["ann"] == {"complete": 1, "running": 0, "waiting": 0, "failed": 0,
                                                       "pending": 0}
    assert run_worker(study, root=root, verbose=0) == 1  # its new trial reports the record without training
    assert result.stat().st_mtime_ns == mtime
    changed = parse_study({**study_dict(seeds=[0], budget=700, claims=[],
                                        variants={"ann": {"policy": "MlpPolicy", "policy_kwargs": {"net_arch": [8]}}})},
                          path)
    with pytest.raises(ValueError, match="different definition"):
        run_worker(changed, root=root, verbose=0)


def test_progress_shows_a_running_cell_as_running_despite_its_waiting_twin(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, seeds=[0]))
    root = tmp_path / "results"
    optuna_study = open_optuna_study(study, open_storage(study, None, root))
    cell = study.cell("snn", "CartPole-v1", 0)
    for _ in range(2):  # two workers that raced to enqueue the same cell
        optuna_study.enqueue_trial({}, user_attrs={"cell": cell.key, "digest": cell.digest})
    first = optuna_study.get_trials(deepcopy=False)[0]
    optuna_study._storage.set_trial_state_values(first._trial_id, TrialState.RUNNING)
    assert study_progress(study, root=root)["snn"] == {"complete": 0, "running": 1, "waiting": 0, "failed": 0,
                                                       "pending": 0}
    optuna_study._storage.set_trial_state_values(first._trial_id, TrialState.FAIL)  # its retry waits
    assert study_progress(study, root=root)["snn"]["waiting"] == 1


def test_run_enqueues_each_run_once_before_its_workers_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from snnrl_sb3.studies import runner

    path = write_study(tmp_path)
    study, root = load_study(path), tmp_path / "results"
    optuna_study = open_optuna_study(study, open_storage(study, None, root))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = study.cell("snn", "CartPole-v1", 0)  # a trial whose worker on this host is gone
    optuna_study.enqueue_trial({}, user_attrs={"cell": killed.key, "digest": killed.digest})
    trial = optuna_study.get_trials(deepcopy=False)[0]
    optuna_study._storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING)
    optuna_study._storage.set_trial_user_attr(trial._trial_id, "worker",
                                              {"host": runner._HOST, "pid": dead.pid, "started": time.time()})
    started = []

    class Worker:  # records the command instead of starting a process
        def __init__(self, command: list[str]) -> None:
            started.append(command)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", Worker)
    assert runner.run_workers(path, 2, root=str(root), verbose=0) == 0
    assert len(started) == 2 and started[0][3:5] == ["worker", str(path)]
    trials = optuna_study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    waiting = sorted(t.user_attrs["cell"] for t in trials if t.state == TrialState.WAITING)
    assert waiting == sorted(c.key for c in study.cells())  # each once, the killed run's retry included


def test_workers_can_take_only_some_variants(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, seeds=[0], budget=200, eval={"freq": 200, "episodes": 1}))
    root = tmp_path / "results"
    with pytest.raises(ValueError, match="'cnn' not in study 'tiny'; its variants are ann, snn"):
        run_worker(study, root=root, variants=["cnn"])
    with pytest.raises(ValueError, match="variants must be a non-empty list"):
        run_worker(study, root=root, variants="snn")
    with pytest.raises(SystemExit, match="--variants: 'cnn' not in study"):
        studies_main(["run", str(study.path), "--results", str(root), "--variants", "snn,cnn"])
    # a worker on the other variant's waiting trial must leave it alone, not fail it
    optuna_study = open_optuna_study(study, open_storage(study, None, root))
    ann = study.cell("ann", "CartPole-v1", 0)
    optuna_study.enqueue_trial({}, user_attrs={"cell": ann.key, "digest": ann.digest})
    assert run_worker(study, root=root, verbose=0, variants=["snn"]) == 1
    progress = study_progress(study, root=root)
    assert (progress["snn"]["complete"], progress["ann"]["complete"], progress["ann"]["waiting"]) == (1, 0, 1)
    assert not (results_dir(study, root) / ann.key / "result.json").exists()
    assert run_worker(study, root=root, verbose=0) == 1  # then the rest
    assert [t.state for t in optuna_study.get_trials(deepcopy=False)] == [TrialState.COMPLETE] * 2


def test_tune_mode_averages_seeds(tmp_path: Path) -> None:
    path = write_study(tmp_path, budget=300, eval={"freq": 300, "episodes": 1}, claims=[], tune={
        "variant": "snn", "seeds": [0, 1], "n_trials": 2,
        "space": {"policy_kwargs.num_steps": {"type": "int", "low": 1, "high": 3},
                  "hyperparams.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}})
    from snnrl_sb3.studies import tune_worker

    optuna_study = tune_worker(load_study(path), root=tmp_path / "results", verbose=0)
    trials = [t for t in optuna_study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(trials) == 2
    for trial in trials:
        assert len(trial.user_attrs["scores"]) == 2
        assert trial.value == pytest.approx(np.mean(trial.user_attrs["scores"]))
        assert 1 <= trial.params["policy_kwargs.num_steps"] <= 3


def test_diagnostics_summary_takes_medians_of_gradients_and_last_thresholds() -> None:
    from snnrl_sb3.studies.report import diagnostics_summary

    def run(variant: str, grads: list[float], thr: list[float]) -> dict:
        points = [{"steps": 100 * i, "grad/q_net/layer0": g, "spikes/q_net/L0/neg_thr": t,
                   "spikes/q_net/L0/neg_rate": t / 10, "spikes/q_net/L0/rate": 9.0}
                  for i, (g, t) in enumerate(zip(grads, thr))]
        return {"variant": variant, "diagnostics": points}

    # step 0 (the untrained agent, no update yet) is left out of the gradient medians
    summary = diagnostics_summary([run("a", [100.0, 1.0, 3.0, 2.0], [2.0, 2.0, 1.0, 0.5]),
                                   run("a", [100.0, 5.0, 5.0, 5.0], [2.0, 2.0, 2.0, 1.5]),
                                   run("b", [7.0, float("nan"), 4.0], [2.0, 2.0, 2.0])])
    assert summary == {"a": {"grad/q_net/layer0": 3.5, "spikes/q_net/L0/neg_thr": 1.0,
                             "spikes/q_net/L0/neg_rate": 0.1, "spikes/q_net/L0/rate": 9.0},
                       "b": {"grad/q_net/layer0": 4.0, "spikes/q_net/L0/neg_thr": 2.0,
                             "spikes/q_net/L0/neg_rate": 0.2, "spikes/q_net/L0/rate": 9.0}}


def test_diagnostics_table_leaves_out_binary_layers_negative_rates() -> None:
    from snnrl_sb3.studies.report import _diagnostics_table

    binary = {"spikes/q_net/L0/rate": 0.2, "spikes/q_net/L0/neg_rate": 0.0}
    head = _diagnostics_table({"snn": binary, "ann": {}}, {}).splitlines()[0]
    assert head == "| variant | spike rate q_net/L0 (last) |"
    # a ternary layer keeps its −1 rate, even at 0 (a θ⁻ that never lets a −1 through is a finding)
    ternary = {**binary, "spikes/q_net/L0/neg_thr": 1.5}
    assert "−1 rate q_net/L0 (last)" in _diagnostics_table({"snn": ternary}, {})
    fired = {**binary, "spikes/q_net/L0/neg_rate": 0.01}  # symmetric ternary: −1 spikes, fixed θ⁻
    assert "−1 rate q_net/L0 (last)" in _diagnostics_table({"snn": fired}, {})


def test_claims_need_three_runs_per_variant_for_a_verdict() -> None:
    from snnrl_sb3.studies.report import decide_claims

    study = parse_study(study_dict(claims=[{"better": "snn", "worse": "ann"}]))
    one = decide_claims(study, {"snn": np.array([[9.0]]), "ann": np.array([[1.0]])}, reps=200)[0]
    assert (one["p"], one["low"], one["high"]) == (1.0, 1.0, 1.0)  # degenerate: one run each
    assert one["verdict"] == "undecided (1 run; a verdict needs 3)"
    three = decide_claims(study, {"snn": np.array([[9.0], [8.0], [10.0]]), "ann": np.array([[1.0], [2.0], [0.0]])},
                          reps=200)[0]
    assert three["verdict"] == "supported"
