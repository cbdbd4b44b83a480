"""Running a spec: `stilts run`, `resume`, `status`, `stop`, `retry`, `recover` and `plan`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from stilts_tui.cli.common import DEFAULT_DB, Commands, foreground, print_results, sweep_summary
from stilts_tui.cli.output import output_console
from stilts_tui.errors import StiltsError
from stilts_tui.runner.options import add_slot_arguments


def cmd_run(args: argparse.Namespace) -> int:
    from stilts_tui.ops.launch import prepare_launch, start
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.options import options_from_args
    from stilts_tui.sweep.spec import load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir)
    db = Path(args.db)
    launch = prepare_launch(spec, db, options_from_args(args), args.spec, check=not args.no_preflight)
    plan = launch.plan
    for warning in launch.warnings:  # degenerate, not failing: said, and run
        print(f"warning: {warning}", file=sys.stderr)
    if launch.nothing_to_run():
        # Foreground or not, a runner with nothing to do would only replace the last sweep's state.
        print(f"{spec.name}: {plan.summary()}\nnothing to run: every run of this spec is finished.\n"
              f"  results: stilts results --db {db}")
        if args.foreground:
            print_results(db, "table", runs=False, spec=spec.name)
        return 0
    if args.foreground:
        print(f"{spec.name}: {plan.summary()}", file=sys.stderr)
        began = time.monotonic()
        counts = foreground(db, spec.name, plan.runs, plan.options, spec_path=launch.spec_path)
        print_results(db, "table", runs=False, spec=spec.name)
        print(_ended(db, spec.name, plan.runs, time.monotonic() - began))
        return 0 if counts["failed"] == 0 and counts["blocked"] == 0 else 1
    pid = start(launch)
    print(f"{spec.name}: {plan.summary()}\n"
          f"runner started in the background (pid {pid}); it keeps going if this terminal closes.\n"
          f"  watch:   stilts status --db {db}\n"
          f"  stop:    stilts stop --all --db {db}\n"
          f"  results: stilts results --db {db}\n"
          f"  log:     {RunnerFiles(db).log}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from stilts_tui.ops.resume import prepare_resume, start_resume

    db = Path(args.db)
    resume = prepare_resume(db, args.stall_limit)
    if args.foreground:
        began = time.monotonic()
        counts = foreground(db, resume.name, resume.runs, resume.options, resume=True, sweep_file=resume.sweep_file)
        print_results(db, "table", runs=False, spec=resume.name)
        print(_ended(db, resume.name, resume.runs, time.monotonic() - began))
        return 0 if counts["failed"] == 0 and counts["blocked"] == 0 else 1
    pid = start_resume(resume)
    print(f"{resume.name}: {sweep_summary(db, resume.runs)}; runner resumed in the background (pid {pid})\n"
          f"  watch: stilts status --db {db}")
    return 0


def _ended(db: Path, name: str, runs: list, wall_s: float) -> str:
    """The summary of a foreground sweep that ended: its runs' outcomes as the results file has them."""
    from stilts_tui.domain.run import runs_of
    from stilts_tui.ops.finished import read_records
    from stilts_tui.runner.status import ended_summary

    ids = {r.run_id for r in runs}
    return ended_summary(db, name, [r for r in runs_of(read_records(db)) if r.run_id in ids], wall_s)


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
    from stilts_tui.ops.control import stop_all, stop_run

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
    from stilts_tui.ops.control import retry_run

    print(retry_run(Path(args.db), args.run, retrain=args.retrain))
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from stilts_tui.ops.recover import recover

    db = Path(args.db)
    got = recover(db, Path(args.out) if args.out else None)
    by_status = ", ".join(f"{got.counts[s]} {s}" for s in sorted(got.counts))
    print(f"recovered {got.runs} runs of {db} into {got.out} ({by_status}), from {got.sweep_files} sweep file(s) "
          f"and {got.run_folders} run folder(s)")
    for what in got.unreadable:
        print(f"warning: skipped {what}", file=sys.stderr)
    print(f"{db} is kept as it was. To use the rebuilt file:\n"
          f"  in its place:  mv {db} {db}.damaged && mv {got.out} {db}\n"
          f"  or as it is:   stilts results --db {got.out}\n"
          f"  continue:      stilts resume --db {got.out}   (runs queued or cut short run; finished ones are kept)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from stilts_tui.ops.plan import plan_spec
    from stilts_tui.runner.options import options_from_args
    from stilts_tui.runner.rough_estimate import rough_estimate
    from stilts_tui.sweep.spec import load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir)
    db = Path(args.db)
    plan = plan_spec(spec, db, options_from_args(args))
    fmt = "json" if args.json else args.format
    if args.runs:
        return _print_resolved_runs(plan.runs, plan.finished, fmt)
    todo, kinds, notes = plan.todo, plan.kinds, plan.notes
    estimate, disk = plan.estimate(), plan.disk()
    out = {"spec": spec.name, "runs": len(plan.runs), "by_kind": dict(kinds), "done": plan.done,
           "to_run": len(todo),
           "estimate_device_hours": estimate.seconds / 3600 if estimate.measured else None,
           "estimate_wall_hours": estimate.seconds / 3600 / estimate.slots if estimate.measured and estimate.slots else None,
           "estimate_basis_runs": estimate.basis, "estimate_runs": estimate.measured,
           "estimate_missing": estimate.missing, "estimate_device": estimate.device, "slots_assumed": estimate.slots,
           "rough_wall_hours": (r.seconds / 3600 if (r := rough_estimate(todo)) and not estimate.measured else None),
           "notes": notes,
           "disk": {"need_bytes": disk.total, "free_bytes": disk.free, "folder": str(db.parent),
                    "checkpoints": disk.checkpoints, "checkpoint_bytes": disk.checkpoint_bytes,
                    "resume_states": disk.resume_states, "resume_bytes": disk.resume_bytes,
                    "cache_bytes": disk.cache_bytes, "short": disk.short}}
    if fmt == "json":
        print(json.dumps(out))
        return 0
    print(f"{spec.name}: {len(plan.runs)} runs (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
    print(f"  already finished: {out['done']}   to run: {len(todo)}")
    print(f"  estimate: {estimate.describe()}")
    rough = rough_estimate(todo) if not estimate.measured and todo else None
    if rough is not None:  # nothing measured yet: the benchmark figure, said as one
        print(f"  {rough.describe()}")
    print(f"  disk: {disk.describe()}")
    if disk.short:
        print(f"  warning: {disk.warning()}")
    if plan.data_problem():  # as the Plan screen says it, with what to fetch
        print(f"  warning: {_missing_data(spec)}")
    for note in notes:
        print(f"  note: {note}")
    print(f"  every run's settings: stilts plan {args.spec} --runs")
    return 0


def _missing_data(spec) -> str:
    """The spec's data folder is missing (a fresh clone has none): said once, with the folder each
    of its tasks reads there (README.md, "Tasks and data")."""
    from stilts_tui.tasks import get_task

    folders = []
    for name in dict.fromkeys([*spec.intermediates, *spec.targets, *spec.probes]):
        try:
            task = get_task(name)
        except StiltsError:  # `none`, or a task the spec's checks already named
            continue
        if not task.own_data:
            folders.append(f"{task.dir_names[0] if task.dir_names else task.name}/")
    shown = ", ".join(folders[:12]) + (f" and {len(folders) - 12} more" if len(folders) > 12 else "")
    return (f"data dir {spec.data_dir} does not exist, so no run can start. Fetch the tasks' official release "
            f"files into it, one folder per task ({shown}), as README.md's \"Tasks and data\" table lists, or "
            "pass --data-dir DIR")


def _print_resolved_runs(runs: list, finished: set[str], fmt: str) -> int:
    from rich.table import Table
    from rich.text import Text

    from stilts_tui.sweep.resolved import COLUMNS, resolve

    rows = resolve(runs, finished)
    if fmt == "json":
        print(json.dumps(rows))
        return 0
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for column in COLUMNS:
        table.add_column(column.title, no_wrap=True, overflow="ellipsis")
    for d in rows:
        table.add_row(*(Text("—" if v is None else ("✓" if v is True else "" if v is False else f"{v:g}"
                        if isinstance(v, float) else str(v))) for v in d.values()))  # Text: never markup
    output_console(min_width=400).print(table)  # one line per run, however wide; piped, nothing cut
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

    rc = sub.add_parser("recover", help="rebuild a damaged results file from its run folders and sweep files, "
                                         "into a new file (the damaged one is kept)")
    rc.add_argument("--db", default=DEFAULT_DB, help=f"the damaged results file (default {DEFAULT_DB})")
    rc.add_argument("--out", metavar="NEW", help="the new results file (default: <db stem>.recovered.json beside it)")
    rc.set_defaults(func=cmd_recover)

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
