r"""Run a study's cells as trials of an Optuna study, on one machine or many.

Every (variant, env, seed) of a study is one Optuna trial, enqueued with the cell's key and
definition digest as user attributes. Workers (``run --workers N`` starts N on this machine; the
same command on other machines sharing the storage and the results folder adds more) claim
waiting trials through Optuna's storage (moving a waiting trial to running is atomic in every
Optuna storage: one worker wins), cells with a checkpoint first, train the cell with
:func:`~snnrl_sb3.studies.training.train_cell` and report its final evaluation.

* **Storage.** Default: an Optuna journal file ``optuna.log`` beside the results (nothing to
  start, one machine or a shared filesystem); ``--storage URL`` takes any Optuna RDB URL
  (``postgresql://...``, ``sqlite:///...``) or a ``*.log`` journal path.
* **Killed workers.** A running trial records its host, process id and a heartbeat (every
  ``HEARTBEAT_SECONDS``). Any worker that finds a running trial whose process is gone (same host)
  or whose heartbeat is older than ``STALE_SECONDS`` marks it failed and enqueues the cell again;
  the retry resumes from the cell's last checkpoint.
* **Exactly once.** A claimed trial is dropped (marked pruned, ``duplicate_of`` set) when its
  cell already has a completed trial or an earlier live one; a cell whose ``result.json`` exists
  for the same definition is reported without training again.
* ``--tune`` runs the study file's ``tune`` section: a TPE search whose trial objective is the
  mean over several seeds (each seed a checkpointed run like any other).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from snnrl_sb3.studies.checkpoint import CHECKPOINT
from snnrl_sb3.studies.spec import Cell, Study, load_study
from snnrl_sb3.studies.training import read_result, train_cell
from snnrl_sb3.utils import route_mujoco_warnings

__all__ = ["HEARTBEAT_SECONDS", "STALE_SECONDS", "open_storage", "open_optuna_study", "results_dir",
           "select_cells", "run_worker", "run_workers", "study_progress", "fail_stale_trials"]

#: How often a running trial records that its worker is alive, and after how long without a
#: heartbeat another worker treats it as dead (other hosts; on its own host a worker checks the pid).
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 600.0
_HOST = socket.gethostname()


def results_dir(study: Study, root: str | Path | None = None) -> Path:
    """The study's results folder: ``root/<name>`` (default root: ``studies/`` beside the study file's
    folder's parent ``results``, i.e. ``examples/studies/x.yml`` -> ``examples/studies/results/x``)."""
    if root is None:
        base = study.path.parent if study.path is not None else Path.cwd()
        root = base / "results"
    return Path(root) / study.name


def open_storage(study: Study, storage: str | None, root: str | Path | None = None) -> Any:
    """An Optuna storage: ``storage`` as given (RDB URL or ``*.log`` journal file), default the
    journal ``optuna.log`` in the study's results folder."""
    if storage is None or storage.endswith(".log"):
        path = Path(storage) if storage is not None else results_dir(study, root) / "optuna.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(path)))
    return storage


def open_optuna_study(study: Study, storage: Any, *, tune: bool = False) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one INFO line per call otherwise
    name = f"{study.name}-tune" if tune else study.name
    sampler = optuna.samplers.TPESampler(seed=None) if tune else None
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True, direction="maximize",
                               sampler=sampler)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) still answers kill(0)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def fail_stale_trials(optuna_study: optuna.Study) -> list[int]:
    """Mark running trials whose worker is dead as failed; returns their numbers."""
    failed = []
    now = time.time()
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not isinstance(worker, dict):
            continue
        dead = worker.get("host") == _HOST and not _pid_alive(int(worker.get("pid", -1)))
        stale = now - float(trial.user_attrs.get("heartbeat") or worker.get("started") or now) > STALE_SECONDS
        if dead or stale:
            storage = optuna_study._storage
            try:  # user attributes can only be set while the trial still runs: the reason first
                storage.set_trial_user_attr(trial._trial_id, "failed_because",
                                            "worker process gone" if dead else "heartbeat stale")
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # another worker got there first, or it just finished
            failed.append(trial.number)
    return failed


