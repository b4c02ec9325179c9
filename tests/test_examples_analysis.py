"""The conversion and energy examples (tiny budgets, fresh processes) and snnrl_sb3.results."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, check_help, run_python
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from snnrl_sb3.results import (
    LearningCurve,
    ProgressBar,
    _split,
    planned_timesteps,
    plot_curves,
    read_records,
    save_model,
    seed_band,
    summary_table,
    write_record,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("script", ["convert_dqn.py", "energy_report.py"])
def test_examples_help(script):
    check_help(script)


def test_no_example_uses_the_removed_cli_module():
    assert not (ROOT / "snnrl_sb3" / "cli.py").exists()
    for path in (ROOT / "examples").glob("*.py"):
        source = path.read_text()
        assert "snnrl_sb3.cli" not in source and "tyro.cli(Args" in source, path.name


CONVERT = ["examples/convert_dqn.py", "--num-steps", "4", "8", "--eval-episodes", "2", "--calibration-steps", "50",
           "--no-progress-bar"]


def results_lines(out):
    return [line for line in out.splitlines() if line.startswith(("ANN return", "| 4 |", "| 8 |", "best: T="))]


def test_convert_dqn_reuses_the_ann_it_saved(tmp_path):
    ann = tmp_path / "ann"
    # 2600 steps: EvalCallback evaluates at 2500 and saves its best checkpoint as ANN_PATH/best_model.zip
    first = run_python([*CONVERT, "--total-timesteps", "2600", "--ann-path", ann, "--plot", tmp_path / "t.png"])
    assert re.search(rf"saved its best checkpoint \(evaluation mean [0-9.]+\) as {re.escape(str(ann))}/best_model.zip",
                     first)
    assert "loaded the ANN" not in first and (ann / "best_model.zip").is_file()
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG
    second = run_python([*CONVERT, "--total-timesteps", "2600", "--ann-path", ann])
    assert f"loaded the ANN from {ann}/best_model.zip" in second and "trained the ANN" not in second
    assert len(results_lines(first)) == 4 and results_lines(second) == results_lines(first)


def test_convert_dqn_keeps_the_last_model_when_no_evaluation_ran(tmp_path):
    ann = tmp_path / "ann"
    first = run_python([*CONVERT, "--total-timesteps", "300", "--ann-path", ann])
    assert f"no evaluation ran within 300 steps: saved the last model as {ann}/best_model.zip" in first
    second = run_python([*CONVERT, "--total-timesteps", "300", "--ann-path", ann])
    assert f"loaded the ANN from {ann}/best_model.zip" in second
    third = run_python([*CONVERT, "--total-timesteps", "300", "--ann-path", ann, "--retrain"])
    assert "loaded the ANN" not in third and "trained the ANN for 512 steps" in third
    assert results_lines(second) == results_lines(first) == results_lines(third)


def test_convert_dqn_with_tan2021_method(tmp_path):
    ann = tmp_path / "ann"
    out = run_python([*CONVERT, "--total-timesteps", "300", "--ann-path", ann, "--method", "tan2021"])
    assert "method tan2021: normalization=data, normalize_output=True" in out and "layer_delay=True" in out
    assert "calibration_epsilon=0.05" in out and len(results_lines(out)) == 4


def test_energy_report_example(tmp_path):
    out = run_python([ROOT / "examples" / "energy_report.py", "--total-timesteps", "600", "--observations", "20", "--raster",
               tmp_path / "r.png"], cwd=tmp_path)
    assert "energy per decision" in out and f"wrote {tmp_path / 'r.png'}" in out
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG


# --- snnrl_sb3.results

def small_dqn(seed=0):
    return DQN("MlpPolicy", "CartPole-v1", learning_starts=100, train_freq=64, gradient_steps=4, seed=seed,
               policy_kwargs=dict(net_arch=[16]))


def evaluation(curve=None, **kwargs):
    return EvalCallback(make_vec_env("CartPole-v1", n_envs=1, seed=5), n_eval_episodes=3, eval_freq=200,
                        callback_after_eval=curve, verbose=0, **kwargs)


def test_learning_curve_records_exactly_the_evaluations_evalcallback_ran(tmp_path, capsys):
    torch.set_num_threads(1)
    curve = LearningCurve(name="s0: ")
    small_dqn().learn(1000, callback=evaluation(curve, log_path=str(tmp_path)))
    logged = np.load(tmp_path / "evaluations.npz")
    assert [t for t, _, _ in curve.curve] == logged["timesteps"].tolist() == [200, 400, 600, 800, 1000]
    assert [m for _, m, _ in curve.curve] == logged["results"].mean(axis=1).tolist()
    assert [s for _, _, s in curve.curve] == logged["results"].std(axis=1).tolist()
    assert curve.best == max(logged["results"].mean(axis=1)) and curve.stop_reason is None
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("s0: eval at ")]
    assert printed[0] == f"s0: eval at 200 steps: {curve.curve[0][1]:.1f} ± {curve.curve[0][2]:.1f} " \
                         f"(best {curve.curve[0][1]:.1f})"
    assert len(printed) == 5


def test_learning_curve_stops_at_the_threshold(capsys):
    torch.set_num_threads(1)
    curve = LearningCurve(stop_at=1.0)  # every CartPole episode returns >= 1
    model = small_dqn()
    model.learn(1000, callback=evaluation(curve))
    assert model.num_timesteps == 200 and len(curve.curve) == 1
    assert curve.stop_reason == "reached 1 at 200 steps"
    assert "reached 1 at 200 steps: stopping" in capsys.readouterr().out


class DrawsFromNumpy(BaseCallback):
    """A callback that does touch the global RNG: the control that shows the test below can fail."""

    def _on_step(self):
        np.random.rand()
        return True


def parameters(model):
    return [p.detach().clone() for p in model.policy.parameters()]


def test_learning_curve_does_not_change_training():
    torch.set_num_threads(1)
    runs = {}
    for name, after_eval in (("without", None), ("with", LearningCurve(stop_at=1e9, verbose=0)),
                             ("control", DrawsFromNumpy())):
        model = small_dqn(seed=3)
        model.learn(1000, callback=evaluation(after_eval))
        runs[name] = parameters(model)
    assert all(torch.equal(a, b) for a, b in zip(runs["without"], runs["with"]))
    assert not all(torch.equal(a, b) for a, b in zip(runs["without"], runs["control"]))


def test_learning_curve_final_evaluation_outside_training():
    torch.set_num_threads(1)
    curve = LearningCurve(verbose=0)
    model = small_dqn()
    model.learn(300, callback=evaluation(curve))  # eval_freq 200: one evaluation, at 200; training ends at 320
    mean, std = curve.evaluate(model)
    assert [t for t, _, _ in curve.curve] == [200, 320] and (mean, std) == curve.curve[-1][1:]


def test_progress_bar_ends_at_the_steps_training_takes():
    torch.set_num_threads(1)
    model = small_dqn()
    bar = ProgressBar()
    model.learn(1000, callback=bar)  # train_freq 64: 16 rollouts, 1024 steps
    assert planned_timesteps(model, 1000) == 1024
    assert bar.pbar.n == bar.pbar.total == model.num_timesteps == 1024


def test_save_model_saves_where_it_says(tmp_path, capsys):
    path = save_model(small_dqn(), tmp_path / "sub" / "m")
    assert path == str(tmp_path / "sub" / "m.zip") and Path(path).is_file()
    assert capsys.readouterr().out.splitlines() == [f"saved {path}; load it with:",
                                                    "    from stable_baselines3 import DQN",
                                                    f'    model = DQN.load("{path}")']


def test_write_record_round_trip(tmp_path):
    record = dict(tag="a", seed=np.int64(2), curve=[(100, np.float32(1.5), 0.25)], seconds=np.float64(3.0))
    write_record(tmp_path / "x" / "a.json", record)
    assert read_records(tmp_path / "x") == [dict(tag="a", seed=2, curve=[[100, 1.5, 0.25]], seconds=3.0)]


def test_seed_band_carries_runs_forward_and_bootstraps_over_seeds():
    records = [dict(curve=[[10, 1.0], [20, 3.0]]), dict(curve=[[10, 3.0, 0.5], [30, 5.0, 0.5]]),
               dict(curve=[[20, 7.0]])]
    steps, mean, low, high, n = seed_band(records[:2])
    assert steps.tolist() == [10, 20, 30] and n.tolist() == [2, 2, 2]
    assert mean.tolist() == [2.0, 3.0, 4.0]  # run 1 keeps 3.0 at step 30 (its last evaluation)
    # two seeds: the bootstrap means are the one seed, the other or their mean; the 2.5/97.5% ones the extremes
    assert low.tolist() == [1.0, 3.0, 3.0] and high.tolist() == [3.0, 3.0, 5.0]
    steps, mean, low, high, n = seed_band(records)
    assert n.tolist() == [2, 3, 3] and mean.tolist() == [2.0, 13 / 3, 5.0]  # run 3 has no value before step 20
    steps, mean, low, high, n = seed_band(records[2:])
    assert mean.tolist() == [7.0] and math.isnan(low[0]) and math.isnan(high[0])


def test_panels_hold_at_most_max_per_panel_variants():
    names = [f"v{i:02d}" for i in range(13)]
    assert [len(p) for p in _split(names, 5)] == [5, 4, 4]
    assert [name for panel in _split(names, 5) for name in panel] == names
    assert _split(names[:5], 5) == [names[:5]]
    assert [len(p) for p in _split(names[:12], 4)] == [4, 4, 4]


def test_plot_curves_writes_a_png_from_records(tmp_path):
    records = [dict(tag=f"variant {v}", seed=s, curve=[[t, float(v * t + s), 0.0] for t in (100, 200, 300)])
               for v in range(7) for s in range(3)] + [dict(tag="no curve", seed=0, curve=[])]
    for i, record in enumerate(records):
        write_record(tmp_path / "runs" / f"{i}.json", record)
    path = plot_curves(read_records(tmp_path / "runs"), tmp_path / "plot" / "c.png", reference="variant 0",
                       hline=1000.0, hline_label="goal", title="test")
    assert path == str(tmp_path / "plot" / "c.png") and Path(path).read_bytes()[:8] == PNG
    with pytest.raises(KeyError):
        plot_curves(records, tmp_path / "d.png", reference="missing")


def test_recorded_cartpole_runs_are_read_as_they_are():
    records = read_records(ROOT / "examples" / "results" / "dqn_cartpole")
    assert len(records) == 30 and len({r["tag"] for r in records}) == 13
    table = summary_table(records, threshold=475)
    assert ("| ternary_neg2_atan | 0, 1, 2, 3 | 500, 500, 500, 500 | 458, 500, 500, 500 | 4/4 | "
            "32.5k, 17.5k, 32.5k, 40k | 235 s |") in table.splitlines()
    assert table == (ROOT / "examples" / "results" / "dqn_cartpole" / "table.md").read_text()


def test_recorded_td3_runs_are_read_as_they_are():
    records = read_records(ROOT / "examples" / "results" / "td3" / "halfcheetah")
    assert sorted(r["label"] for r in records) == ["ANN", "current_lif/rectangular", "current_lif/trapezoid",
                                                   "current_lif/triangular", "dynamic/rectangular"]
    steps, mean, _, _, n = seed_band([r for r in records if r["label"] == "ANN"])
    assert steps.tolist() == [5000, 10000, 15000, 20000, 25000, 30000] and n.tolist() == [1] * 6
    assert mean.tolist()[-1] == 1017.3826315
