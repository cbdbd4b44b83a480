"""Running a spec: `stilts run`, `resume`, `status`, `stop`, `retry` and `plan`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from pathlib import Path

from stilts_tui.cli.common import DEFAULT_DB, Commands, foreground, print_results, sweep_summary
from stilts_tui.errors import StiltsError
from stilts_tui.records import RunStatus
from stilts_tui.runner.options import add_slot_arguments


def cmd_run(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import launch
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.options import options_from_args, with_executor
    from stilts_tui.sweep.placement import runs_for
    from stilts_tui.sweep.spec import load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir)
    db = Path(args.db)
    options = with_executor(options_from_args(args), spec)
    runs = runs_for(spec, db)
    summary = sweep_summary(db, runs)
    done = _finished(db)
    if not args.no_preflight:
        from stilts_tui.runner.preflight import preflight

        for warning in preflight(runs, db, options, done):  # degenerate, not failing: said, and run
            print(f"warning: {warning}", file=sys.stderr)
    if args.foreground:
        print(f"{spec.name}: {summary}", file=sys.stderr)
        counts = foreground(db, spec.name, runs, options, spec_path=str(Path(args.spec).resolve()))
        print_results(db, "table", runs=False, spec=spec.name)
        return 0 if counts["failed"] == 0 and counts["blocked"] == 0 else 1
    if runs and all(r.run_id in done for r in runs):
        # A runner with nothing to do would only replace the last sweep's state with an empty one.
        print(f"{spec.name}: {summary}\nnothing to run: every run of this spec is finished.\n"
              f"  results: stilts results --db {db}")
        return 0
    pid = launch(db, spec.name, runs, options, str(Path(args.spec).resolve()))
    print(f"{spec.name}: {summary}\n"
          f"runner started in the background (pid {pid}); it keeps going if this terminal closes.\n"
          f"  watch:   stilts status --db {db}\n"
          f"  stop:    stilts stop --all --db {db}\n"
          f"  results: stilts results --db {db}\n"
          f"  log:     {RunnerFiles(db).log}")
    return 0


def _finished(db: Path) -> set[str]:
    from stilts_tui.store import Store

    if not db.is_file():
        return set()
    with Store(db) as store:
        return {r["run_id"] for r in store.runs() if r.get("status") == RunStatus.FINISHED}


def cmd_resume(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import last_sweep, start_detached
    from stilts_tui.runner.sweepfile import read_sweep

    db = Path(args.db)
    sweep_file = last_sweep(db)
    name, runs, options = read_sweep(sweep_file)
    if args.stall_limit is not None:
        if not args.stall_limit > 0:
            raise StiltsError(f"--stall-limit must be a positive number of minutes (got {args.stall_limit})")
        from dataclasses import replace

        options = replace(options, stall_limit_s=args.stall_limit * 60)
        sweep_file = str(_rewrite_options(db, sweep_file, name, runs, options))
    if args.foreground:
        counts = foreground(db, name, runs, options, resume=True, sweep_file=sweep_file)
        print_results(db, "table", runs=False, spec=name)
        return 0 if counts["failed"] == 0 and counts["blocked"] == 0 else 1
    pid = start_detached(db, Path(sweep_file), resume=True)
    print(f"{name}: {sweep_summary(db, runs)}; runner resumed in the background (pid {pid})\n"
          f"  watch: stilts status --db {db}")
    return 0


def _rewrite_options(db: Path, sweep_file: str, name: str, runs: list, options) -> Path:
    """A resumed sweep with new runner options: a new sweep file, so the runner and any later
    resume read the same options."""
    import json as _json

    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.sweepfile import write_sweep

    spec = None
    with contextlib.suppress(OSError, ValueError):
        spec = _json.loads(Path(sweep_file).read_text(encoding="utf-8")).get("spec")
    return write_sweep(RunnerFiles(db), name, runs, options, spec)


def cmd_status(args: argparse.Namespace) -> int:
    from stilts_tui.runner.status import render_status, sweep_status

    db = Path(args.db)
    if not db.is_file():
        raise StiltsError(f"results file {db} not found", "start a sweep with stilts run SPEC, or pass --db PATH")
    st = sweep_status(db)
    if args.json:
        print(json.dumps(st, default=str))
    else:
        sys.stdout.write(render_status(st))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import stop_all, stop_run

    db = Path(args.db)
    if bool(args.run) == bool(args.all):
        raise StiltsError("say what to stop: a run id, or --all", "stilts stop RUN_ID  or  stilts stop --all")
    if args.all:
        out = stop_all(db, timeout=args.timeout)
        if out["runner"] is None and out.get("cancelled"):
            print(f"no runner on {db}; cancelled the Slurm jobs of {out['cancelled']} run(s), queued again: "
                  f"stilts resume --db {db} continues")
        elif out["runner"] is None:
            print(f"no sweep is running on {db}")
        else:
            print(f"stopped the sweep on {db} (runner pid {out['runner']}); runs in flight are queued again: "
                  f"stilts resume --db {db} continues")
        if out.get("note"):
            print(f"note: {out['note']}", file=sys.stderr)
        return 0
    status = stop_run(db, args.run, timeout=args.timeout)
    print(f"run {args.run}: {status}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import retry_run

    print(retry_run(Path(args.db), args.run, retrain=args.retrain))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from stilts_tui.runner.disk_need import sweep_disk_need
    from stilts_tui.runner.estimate import plan_estimate
    from stilts_tui.runner.options import options_from_args, with_executor
    from stilts_tui.store import Store
    from stilts_tui.sweep.expand import shadowed_settings, study_notes
    from stilts_tui.sweep.placement import runs_for
    from stilts_tui.sweep.spec import load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir)
    db = Path(args.db)
    runs = runs_for(spec, db)
    records: list[dict] = []
    if db.is_file():
        with Store(db) as store:
            records = store.runs()
    finished = {r["run_id"] for r in records if r.get("status") == RunStatus.FINISHED}
    fmt = "json" if args.json else args.format
    if args.runs:
        return _print_resolved_runs(runs, finished, fmt)
    todo = [r for r in runs if r.run_id not in finished]
    kinds = Counter("probe" if r.probe else r.kind for r in runs)
    notes = shadowed_settings(spec) + study_notes(spec)
    options = with_executor(options_from_args(args), spec, check=False)  # planning needs no cluster
    estimate = plan_estimate(todo, records, options)
    disk = sweep_disk_need(runs, db, finished, options)
    out = {"spec": spec.name, "runs": len(runs), "by_kind": dict(kinds), "done": len(runs) - len(todo),
           "to_run": len(todo),
           "estimate_device_hours": estimate.seconds / 3600 if estimate.measured else None,
           "estimate_wall_hours": estimate.seconds / 3600 / estimate.slots if estimate.measured and estimate.slots else None,
           "estimate_basis_runs": estimate.basis, "estimate_runs": estimate.measured,
           "estimate_missing": estimate.missing, "estimate_device": estimate.device, "slots_assumed": estimate.slots,
           "notes": notes,
           "disk": {"need_bytes": disk.total, "free_bytes": disk.free, "folder": str(db.parent),
                    "checkpoints": disk.checkpoints, "checkpoint_bytes": disk.checkpoint_bytes,
                    "resume_states": disk.resume_states, "resume_bytes": disk.resume_bytes,
                    "cache_bytes": disk.cache_bytes, "short": disk.short}}
    if fmt == "json":
        print(json.dumps(out))
        return 0
    print(f"{spec.name}: {len(runs)} runs (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
    print(f"  already finished: {out['done']}   to run: {len(todo)}")
    print(f"  estimate: {estimate.describe()}")
    print(f"  disk: {disk.describe()}")
    if disk.short:
        print(f"  warning: {disk.warning()}")
    for note in notes:
        print(f"  note: {note}")
    print(f"  every run's settings: stilts plan {args.spec} --runs")
    return 0


def _print_resolved_runs(runs: list, finished: set[str], fmt: str) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from stilts_tui.sweep.resolved import resolve

    rows = resolve(runs, finished)
    if fmt == "json":
        print(json.dumps([r.as_dict() for r in rows]))
        return 0
    columns = [("run", "run_id"), ("kind", "kind"), ("task", "task"), ("from", "intermediate"), ("lr", "lr"),
               ("batch", "batch_size"), ("dev", "device_batch"), ("acc", "accumulation"), ("wu", "warmup_ratio"),
               ("wu steps", "warmup_steps"), ("steps", "total_steps"), ("ep", "epochs"), ("len", "max_length"),
               ("precision", "precision"), ("optimizer", "optimizer"), ("clip", "grad_clip"), ("size", "train_size"),
               ("seed", "seed"), ("drop", "dropout"), ("head", "head_style"), ("val every", "val_interval"),
               ("max vals", "max_vals"), ("patience", "patience"), ("done", "done")]
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for title, _ in columns:
        table.add_column(title, no_wrap=True, overflow="ellipsis")
    for r in rows:
        d = r.as_dict()
        table.add_row(*(Text("—" if d[k] is None else ("✓" if d[k] is True else "" if d[k] is False else f"{d[k]:g}"
                        if isinstance(d[k], float) else str(d[k]))) for _, k in columns))  # Text: never markup
    Console(width=max(Console().width, 400)).print(table)  # one line per run, however wide
    print("wu steps / steps: int(warmup_ratio x total) from the official train sizes (run.py l. 67, 79); with "
          "validation every N steps the schedule ends at the validation after the epoch limit (jiant trainer.py "
          "l. 351-360); dev x acc: device batch and accumulation")
    return 0


def register(sub: Commands) -> None:
    """Add this module's commands to `stilts`."""
    r = sub.add_parser("run", help="run an experiment spec in the background (skips runs already finished)")
    r.add_argument("spec", help="experiment spec (TOML), e.g. experiments/demo.toml")
    r.add_argument("--data-dir", help="folder with the tasks' release files (overrides the spec's data_dir)")
    r.add_argument("--db", default=DEFAULT_DB, help=f"results file (default {DEFAULT_DB}); runs go beside it")
    r.add_argument("--foreground", action="store_true", help="run in this terminal with a progress display")
    r.add_argument("--no-preflight", action="store_true",
                   help="start without first checking that the model, the tasks' files and the disk are there")
    add_slot_arguments(r)
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("resume", help="continue the sweep on a results file whose runner stopped or died")
    rs.add_argument("--db", default=DEFAULT_DB)
    rs.add_argument("--foreground", action="store_true")
    rs.add_argument("--stall-limit", type=float, metavar="MIN", help="a new stall limit in minutes for this sweep")
    rs.set_defaults(func=cmd_resume)

    st = sub.add_parser("status", help="where the sweep stands: runs by status, what runs on each slot, ETA")
    st.add_argument("--db", default=DEFAULT_DB)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    sp = sub.add_parser("stop", help="stop one run (stilts stop RUN_ID) or the whole sweep (--all)")
    sp.add_argument("run", nargs="?")
    sp.add_argument("--all", action="store_true")
    sp.add_argument("--db", default=DEFAULT_DB)
    sp.add_argument("--timeout", type=float, default=30.0, help="seconds to wait before killing (default 30)")
    sp.set_defaults(func=cmd_stop)

    rt = sub.add_parser("retry", help="run a failed, stopped or blocked run again (in the running sweep, or a new runner)")
    rt.add_argument("run")
    rt.add_argument("--db", default=DEFAULT_DB)
    rt.add_argument("--retrain", action="store_true",
                    help="train again an intermediate whose checkpoint is gone (name it, or a target blocked by it); "
                         "the targets that waited for it run after it")
    rt.set_defaults(func=cmd_retry)

    pl = sub.add_parser("plan", help="what a spec would run: runs, already done, estimated device-hours")
    pl.add_argument("spec", help="the experiment spec (TOML), e.g. experiments/figure2.toml")
    pl.add_argument("--data-dir", help="folder with the tasks' release files (overrides the spec's data_dir)")
    pl.add_argument("--db", default=DEFAULT_DB,
                    help="the results file: finished runs are counted as done and their throughput makes the estimate "
                         "(default: %(default)s)")
    pl.add_argument("--runs", action="store_true", help="one row per run with its fully resolved settings")
    pl.add_argument("--format", choices=["table", "json"], default="table", help="table (default) or json")
    pl.add_argument("--json", action="store_true", help="the same as --format json")
    add_slot_arguments(pl)
    pl.set_defaults(func=cmd_plan)