def _live_cells(optuna_study: optuna.Study) -> dict[str, list[optuna.trial.FrozenTrial]]:
    cells: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for trial in optuna_study.get_trials(deepcopy=False):
        key = trial.user_attrs.get("cell")
        if key is not None and trial.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE):
            cells.setdefault(key, []).append(trial)
    return cells


def _check_definitions(optuna_study: optuna.Study, cells: Sequence[Cell]) -> None:
    wanted = {c.key: c.digest for c in cells}
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = trial.user_attrs.get("cell")
        if key in wanted and trial.user_attrs.get("digest") != wanted[key]:
            raise ValueError(f"study {optuna_study.study_name!r}: run {key} was completed with a different "
                             f"definition (budget, hyperparameters, policy kwargs or evaluation changed). Give the "
                             f"changed study a new name, or delete its results folder to start over")


def enqueue_missing(optuna_study: optuna.Study, cells: Sequence[Cell], params: dict[str, Any] | None = None) -> int:
    """Enqueue every cell with no waiting, running or completed trial; returns how many."""
    live = _live_cells(optuna_study)
    n = 0
    for cell in cells:
        if cell.key not in live:
            optuna_study.enqueue_trial(params or {}, user_attrs={"cell": cell.key, "digest": cell.digest})
            n += 1
    return n


def _is_duplicate(optuna_study: optuna.Study, trial: optuna.Trial, key: str) -> int | None:
    for other in _live_cells(optuna_study).get(key, []):
        if other.number == trial.number:
            continue
        if other.state == TrialState.COMPLETE or other.number < trial.number:
            return other.number
    return None


class _Heartbeat:
    def __init__(self, optuna_study: optuna.Study, trial: optuna.Trial) -> None:
        self.storage, self.trial_id = optuna_study._storage, trial._trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                self.storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())
            except Exception:  # finished meanwhile, or storage briefly unavailable: next beat retries
                pass

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def _claim(optuna_study: optuna.Study, out: Path, keys: Collection[str] | None = None
           ) -> tuple[optuna.Trial, str] | None:
    """Claim a waiting trial of a cell (of ``keys`` only, if given), or return ``None`` when there
    is none. Cells with a checkpoint (a killed worker's, retried) come first, then the study file's order."""
    storage = optuna_study._storage
    waiting = [t for t in optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
               if t.user_attrs.get("cell") is not None and (keys is None or t.user_attrs["cell"] in keys)]
    waiting.sort(key=lambda t: (not (out / t.user_attrs["cell"] / CHECKPOINT).exists(), t.number))
    for frozen in waiting:
        try:  # atomic in every Optuna storage: True only for the one worker that moved it to RUNNING
            if not storage.set_trial_state_values(frozen._trial_id, TrialState.RUNNING):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        trial = optuna.Trial(optuna_study, frozen._trial_id)
        key = frozen.user_attrs["cell"]
        twin = _is_duplicate(optuna_study, trial, key)
        if twin is not None:
            trial.set_user_attr("duplicate_of", twin)
            optuna_study.tell(trial, state=TrialState.PRUNED)
            continue
        return trial, key
    return None


def _run_trial(optuna_study: optuna.Study, trial: optuna.Trial, cell: Cell, out: Path, device: str,
               verbose: int) -> dict[str, Any]:
    now = time.time()
    trial.set_user_attr("worker", {"host": _HOST, "pid": os.getpid(), "started": now})
    trial.set_user_attr("heartbeat", now)
    with _Heartbeat(optuna_study, trial):
        record = train_cell(cell, out / cell.key, device=device, verbose=verbose)
    trial.set_user_attr("best", record["best"])
    trial.set_user_attr("steps_per_second", record["steps_per_second"])
    trial.set_user_attr("steps_per_cpu_second", record.get("steps_per_cpu_second"))  # absent in older records
    optuna_study.tell(trial, record["final"])
    return record


