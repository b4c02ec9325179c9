r"""A study's report: learning curves, final/best tables, rliable aggregates, claims, throughput.

Everything is computed from the runs' ``result.json`` files (:func:`collect_results`), never from
the Optuna storage, so a report can be made on any machine holding the results folder.

Statistics follow Agarwal et al. 2021 (*Deep RL at the Edge of the Statistical Precipice*) with
their library ``rliable``:

* a run's score is its final evaluation mean; it is normalised per environment as
  ``(score - random) / (baseline - random)``, ``baseline`` being the mean final score of the
  study's baseline variant (its ANN, normally) on that environment and ``random`` the study file's
  ``random_scores`` (default 0), so 1.0 means "as good as the baseline";
* IQM, mean, median and optimality gap (to 1.0) of the normalised scores, each with a 95%
  stratified-bootstrap confidence interval (``reps`` resamples, fixed generator);
* the probability of improvement ``P(X > Y)`` of each claim's variants on the raw scores, with its
  95% CI; a claim "X beats Y" is **supported** when the CI lies above 0.5, **refuted** when it
  lies below, and **undecided** otherwise; a claim "X matches Y" (``relation: matches``) is
  supported when the whole CI lies within ``0.5 ± margin`` and refuted when it lies outside it;
* a performance profile (fraction of runs above each normalised score).
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snnrl_sb3.results import format_steps, plot_curves
from snnrl_sb3.studies.spec import Study
from snnrl_sb3.studies.training import read_result

__all__ = ["collect_results", "throughput", "diagnostics_summary", "score_matrices", "aggregate_scores",
           "decide_claims", "write_report", "MIN_RUNS_FOR_VERDICT"]


def collect_results(study: Study, out: Path) -> list[dict[str, Any]]:
    """The finished runs of ``study`` (``result.json`` of the current definition) under ``out``."""
    records = []
    for cell in study.cells():
        record = read_result(out / cell.key, cell.digest)
        if record is not None:
            records.append(record)
    return records


def throughput(record: dict[str, Any]) -> float:
    """A run's training env-steps per CPU-second (per wall-clock second for records written before
    CPU time was measured)."""
    return float(record.get("steps_per_cpu_second", record["steps_per_second"]))


def score_matrices(study: Study, records: Sequence[dict[str, Any]], key: str = "final"
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Per variant: raw and normalised ``[runs, envs]`` score arrays over the seeds complete on
    every environment (rliable's layout), and the environments in column order."""
    envs = list(study.envs)
    by: dict[tuple[str, str, int], float] = {(r["variant"], r["env_id"], r["seed"]): float(r[key]) for r in records}
    raw: dict[str, np.ndarray] = {}
    for variant in study.variants:
        seeds = [s for s in study.seeds if all((variant, e, s) in by for e in envs)]
        if seeds:
            raw[variant] = np.array([[by[(variant, e, s)] for e in envs] for s in seeds])
    normalised: dict[str, np.ndarray] = {}
    if study.baseline is not None and study.baseline in raw:
        random = np.array([study.random_scores.get(e, 0.0) for e in envs])
        base = raw[study.baseline].mean(axis=0)
        span = base - random
        if np.all(np.abs(span) > 1e-12):
            normalised = {v: (s - random) / span for v, s in raw.items()}
    return raw, normalised, envs


