"""Learning curves, run records and the one plotter shared by the examples.

* :class:`LearningCurve`: ``EvalCallback(eval_env, callback_after_eval=LearningCurve(...))``
  keeps ``(timesteps, mean, std)`` of every evaluation SB3's ``EvalCallback`` runs, prints each
  one as it happens and optionally stops training once the mean reaches a threshold.
* :class:`ProgressBar`: SB3's progress bar, sized to the steps training will really take (an
  off-policy algorithm collects whole ``train_freq`` rollouts, so 3,000 requested DQN steps with
  ``train_freq=256`` run as 3,072; SB3's own bar then ends at "3,072/3,000").
* :func:`save_model`: saves a model where it says (``.zip`` appended when missing) and prints the
  ``Algo.load("...")`` line that loads it.
* :func:`write_record` / :func:`read_records`: one JSON file per training run.
* :func:`plot_curves`: each variant's mean over seeds with a 95% bootstrap band (over seeds), a
  few variants per panel; :func:`summary_table`: a Markdown table of the same records.

Observing never changes what is observed: the callbacks draw from no random number generator, so a
seeded run trains the same parameters with or without them (the plotter's bootstrap uses a
private generator).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

__all__ = ["LearningCurve", "ProgressBar", "planned_timesteps", "save_model", "write_record", "read_records",
           "plot_curves", "seed_band", "summary_table", "curve_of", "format_steps"]

Curve = list[tuple[int, float, float]]


def format_steps(steps: int) -> str:
    """``32500`` -> ``"32.5k"``, ``1200000`` -> ``"1.2M"``, ``800`` -> ``"800"``."""
    if steps >= 1_000_000:
        return f"{steps / 1_000_000:g}M"
    if steps >= 1000:
        return f"{steps / 1000:g}k"
    return str(steps)


class LearningCurve(BaseCallback):
    """``callback_after_eval`` of SB3's ``EvalCallback``: records and prints every evaluation.

    After each evaluation ``curve`` gains ``(timesteps, mean, std)`` of the episode returns that
    ``EvalCallback`` just measured (``std``: population std over the episodes, as SB3 prints it),
    and one line is printed: the step, ``mean ± std`` and the best mean so far. With ``stop_at``,
    training stops at the first evaluation whose mean is ``>= stop_at``; ``stop_reason`` then says
    so (e.g. ``"reached 475 at 32.5k steps"``), else it stays ``None``.

    :param stop_at: stop training once an evaluation mean reaches this (``None``: never)
    :param name: prefix of the printed lines (e.g. ``"seed 0: "``)
    :param verbose: 0 to print nothing
    """

    def __init__(self, stop_at: float | None = None, name: str = "", verbose: int = 1) -> None:
        super().__init__(verbose)
        self.stop_at = stop_at
        self.name = name
        self.curve: Curve = []
        self.stop_reason: str | None = None
        self._episode_returns: list[float] | None = None

    @property
    def best(self) -> float:
        """Best evaluation mean so far (``-inf`` before the first evaluation)."""
        return max((mean for _, mean, _ in self.curve), default=-math.inf)

    def _init_callback(self) -> None:
        parent = self.parent
        if not isinstance(parent, EvalCallback):
            raise TypeError("LearningCurve goes into EvalCallback(eval_env, callback_after_eval=LearningCurve())")
        # EvalCallback keeps an evaluation's episode returns only when it writes evaluations.npz
        # (log_path); its per-step hook sees evaluate_policy's list of them, so keep a reference to
        # that list (read-only: the hook's own work runs unchanged).
        hook = parent._log_success_callback
        if getattr(hook, "_learning_curve", None) is self:
            return
        # SB3 has no hook for this: its method is replaced on this EvalCallback instance
        parent._log_success_callback = _KeepReturns(self, hook)  # type: ignore[method-assign]

    def _add(self, steps: int, returns: Sequence[float] | None, mean: float, what: str) -> None:
        std = float(np.std(returns)) if returns else math.nan
        self.curve.append((int(steps), float(mean), std))
        if self.verbose:
            print(f"{self.name}{what} at {steps:,} steps: {mean:.1f} ± {std:.1f} (best {self.best:.1f})", flush=True)

    def _on_step(self) -> bool:
        parent = self.parent
        assert isinstance(parent, EvalCallback)
        returns, self._episode_returns = self._episode_returns, None
        mean = float(parent.last_mean_reward)
        if returns is not None and float(np.mean(returns)) != mean:
            returns = None  # not this evaluation's list: std unknown rather than wrong
        self._add(parent.num_timesteps, returns, mean, "eval")
        return self._check_stop()

    def _check_stop(self) -> bool:
        steps, mean, _ = self.curve[-1]
        if self.stop_at is not None and mean >= self.stop_at:
            self.stop_reason = f"reached {self.stop_at:g} at {format_steps(steps)} steps"
            if self.verbose:
                print(f"{self.name}{self.stop_reason}: stopping", flush=True)
            return False
        return True

    def evaluate(self, model: BaseAlgorithm) -> tuple[float, float]:
        """Run one more evaluation now (the ``EvalCallback``'s env, episodes and determinism),
        e.g. at the end of training when the last scheduled one was before the final step;
        adds it to ``curve``, prints it and returns ``(mean, std)``."""
        parent = self.parent
        if not isinstance(parent, EvalCallback):
            raise TypeError("LearningCurve.evaluate needs the curve inside an EvalCallback")
        train_env = model.get_env()
        if model.get_vec_normalize_env() is not None and train_env is not None:
            sync_envs_normalization(train_env, parent.eval_env)
        returns, _ = evaluate_policy(model, parent.eval_env, n_eval_episodes=parent.n_eval_episodes,
                                     deterministic=parent.deterministic, return_episode_rewards=True,
                                     warn=parent.warn)
        assert isinstance(returns, list)  # return_episode_rewards=True: one return per episode
        self._add(model.num_timesteps, returns, float(np.mean(returns)), "final eval")
        return self.curve[-1][1], self.curve[-1][2]


class _KeepReturns:
    """``EvalCallback._log_success_callback`` wrapped to hand the episode returns to a curve."""

    def __init__(self, curve: LearningCurve, hook: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
        self._learning_curve = curve
        self._hook = hook

    def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        self._learning_curve._episode_returns = locals_["episode_rewards"]
        self._hook(locals_, globals_)


def planned_timesteps(model: BaseAlgorithm, total_timesteps: int) -> int:
    """Environment steps ``model.learn(total_timesteps)`` takes from zero: SB3 collects whole
    rollouts (``train_freq`` steps per env off-policy, ``n_steps`` on-policy), so the budget is
    rounded up to a multiple of a rollout. Episode-based ``train_freq``: ``total_timesteps``."""
    freq = model.train_freq if isinstance(model, OffPolicyAlgorithm) else None
    if isinstance(freq, TrainFreq) and freq.unit == TrainFrequencyUnit.STEP:
        chunk = freq.frequency * model.n_envs
    elif isinstance(model, OnPolicyAlgorithm):
        chunk = model.n_steps * model.n_envs
    else:
        return total_timesteps
    return -(-total_timesteps // chunk) * chunk


class ProgressBar(BaseCallback):
    """SB3's progress bar (tqdm + rich) whose total is :func:`planned_timesteps`, so it never
    shows more steps done than its total; pass it in ``callback=[...]`` (not ``progress_bar=True``)."""

    def __init__(self) -> None:
        super().__init__()
        self.pbar: Any = None

    def _on_training_start(self) -> None:
        from tqdm import TqdmExperimentalWarning
        from tqdm.rich import tqdm

        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
        total = int(self.locals["total_timesteps"]) - self.model.num_timesteps
        self.pbar = tqdm(total=planned_timesteps(self.model, total))

    def _on_step(self) -> bool:
        step = self.training_env.num_envs
        if self.pbar.n + step > self.pbar.total:  # episode-based rollouts: the length is not known ahead
            self.pbar.total = self.pbar.n + step
        self.pbar.update(step)
        return True

    def _on_training_end(self) -> None:
        self.pbar.refresh()
        self.pbar.close()


def save_model(model: BaseAlgorithm, path: str | os.PathLike, verbose: bool = True) -> str:
    """Save ``model`` at ``path`` (``.zip`` appended when missing, folders created) and, when its
    env is a ``VecNormalize``, the normalisation statistics next to it as ``*_vecnormalize.pkl``.
    Prints where and the exact line that loads it; returns the model's path."""
    path = str(path)
    if not path.endswith(".zip"):
        path += ".zip"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    model.save(path)
    algo = type(model).__name__
    lines = [f"saved {path}; load it with:", f"    from stable_baselines3 import {algo}",
             f"    model = {algo}.load({json.dumps(path)})"]
    vec_normalize = model.get_vec_normalize_env()
    if isinstance(vec_normalize, VecNormalize):
        stats = path[: -len(".zip")] + "_vecnormalize.pkl"
        vec_normalize.save(stats)
        lines[0] = f"saved {path} and its VecNormalize statistics {stats}; load them with:"
        lines += [f"    env = VecNormalize.load({json.dumps(stats)}, venv)  # venv: a VecEnv of the same environment"]
    if verbose:
        print("\n".join(lines), flush=True)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_record(path: str | os.PathLike, record: dict[str, Any]) -> str:
    """Write one run's record (a JSON-able dict; numpy scalars and tuples are converted) to
    ``path``, creating its folder. Keys the plotter reads: ``curve`` (``[[timesteps, mean, std],
    ...]``), the grouping key (``tag`` by default), ``seed`` and ``seconds``."""
    path = str(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as fh:
        json.dump(_plain(record), fh, indent=1)
        fh.write("\n")
    return path


def read_records(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Records from JSON files; a folder means every ``*.json`` in it (sorted by name)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
    return [json.loads(f.read_text()) for f in files]


def curve_of(record: dict[str, Any]) -> list[tuple[int, float]]:
    """``(timesteps, mean)`` points of a record's ``curve`` (rows of 2 or 3 numbers)."""
    return [(int(point[0]), float(point[1])) for point in record.get("curve") or []]


def _seed_of(record: dict[str, Any]) -> Any:
    return record.get("seed", (record.get("args") or {}).get("seed"))


def _grouped(records: Iterable[dict[str, Any]], group: str | Callable[[dict[str, Any]], str],
             ) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        name = group(record) if callable(group) else record.get(group)
        if name is None:
            raise KeyError(f"record without {group!r} (pass group=... to choose the key): {sorted(record)}")
        groups.setdefault(str(name), []).append(record)
    return {name: groups[name] for name in sorted(groups)}


BOOTSTRAP_RESAMPLES = 2000


def seed_band(records: Sequence[dict[str, Any]], resamples: int = BOOTSTRAP_RESAMPLES,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``steps, mean, low, high, n`` of a variant's runs on the union of their evaluation steps.

    A run's value at a step is its latest evaluation at or before that step (none before its first
    one): a run that stopped early keeps its last evaluated return, since the agent it left is the
    agent that budget buys. ``mean`` is the mean over the runs with a value there, ``n`` their
    count, and ``low``/``high`` the 95% percentile-bootstrap interval of that mean: seeds are
    resampled with replacement (the same resample at every step, ``resamples`` times, from a
    private generator seeded with 0, so the band is reproducible and no global RNG is touched).
    ``nan`` where ``n < 2``. With few seeds the band cannot be wider than the range of the seeds'
    values and covers less than 95%: read it together with ``n``."""
    curves = [curve_of(r) for r in records]
    steps = np.array(sorted({t for c in curves for t, _ in c}), dtype=np.int64)
    values = np.full((len(curves), len(steps)), np.nan)
    for i, curve in enumerate(curves):
        ts = np.array([t for t, _ in curve])
        vs = np.array([v for _, v in curve])
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
        idx = np.searchsorted(ts, steps, side="right") - 1
        values[i] = np.where(idx >= 0, vs[np.clip(idx, 0, None)], np.nan)
    n = np.sum(~np.isnan(values), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns
        mean = np.nanmean(values, axis=0)
        low = np.full(len(steps), np.nan)
        high = np.full(len(steps), np.nan)
        if len(curves) >= 2:
            rng = np.random.default_rng(0)
            pick = rng.integers(0, len(curves), size=(resamples, len(curves)))
            means = np.nanmean(values[pick], axis=1)  # [resamples, steps]
            ok = n >= 2
            low[ok] = np.nanpercentile(means[:, ok], 2.5, axis=0)
            high[ok] = np.nanpercentile(means[:, ok], 97.5, axis=0)
    return steps, mean, low, high, n


def _split(names: list[str], per_panel: int) -> list[list[str]]:
    if not names:
        return []
    k = math.ceil(len(names) / per_panel)
    size, extra = divmod(len(names), k)
    out, start = [], 0
    for i in range(k):
        stop = start + size + (i < extra)
        out.append(names[start:stop])
        start = stop
    return out


def plot_curves(records: Iterable[dict[str, Any]], path: str | os.PathLike, *,
                group: str | Callable[[dict[str, Any]], str] = "tag", title: str = "",
                xlabel: str = "environment steps", ylabel: str = "evaluation return",
                hline: float | None = None, hline_label: str = "", reference: str | None = None,
                max_per_panel: int = 5, dpi: int = 110) -> str:
    """Learning curves of several variants: each variant's mean over its seeds (line) with a 95%
    confidence band, the percentile bootstrap over seeds (:func:`seed_band`; no band for a variant
    with one seed; ``n`` in the legend says how many seeds, and with 2 or 3 the band is narrow).

    Variants are the records' ``group`` values (a key, ``"tag"`` by default, or a function of the
    record). With more than ``max_per_panel`` variants they are split over several panels (same
    y axis); ``reference`` (a variant's name) is drawn, dashed and grey, in every panel for
    comparison. ``hline`` draws a horizontal line (e.g. the solved threshold). Records without a
    curve are left out (a printed line says which). Writes a PNG at ``path`` and returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = list(records)
    empty = [r for r in records if not curve_of(r)]
    if empty:
        print(f"plot_curves: left out {len(empty)} record(s) without a curve "
              f"(seed {', '.join(str(_seed_of(r)) for r in empty)})")
    groups = _grouped([r for r in records if curve_of(r)], group)
    if not groups:
        raise ValueError("no record with a curve to plot")
    if reference is not None and reference not in groups:
        raise KeyError(f"reference {reference!r} is not one of the variants {sorted(groups)}")
    others = [name for name in groups if name != reference]
    per_panel = max_per_panel - (reference is not None)
    if per_panel < 1:
        raise ValueError(f"max_per_panel must leave room for a variant besides the reference, got {max_per_panel}")
    panels = _split(others, per_panel) or [[]]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.4 * nrows), squeeze=False, sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.set_visible(False)
            continue
        drawn = ([reference] if reference is not None else []) + panels[k]
        bands = {name: seed_band(groups[name]) for name in drawn}
        markers = max(len(band[0]) for band in bands.values()) <= 12  # few evaluations: show each one
        for i, name in enumerate(drawn):
            steps, mean, low, high, _ = bands[name]
            is_ref = name == reference
            color = "0.45" if is_ref else colors[(i - (reference is not None)) % len(colors)]
            ax.plot(steps, mean, color=color, ls="--" if is_ref else "-", lw=1.6, ms=3,
                    marker="o" if markers else None, label=f"{name} (n={len(groups[name])})")
            if np.any(~np.isnan(low)):
                ax.fill_between(steps, low, high, color=color, alpha=0.15 if is_ref else 0.22,
                                lw=0)
        if hline is not None:
            ax.axhline(hline, color="k", lw=0.8, ls=":", label=hline_label or None)
        ax.set_xlabel(xlabel)
        if k % ncols == 0:
            ax.set_ylabel(ylabel)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: format_steps(int(x))))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if title:
        several = any(len(runs) > 1 for runs in groups.values())
        how = "mean over n seeds, band: 95% bootstrap interval over seeds" if several else "one seed per variant"
        fig.suptitle(f"{title}\n{how}", fontsize=10)
    fig.tight_layout()
    path = str(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def summary_table(records: Iterable[dict[str, Any]], group: str | Callable[[dict[str, Any]], str] = "tag",
                  threshold: float | None = None) -> str:
    """Markdown table, one row per variant: best and last evaluation mean per seed (from the
    curves), with ``threshold`` how many runs reached it and the first step they did, and the
    mean wall time (records' ``seconds``)."""
    head = ["run", "seeds", "best eval mean per seed", "last eval mean per seed"]
    if threshold is not None:
        head += [f"best >= {threshold:g}", f"first >= {threshold:g} at"]
    head += ["mean wall time"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in _grouped([r for r in records if curve_of(r)], group).items():
        runs = sorted(runs, key=lambda r: (_seed_of(r) is None, _seed_of(r)))
        curves = [curve_of(r) for r in runs]
        best = [max(v for _, v in c) for c in curves]
        cells = [name, ", ".join(str(_seed_of(r)) for r in runs), ", ".join(f"{b:.0f}" for b in best),
                 ", ".join(f"{c[-1][1]:.0f}" for c in curves)]
        if threshold is not None:
            first = [next((format_steps(t) for t, v in c if v >= threshold), "-") for c in curves]
            cells += [f"{sum(b >= threshold for b in best)}/{len(best)}", ", ".join(first)]
        seconds = [r["seconds"] for r in runs if "seconds" in r]
        cells += [f"{np.mean(seconds):.0f} s" if seconds else "-"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
