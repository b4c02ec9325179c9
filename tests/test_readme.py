"""Every command in README.md runs as written, with a tiny budget appended (the last flag wins).

The two set-up commands at the top are what CI itself runs; the usage snippet runs with its step
counts cut down. A new command in the README needs an entry in ``TINY`` (or is reported here)."""

import re
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_python

README = (ROOT / "README.md").read_text()

#: Appended to each README command: the flags that make it quick (later flags override earlier ones).
TINY = {
    "examples/dqn_cartpole.py": ["--total-timesteps", "300", "--eval-freq", "150", "--eval-episodes", "1",
                                 "--save", "{tmp}/cartpole/seed{{seed}}.zip", "--no-progress-bar"],
    "examples/dqn_minatar.py": ["--total-timesteps", "300", "--learning-starts", "100", "--eval-freq", "0",
                                "--eval-episodes", "1", "--save", "{tmp}/minatar.zip", "--no-progress-bar"],
    "examples/dqn_atari.py": ["--total-timesteps", "200", "--learning-starts", "100", "--eval-freq", "0",
                              "--eval-episodes", "1", "--num-steps", "2", "--buffer-size", "1000", "--batch-size", "8",
                              "--save", "{tmp}/atari.zip", "--no-progress-bar"],
    "examples/td3.py": ["--total-timesteps", "120", "--learning-starts", "60", "--train-freq", "20", "--eval-freq", "0",
                        "--eval-episodes", "1", "--save", "{tmp}/td3.zip", "--no-progress-bar"],
    "examples/convert_dqn.py": ["--ann-path", "{tmp}/ann", "--total-timesteps", "600", "--num-steps", "2",
                                "--calibration-steps", "50", "--eval-episodes", "1", "--plot", "{tmp}/conv.png",
                                "--no-progress-bar"],
    "examples/energy_report.py": ["--total-timesteps", "300", "--observations", "20", "--raster", "{tmp}/raster.png"],
    "-m snnrl_sb3.benchmarks.core": ["--num-steps", "2", "--rounds", "1", "--batch", "4", "--allocator", "default"],
    "-m snnrl_sb3.benchmarks.dqn": ["--rounds", "1", "--skip-atari"],
    "-m snnrl_sb3.benchmarks.td3": ["--learn-steps", "200", "--rounds", "1"],
    "-m snnrl_sb3.benchmarks.threads": ["--total-timesteps", "200"],
    "-m rl_zoo3.train": ["-n", "300", "--log-folder", "{tmp}/logs", "--eval-freq", "-1", "--hyperparams",
                         "learning_starts:100", "train_freq:64", "gradient_steps:2", "buffer_size:1000"],
    "-m rl_zoo3.enjoy": ["--folder", "{tmp}/logs", "-n", "20"],
    "-m snnrl_sb3.studies": ["--results", "{tmp}/studies"],  # the smoke study is CI-sized as shipped
    "examples/deploy_nir.py": ["--total-timesteps", "300", "--no-progress-bar"],
    "examples/ppo_cartpole.py": ["--total-timesteps", "300", "--eval-freq", "0", "--eval-episodes", "1",
                                 "--save", "{tmp}/ppo.zip", "--no-progress-bar"],
    "-m snnrl_sb3.benchmarks.ppo": ["--learn-steps", "256", "--rounds", "1", "--neurons", "lif", "--num-steps", "2"],
}
#: Optional packages a command needs (its extra); the test is skipped without them.
NEEDS = {"examples/dqn_minatar.py": "minatar", "examples/dqn_atari.py": "ale_py", "-m rl_zoo3.train": "rl_zoo3",
         "-m rl_zoo3.enjoy": "rl_zoo3", "-m snnrl_sb3.studies": "rliable"}


def readme_commands() -> list[str]:
    """The ``python ...`` lines of the README's bash blocks and inline code, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("python "):
                commands.append(line)
    commands += [" ".join(c.split()) for c in re.findall(r"`(python (?:examples/|-m )[^`]+)`", README)]
    return list(dict.fromkeys(commands))


def key_of(command: str) -> str:
    words = shlex.split(command)[1:]
    return words[0] if not words[0].startswith("-m") else f"-m {words[1]}"


COMMANDS = readme_commands()


def test_every_readme_command_has_a_tiny_budget():
    assert {key_of(c) for c in COMMANDS} <= set(TINY), sorted({key_of(c) for c in COMMANDS} - set(TINY))
    assert len(COMMANDS) >= 10


def test_readme_runs_only_ci_sized_studies():
    # the test below runs every README command as written: a real study there would train for hours
    runs = [shlex.split(c) for c in COMMANDS if key_of(c) == "-m snnrl_sb3.studies" and shlex.split(c)[3] in
            ("run", "worker")]
    assert runs and {words[4] for words in runs} == {"examples/studies/cartpole_smoke.yml"}, \
        "write the commands of the real studies as `run ... --workers 2` (or in a non-bash block)"


def test_the_first_two_commands_set_up_and_test():
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert blocks[0].strip() == 'pip install torch==2.13.0 && pip install -e ".[extra]" && python examples/dqn_cartpole.py'
    assert blocks[1].strip() == ('pip install torch==2.13.0 && pip install -e ".[test]" && '
                                 'pip install --no-deps "spikingjelly==2.0.0" "norse==1.1.0" && python -m pytest -q')


def tiny_args(command: str, tmp_path: Path) -> list[str]:
    """The command's arguments (the README's ``"$(python -c '...hyperparams/X.yml')"`` shell expansion done
    as the shell would: the packaged yml's path) with its tiny budget appended."""
    resolved = re.sub(r"\"\$\(python -c '[^']*\"(hyperparams/\w+\.yml)\"[^']*'\)\"",
                      lambda m: shlex.quote(str(ROOT / "snnrl_sb3" / m.group(1))), command)
    return shlex.split(resolved)[1:] + [t.format(tmp=tmp_path) for t in TINY[key_of(command)]]


@pytest.fixture
def scratch(tmp_path):
    """A working directory holding a copy of examples/, so that commands writing to examples/results/... write there."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


@pytest.mark.parametrize("command", [c for c in COMMANDS if key_of(c) != "-m rl_zoo3.enjoy"])
def test_readme_command_runs(command, scratch):
    module = NEEDS.get(key_of(command))
    if module:
        pytest.importorskip(module)
    run_python(tiny_args(command, scratch), cwd=scratch, timeout=600)


def test_readme_zoo_train_then_enjoy(scratch):
    train = next(c for c in COMMANDS if key_of(c) == "-m rl_zoo3.train" and "--algo dqn" in c)
    enjoy = next(c for c in COMMANDS if key_of(c) == "-m rl_zoo3.enjoy")
    run_python(tiny_args(train, scratch), cwd=scratch)
    out = run_python(tiny_args(enjoy, scratch), cwd=scratch)
    assert "Loading" in out and "Mean reward" in out


def test_usage_snippet_runs_with_small_budgets(tmp_path):
    (snippet,) = re.findall(r"## Usage\n\n```python\n(.*?)```", README, re.S)
    small = snippet.replace("50_000", "300").replace("20_000", "200").replace('"snn_dqn"', repr(str(tmp_path / "m")))
    assert small != snippet
    script = "import torch\ntorch.set_num_threads(1)\n" + small
    run_python(["-c", script], cwd=tmp_path, timeout=600)
    assert Path(tmp_path / "m.zip").exists()