@contextlib.contextmanager
def _bootstrap_rng(seed: int) -> Iterator[None]:
    """rliable's bootstraps (through ``arch``) draw from NumPy's global generator whatever ``random_state``
    says: seed it for a reproducible report, and restore it afterwards (the report changes no state)."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch's random_state deprecation, inside rliable
            yield
    finally:
        np.random.set_state(state)


def aggregate_scores(normalised: dict[str, np.ndarray], reps: int = 2000, seed: int = 0
                     ) -> dict[str, dict[str, tuple[float, float, float]]]:
    """``{variant: {metric: (point, low, high)}}`` for IQM, mean, median and optimality gap, 95%
    stratified-bootstrap CIs (rliable)."""
    from rliable import library as rly
    from rliable import metrics

    def aggregates(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x), metrics.aggregate_median(x),
                         metrics.aggregate_optimality_gap(x, 1.0)])

    if not normalised:
        return {}
    with _bootstrap_rng(seed):
        points, cis = rly.get_interval_estimates(normalised, aggregates, reps=reps,
                                                random_state=np.random.RandomState(seed))
    names = ["IQM", "mean", "median", "optimality gap"]
    return {v: {m: (float(points[v][i]), float(cis[v][0, i]), float(cis[v][1, i])) for i, m in enumerate(names)}
            for v in normalised}


#: Runs per variant (on every environment) a claim's verdict needs: with fewer, the stratified bootstrap
#: resamples one or two scores and its CI says nothing (one run each gives P = 0 or 1 with a zero-width CI).
MIN_RUNS_FOR_VERDICT = 3


def decide_claims(study: Study, raw: dict[str, np.ndarray], reps: int = 2000, seed: int = 0
                  ) -> list[dict[str, Any]]:
    """Each claim of the study with ``P(better > worse)``, its 95% CI and the verdict."""
    from rliable import library as rly
    from rliable import metrics

    out = []
    for claim in study.claims:
        better, worse = claim["better"], claim["worse"]
        row: dict[str, Any] = {**claim, "p": math.nan, "low": math.nan, "high": math.nan,
                               "verdict": "undecided (no complete runs)"}
        if better in raw and worse in raw:
            pair = {"pair": (raw[better], raw[worse])}
            with _bootstrap_rng(seed):
                points, cis = rly.get_interval_estimates(pair, metrics.probability_of_improvement, reps=reps,
                                                        random_state=np.random.RandomState(seed))
            p, low, high = float(np.squeeze(points["pair"])), *(float(x) for x in np.ravel(cis["pair"]))
            if claim["relation"] == "beats":
                verdict = "supported" if low > 0.5 else "refuted" if high < 0.5 else "undecided"
            else:  # matches: the whole CI within 0.5 ± margin; refuted when the whole CI is outside it
                m = claim["margin"]
                verdict = ("supported" if 0.5 - m <= low and high <= 0.5 + m else
                           "refuted" if high < 0.5 - m or low > 0.5 + m else "undecided")
            fewest = min(len(raw[better]), len(raw[worse]))
            if fewest < MIN_RUNS_FOR_VERDICT:  # a bootstrap over one or two runs has a degenerate CI
                verdict = f"undecided ({fewest} run{'s' * (fewest != 1)}; a verdict needs {MIN_RUNS_FOR_VERDICT})"
            row.update(p=p, low=low, high=high, verdict=verdict,
                       runs=f"{len(raw[better])} vs {len(raw[worse])} per env")
        out.append(row)
    return out


def _performance_profile(normalised: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library as rly

    top = max(1.5, max(float(np.max(s)) for s in normalised.values()))
    taus = np.linspace(0.0, top, 101)
    with _bootstrap_rng(0):
        profiles, cis = rly.create_performance_profile(normalised, taus, reps=500)
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, profile in profiles.items():
        line, = ax.plot(taus, profile, label=name)
        ax.fill_between(taus, cis[name][0], cis[name][1], color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("normalised score τ (1 = baseline)")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: The neuron-layer diagnostics the report shows, by the logged key's suffix: (plot title, table
#: column). Besides them it shows the per-layer gradient norms, keys ``grad/...``.
_LAYER_DIAGNOSTICS = {"/neg_thr": ("θ⁻", "θ⁻"), "/rate": ("spike rate", "spike rate"),
                      "/neg_rate": ("negative-spike rate", "−1 rate")}


def _diagnostic_names(key: str) -> tuple[str, str] | None:
    """(plot title, table column) of a logged diagnostic key; ``None`` for keys the report leaves out."""
    if key.startswith("grad/"):
        return "gradient norm", "∇"
    return next((names for suffix, names in _LAYER_DIAGNOSTICS.items() if key.endswith(suffix)), None)


def _diagnostics_plot(records: Sequence[dict[str, Any]], path: Path) -> bool:
    """Mean over seeds of each diagnostic against steps, one panel per diagnostic key, one line
    per variant; ``False`` (nothing written) when the runs logged none."""
    series: dict[str, dict[str, dict[int, list[float]]]] = {}
    titles: dict[str, str] = {}
    for record in records:
        for point in record.get("diagnostics") or []:
            for key, value in point.items():
                names = _diagnostic_names(key)
                if names is not None and np.isfinite(value):
                    titles[key] = names[0]
                    by_step = series.setdefault(key, {}).setdefault(record["variant"], {})
                    by_step.setdefault(int(point["steps"]), []).append(float(value))
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(series)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    variants = sorted({v for by_variant in series.values() for v in by_variant})
    colors = {v: palette[i % len(palette)] for i, v in enumerate(variants)}  # one colour per variant everywhere
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for variant, by_step in sorted(series[key].items()):
            steps = sorted(by_step)
            ax.plot(steps, [np.mean(by_step[s]) for s in steps], label=variant, lw=1.3, color=colors[variant])
        ax.set_title(f"{titles[key]}: {key}", fontsize=7)
        if key.startswith("grad/"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def diagnostics_summary(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per variant, the mean over its runs of: each gradient norm's median over the evaluations after
    step 0 (one update's norm is noisy; the median over training is what a collapse would lower), and
    each θ⁻, spike rate and negative-spike rate at the last evaluation. Keys as logged."""
    per_run: dict[str, dict[str, list[float]]] = {}
    for record in records:
        points = [p for p in record.get("diagnostics") or [] if p.get("steps", 0) > 0]
        if not points:
            continue
        values = per_run.setdefault(record["variant"], {})
        for key in sorted({k for p in points for k in p}):
            if key.startswith("grad/"):
                series = [float(p[key]) for p in points if key in p and np.isfinite(p[key])]
                value = float(np.median(series)) if series else math.nan
            elif _diagnostic_names(key) is not None:
                value = float(points[-1].get(key, math.nan))
            else:
                continue
            values.setdefault(key, []).append(value)
    return {variant: {key: float(np.mean(v)) for key, v in values.items()} for variant, values in per_run.items()}


