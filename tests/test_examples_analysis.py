"""Smoke runs of the conversion and energy examples with tiny budgets."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script, *args, cwd):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_convert_dqn_example(tmp_path):
    out = run("convert_dqn.py", "--steps", "300", "--num-steps", "4", "8", "--eval-episodes", "1",
              "--calibration-steps", "50", "--no-progress-bar", "--plot", str(tmp_path / "t.png"), cwd=tmp_path)
    assert "| 8 |" in out and "best: T=" in out
    assert (tmp_path / "t.png").exists()


def test_energy_report_example(tmp_path):
    out = run("energy_report.py", "--steps", "600", "--observations", "20", "--raster", str(tmp_path / "r.png"),
              cwd=tmp_path)
    assert "energy per decision" in out and (tmp_path / "r.png").exists()


def test_examples_have_help():
    for script in ("convert_dqn.py", "energy_report.py"):
        assert "--num-steps" in run(script, "--help", cwd=EXAMPLES) or "--steps" in run(script, "--help", cwd=EXAMPLES)
