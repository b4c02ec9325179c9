"""Multi-seed studies of spiking agents on Optuna, with rliable statistics (extra ``studies``).

``python -m snnrl_sb3.studies run STUDY.yml [--storage URL] [--workers N]``, ``... status STUDY.yml``,
``... report STUDY.yml``; see :mod:`snnrl_sb3.studies.spec` for the study file and
:mod:`snnrl_sb3.studies.runner` for how trials are claimed, checkpointed and retried.
"""

from snnrl_sb3.studies.report import write_report
from snnrl_sb3.studies.runner import results_dir, run_worker, run_workers, study_progress, tune_worker
from snnrl_sb3.studies.spec import Cell, EvalProtocol, Study, TuneSpec, Variant, load_study, parse_study
from snnrl_sb3.studies.training import train_cell

__all__ = ["Cell", "EvalProtocol", "Study", "TuneSpec", "Variant", "load_study", "parse_study", "results_dir",
           "run_worker", "run_workers", "study_progress", "train_cell", "tune_worker", "write_report"]