def _diagnostics_table(summary: dict[str, dict[str, float]], labels: dict[str, str]) -> str:
    keys = sorted({k for values in summary.values() for k in values})

    def binary(key: str) -> bool:  # a layer with no θ⁻ that never spiked −1: a binary neuron's column of 0s
        layer = key.removesuffix("/neg_rate")
        return (key.endswith("/neg_rate") and all(f"{layer}/neg_thr" not in v for v in summary.values())
                and all(v.get(key, 0.0) == 0.0 for v in summary.values()))

    columns = {k: names[1] for k in keys if not binary(k) and (names := _diagnostic_names(k)) is not None}
    keys = list(columns)

    def head(key: str) -> str:
        name = key.split("/", 1)[1]
        if key.startswith("grad/"):  # per layer, median over training
            return f"{columns[key]} {name} (median)"
        return f"{columns[key]} {name.rsplit('/', 1)[0]} (last)"  # per neuron layer, last evaluation

    rows = [[labels.get(v, v), *(f"{values[k]:.3g}" if k in values else "–" for k in keys)]
            for v, values in summary.items()]
    return _table(["variant", *map(head, keys)], rows)


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"


def write_report(study: Study, out: Path, progress: dict[str, dict[str, int]] | None = None,
                 reps: int = 2000) -> Path:
    """Write ``report.md``, ``curves_<env>.png`` and ``profile.png`` (when normalised scores exist)
    and ``summary.json`` into ``out``; returns the Markdown file's path."""
    records = collect_results(study, out)
    lines = [f"# Study `{study.name}`", ""]
    if study.description:
        lines += [study.description.strip(), ""]
    budgets = {env: study.cell(next(iter(study.variants)), env, study.seeds[0]).budget for env in study.envs}
    budget_text = (f"{format_steps(study.budget)} environment steps per run" if len(set(budgets.values())) == 1 else
                   "environment steps per run: " + ", ".join(f"{format_steps(b)} on {e}" for e, b in budgets.items()))
    lines += [f"{study.algo.upper()}, {budget_text}, evaluation every "
              f"{format_steps(study.eval.freq)} steps over {study.eval.episodes} episodes "
              f"({'greedy' if study.eval.deterministic else 'stochastic'}); seeds {list(study.seeds)}; "
              f"{len(records)} of {len(study.cells())} runs finished, "
              f"{sum(r.get('wall_seconds', 0.0) for r in records) / 3600:.2f} CPU-process hours in all "
              f"(wall time of the finished runs, evaluations included).", ""]
    if progress is not None:
        lines += ["## Progress", "", _table(["variant", *next(iter(progress.values())).keys()],
                                            [[v, *map(str, row.values())] for v, row in progress.items()]), ""]
    summary: dict[str, Any] = {"study": study.name, "runs": len(records), "of": len(study.cells())}
    if not records:
        lines.append("No run has finished yet.")
        path = out / "report.md"
        path.write_text("\n".join(lines) + "\n")
        return path
    lines += ["## Final and best evaluation returns", "",
              "Mean over seeds ± standard deviation (n = finished seeds); env-steps/s: median over seeds, per "
              "CPU-second of training (evaluation and checkpoint time excluded; runs recorded before CPU "
              "time was measured: per wall-clock second).", ""]
    rows = []
    for env in study.envs:
        for variant, v in study.variants.items():
            runs = [r for r in records if r["env_id"] == env and r["variant"] == variant]
            if not runs:
                continue
            final = np.array([r["final"] for r in runs])
            best = np.array([r["best"] for r in runs])
            speed = np.median([throughput(r) for r in runs])  # robust to one disturbed run
            rows.append([env, v.label, str(len(runs)), f"{final.mean():.1f} ± {final.std():.1f}",
                         f"{best.mean():.1f} ± {best.std():.1f}", f"{speed:.0f}"])
    lines += [_table(["env", "variant", "n", "final", "best", "env-steps/s"], rows), ""]
    for env in study.envs:
        env_records = [r for r in records if r["env_id"] == env]
        if env_records:
            name = f"curves_{env.replace('/', '-')}.png"
            plot_curves(env_records, out / name, group="variant", title=f"{study.name}: {env}",
                        reference=study.baseline if any(r["variant"] == study.baseline for r in env_records)
                        else None)
            lines += [f"![{env}]({name})", ""]
    for env in study.envs:
        name = f"diagnostics_{env.replace('/', '-')}.png"
        if _diagnostics_plot([r for r in records if r["env_id"] == env], out / name):
            lines += [f"Diagnostics on {env} (mean over seeds, measured at each evaluation on 256 observations "
                      f"of the replay buffer or the current rollout; gradient norms of the last update before "
                      f"it):", "",
                      f"![{env} diagnostics]({name})", ""]
            table = diagnostics_summary([r for r in records if r["env_id"] == env])
            summary.setdefault("diagnostics", {})[env] = table
            lines += ["Mean over seeds: each gradient norm's median over the evaluations after step 0; θ⁻, the "
                      "spike rate (±1 spikes per neuron and step) and the rate of −1 spikes at the last "
                      "evaluation (−1 rates are left out for layers without θ⁻ that never spiked −1).", "",
                      _diagnostics_table(table, {k: v.label for k, v in study.variants.items()}), ""]
    raw, normalised, envs = score_matrices(study, records)
    aggregates = aggregate_scores(normalised, reps=reps)
    if aggregates:
        lines += [f"## Aggregates (normalised to `{study.baseline}`, 95% stratified-bootstrap CIs, rliable)", "",
                  f"Score = final evaluation; 1.0 = the mean final score of `{study.baseline}` on each env; "
                  f"envs: {', '.join(envs)}.", ""]
        metric_names = list(next(iter(aggregates.values())))
        lines += [_table(["variant", "runs", *metric_names],
                         [[study.variants[v].label, str(len(normalised[v])),
                           *(f"{p:.3f} [{lo:.3f}, {hi:.3f}]" for p, lo, hi in m.values())]
                          for v, m in aggregates.items()]), ""]
        _performance_profile(normalised, out / "profile.png")
        lines += ["![performance profile](profile.png)", ""]
    claims = decide_claims(study, raw, reps=reps)
    if claims:
        lines += ["## Claims", "", "P(X > Y): probability that a run of X scores higher than a run of Y on the same "
                  "environment (raw final scores), 95% CI. \"X beats Y\": supported if the CI is above 0.5, refuted if "
                  "below; \"X matches Y\": supported if the CI lies within 0.5 ± margin, refuted if outside.", ""]
        rows = [[c["name"], c["better"], c["relation"] + (f" (±{c['margin']:g})" if c["relation"] == "matches" else ""),
                 c["worse"], f"{c['p']:.2f} [{c['low']:.2f}, {c['high']:.2f}]", f"**{c['verdict']}**"] for c in claims]
        lines += [_table(["claim", "X", "relation", "Y", "P(X > Y) [95% CI]", "verdict"], rows), ""]
    summary.update(aggregates={v: {m: list(x) for m, x in ms.items()} for v, ms in aggregates.items()},
                   claims=claims, raw={v: s.tolist() for v, s in raw.items()}, envs=envs)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=True))
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