def select_cells(study: Study, variants: Sequence[str] | None = None) -> list[Cell]:
    """The study's cells, or only those of ``variants`` (names of the study file's variants)."""
    if variants is None:
        return study.cells()
    if isinstance(variants, str) or not variants:
        raise ValueError(f"variants must be a non-empty list of variant names of study {study.name!r} "
                         f"({', '.join(study.variants)}), got {variants!r}")
    unknown = [v for v in variants if v not in study.variants]
    if unknown:
        raise ValueError(f"variants: {', '.join(map(repr, unknown))} not in study {study.name!r}; "
                         f"its variants are {', '.join(study.variants)}")
    return [c for c in study.cells() if c.variant in variants]


def run_worker(study: Study, *, storage: str | None = None, root: str | Path | None = None, device: str = "auto",
               threads: int | None = 1, verbose: int = 1, wait: bool = True, poll_seconds: float = 2.0,
               variants: Sequence[str] | None = None) -> int:
    """Work on ``study`` until every cell is complete (``wait``: also while other workers' trials
    run, to retry them if their workers die); returns the number of trials this worker finished.

    :param variants: work only on these variants' cells (e.g. to finish the runs a claim needs
        first); other workers may run the rest of the same study meanwhile
    """
    selected = select_cells(study, variants)
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    route_mujoco_warnings()
    out = results_dir(study, root)
    optuna_study = open_optuna_study(study, open_storage(study, storage, root))
    cells = {c.key: c for c in study.cells()}
    _check_definitions(optuna_study, list(cells.values()))
    mine = {c.key for c in selected}
    finished = 0
    while True:
        fail_stale_trials(optuna_study)
        enqueue_missing(optuna_study, selected)
        claimed = _claim(optuna_study, out, None if variants is None else mine)
        if claimed is None:
            running = optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not wait or not any(t.user_attrs.get("cell") in mine for t in running):
                return finished
            time.sleep(poll_seconds)
            continue
        trial, key = claimed
        if key not in cells:  # a cell of an older version of the study file: not ours to run
            trial.set_user_attr("skipped", "not in this study file")
            optuna_study.tell(trial, state=TrialState.FAIL)
            continue
        _run_trial(optuna_study, trial, cells[key], out, device, verbose)
        finished += 1


def run_workers(study_path: str | Path, n_workers: int, *, storage: str | None = None, root: str | None = None,
                device: str = "auto", threads: int = 1, verbose: int = 1, variants: Sequence[str] | None = None
                ) -> int:
    """Start ``n_workers`` worker processes on this machine and wait for them; returns the number
    of workers that failed (0 when all ended normally)."""
    study = load_study(study_path)
    selected = select_cells(study, variants)  # a bad name fails here, not in every worker
    optuna_study = open_optuna_study(study, open_storage(study, storage, root))
    _check_definitions(optuna_study, study.cells())
    # enqueue once, here (retries of dead workers' trials too): workers started together would
    # each enqueue every missing cell, and the twins would only be pruned when claimed
    fail_stale_trials(optuna_study)
    enqueue_missing(optuna_study, selected)
    command = [sys.executable, "-m", "snnrl_sb3.studies", "worker", str(study_path), "--device", device,
               "--threads", str(threads), "--verbose", str(verbose)]
    if variants is not None:
        command += ["--variants", ",".join(variants)]
    if storage is not None:
        command += ["--storage", storage]
    if root is not None:
        command += ["--results", str(root)]
    workers = [subprocess.Popen(command) for _ in range(n_workers)]
    codes = [w.wait() for w in workers]
    return sum(code != 0 for code in codes)


