"""`stilts demo`: the offline demo, a small real STILTs experiment on CPU."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stilts_tui.cli.common import (
    REPO,
    Commands,
    foreground,
    load_records,
    print_results,
    sweep_summary,
    want_colour,
)
from stilts_tui.errors import StiltsError
from stilts_tui.runner.options import RunnerOptions


def cmd_demo(args: argparse.Namespace) -> int:
    from stilts_tui.data import demo
    from stilts_tui.sweep.spec import load_spec, task_settings

    if args.data_dir:  # check before building anything
        from stilts_tui.tasks import get_task, load_examples

        try:
            load_examples(get_task("rte"), "train", args.data_dir)
        except StiltsError as exc:
            raise StiltsError(f"--data-dir {args.data_dir} has no readable RTE files: {exc.problem}",
                              "point it at a folder holding RTE/train.tsv and RTE/dev.tsv (GLUE format)") from None
    workdir = Path(args.workdir)
    generated = workdir / "data"
    demo.build(generated)
    spec_path = REPO / "experiments" / "demo.toml"
    if not spec_path.is_file():
        raise StiltsError(f"demo spec {spec_path} not found", "run the demo from a clone of the repository (make demo)")
    spec = load_spec(spec_path, data_dir=str(generated))
    if args.data_dir:
        spec.targets = ["rte"]
        spec.tasks["rte"] = task_settings({"data_dir": str(Path(args.data_dir).resolve()), "train_size": 512, "epochs": 2},
                                          "stilts demo --data-dir")
        spec.name = "demo-rte"
    print(f"demo: {'real RTE' if args.data_dir else 'generated demo_acceptability'} as the target; "
          f"generated data in {generated}", file=sys.stderr)
    db = workdir / "results.json"
    from stilts_tui.sweep.placement import runs_for

    runs = runs_for(spec, db)
    print(f"{spec.name}: {sweep_summary(db, runs)}", file=sys.stderr)
    counts = foreground(db, spec.name, runs, RunnerOptions(slots=args.slots, threads=args.threads))
    print_results(db, "table", runs=False, spec=spec.name)
    from stilts_tui.analysis.report import violins_for

    target = "rte" if args.data_dir else "demo_acceptability"
    print()
    sys.stdout.write(violins_for(load_records(db, spec.name), target, color=want_colour()))
    return 0 if counts["failed"] == 0 else 1


def register(sub: Commands) -> None:
    """Add this module's commands to `stilts`."""
    dm = sub.add_parser("demo", help="the offline demo: a small real STILTs experiment on CPU")
    dm.add_argument("--data-dir", help="a folder with real RTE files: use RTE as the target")
    dm.add_argument("--workdir", default="stilts-runs/demo")
    dm.add_argument("--slots", type=int, help="runs at once (default: one per core)")
    dm.add_argument("--threads", type=int, help="threads per run (default 1)")
    dm.set_defaults(func=cmd_demo)
