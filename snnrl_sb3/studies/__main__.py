"""``python -m snnrl_sb3.studies {run,status,report,worker} STUDY.yml``: see :mod:`snnrl_sb3.studies`."""

from __future__ import annotations

import argparse
import sys

from snnrl_sb3.studies.report import write_report
from snnrl_sb3.studies.runner import results_dir, run_worker, run_workers, select_cells, study_progress, tune_worker
from snnrl_sb3.studies.spec import load_study


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snnrl_sb3.studies", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [("run", "run the study's trials (resumes; start it on several machines to share one study)"),
                       ("worker", "one worker process (what `run --workers N` starts N of)"),
                       ("status", "progress per variant"),
                       ("report", "curves, tables, rliable aggregates and claims (report.md + PNGs)")]:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("study", help="the study file (YAML)")
        sub.add_argument("--storage", default=None,
                         help="Optuna storage: an RDB URL (postgresql://..., sqlite:///...) or a journal file "
                              "*.log; default: optuna.log in the results folder")
        sub.add_argument("--results", default=None,
                         help="root of the results folders (default: results/ beside the study file)")
        if name in ("run", "worker"):
            sub.add_argument("--workers", type=int, default=1, help="worker processes on this machine (run only)")
            sub.add_argument("--threads", type=int, default=1, help="torch threads per worker")
            sub.add_argument("--device", default="auto", help="torch device of the models")
            sub.add_argument("--verbose", type=int, default=1, help="0: quiet; 1: one line per evaluation")
            sub.add_argument("--variants", default=None, type=lambda text: text.split(","),
                             help="comma-separated variant names: work only on their runs (default: all)")
            sub.add_argument("--tune", action="store_true", help="run the study file's `tune` section (TPE search)")
            sub.add_argument("--no-wait", action="store_true",
                             help="exit when no trial is waiting, instead of waiting for the running ones")
            sub.add_argument("--no-report", action="store_true", help="run: do not write the report at the end")
        if name == "report":
            sub.add_argument("--reps", type=int, default=2000, help="bootstrap resamples of the confidence intervals")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    study = load_study(args.study)
    out = results_dir(study, args.results)
    if args.command in ("run", "worker"):
        if args.workers < 1:
            raise SystemExit(f"--workers must be >= 1, got {args.workers}")
        if args.variants is not None:
            try:
                select_cells(study, args.variants)
            except ValueError as error:
                raise SystemExit(f"--{error}") from None
        if args.tune:
            if args.variants is not None:
                raise SystemExit("--variants does not apply to --tune (the tune section names its one variant)")
            best = tune_worker(study, storage=args.storage, root=args.results, device=args.device,
                               threads=args.threads, verbose=args.verbose).best_trial
            print(f"best tune trial {best.number}: {best.value:.2f} with {best.params}")
            return 0
        if args.command == "run" and args.workers > 1:
            failed = run_workers(args.study, args.workers, storage=args.storage, root=args.results,
                                 device=args.device, threads=args.threads, verbose=args.verbose, variants=args.variants)
        else:
            run_worker(study, storage=args.storage, root=args.results, device=args.device, threads=args.threads,
                       verbose=args.verbose, wait=not args.no_wait, variants=args.variants)
            failed = 0
        if args.command == "run" and not args.no_report:
            print(f"wrote {write_report(study, out, study_progress(study, storage=args.storage, root=args.results))}")
        return 1 if failed else 0
    if args.command == "status":
        progress = study_progress(study, storage=args.storage, root=args.results)
        states = list(next(iter(progress.values())))
        print(f"{'variant':<24}" + "".join(f"{s:>10}" for s in states))
        for variant, row in progress.items():
            print(f"{variant:<24}" + "".join(f"{row[s]:>10}" for s in states))
        return 0
    progress = study_progress(study, storage=args.storage, root=args.results)
    print(f"wrote {write_report(study, out, progress, reps=args.reps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