def study_progress(study: Study, *, storage: str | None = None, root: str | Path | None = None
                   ) -> dict[str, dict[str, int]]:
    """Per variant: how many of its cells are complete, running, waiting, failed (latest trial of
    each cell), and not yet enqueued. A cell whose ``result.json`` of the current definition is in
    the results folder counts as complete whatever the storage says (a fresh clone of a repository
    that commits results but not the journal, or a new ``--storage``)."""
    out = results_dir(study, root)
    optuna_study = open_optuna_study(study, open_storage(study, storage, root))
    # a cell's state is its most advanced trial's: workers that start together may each enqueue it,
    # and the running trial's waiting twin (pruned when claimed) must not hide that it runs
    rank = {TrialState.FAIL: 0, TrialState.WAITING: 1, TrialState.RUNNING: 2, TrialState.COMPLETE: 3}
    latest: dict[str, optuna.trial.FrozenTrial] = {}
    for trial in optuna_study.get_trials(deepcopy=False):
        key = trial.user_attrs.get("cell")
        if key is None or trial.state not in rank:
            continue
        if key not in latest or (rank[trial.state], trial.number) > (rank[latest[key].state], latest[key].number):
            latest[key] = trial
    progress: dict[str, dict[str, int]] = {}
    for cell in study.cells():
        row = progress.setdefault(cell.variant, {"complete": 0, "running": 0, "waiting": 0, "failed": 0,
                                                 "pending": 0})
        last = latest.get(cell.key)
        finished = (last is not None and last.state == TrialState.COMPLETE) or \
            read_result(out / cell.key, cell.digest) is not None
        state = "complete" if finished else "pending" if last is None else {
            TrialState.COMPLETE: "complete", TrialState.RUNNING: "running", TrialState.WAITING: "waiting",
            TrialState.FAIL: "failed"}.get(last.state, "failed")
        row[state] += 1
    return progress


def tune_worker(study: Study, *, storage: str | None = None, root: str | Path | None = None, device: str = "auto",
                threads: int | None = 1, verbose: int = 1) -> optuna.Study:
    """``run --tune``: TPE trials over ``study.tune.space`` until ``tune.n_trials`` are complete; a
    trial's value is the mean ``tune.objective`` over its seeds and envs (each a checkpointed run
    under ``results/<name>/tune/trial<k>``); a killed trial is retried with the same parameters."""
    import torch

    tune = study.tune
    if tune is None:
        raise ValueError(f"study {study.name!r} has no 'tune' section to run with --tune")
    if threads is not None:
        torch.set_num_threads(threads)
    route_mujoco_warnings()
    out = results_dir(study, root) / "tune"
    optuna_study = open_optuna_study(study, open_storage(study, storage, root), tune=True)
    while True:
        for number in fail_stale_trials(optuna_study):
            params = optuna_study.trials[number].params
            optuna_study.enqueue_trial(params, user_attrs={"retry_of": number})
        done = len(optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if done >= tune.n_trials:
            return optuna_study
        trial = optuna_study.ask()
        overrides: dict[str, Any] = {}
        for path, spec in tune.space.items():
            if spec["type"] == "int":
                overrides[path] = trial.suggest_int(path, int(spec["low"]), int(spec["high"]),
                                                    log=bool(spec.get("log")))
            elif spec["type"] == "float":
                overrides[path] = trial.suggest_float(path, float(spec["low"]), float(spec["high"]),
                                                      log=bool(spec.get("log")))
            else:
                overrides[path] = trial.suggest_categorical(path, spec["choices"])
        now = time.time()
        trial.set_user_attr("worker", {"host": _HOST, "pid": os.getpid(), "started": now})
        scores = []
        with _Heartbeat(optuna_study, trial):
            for env in tune.envs:
                for seed in tune.seeds:
                    cell = study.cell(tune.variant, env, seed, overrides=overrides)
                    run_dir = out / cell.digest / cell.key
                    record = read_result(run_dir, cell.digest) or train_cell(cell, run_dir, device=device,
                                                                            verbose=verbose)
                    scores.append(record[tune.objective])
        trial.set_user_attr("scores", scores)
        optuna_study.tell(trial, sum(scores) / len(scores))
