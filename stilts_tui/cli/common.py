"""What several commands share: the default results file, quiet model loading, the foreground runner and reading the results."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from stilts_tui.cli.output import output_width
from stilts_tui.domain.run import Run, runs_of
from stilts_tui.runner.options import RunnerOptions

DEFAULT_DB = "stilts-runs/results.json"
REPO = Path(__file__).resolve().parents[2]  # the clone: experiments/ sits beside stilts_tui/

# argparse's sub-command collection; its class is private, so it is named once here
Commands = argparse._SubParsersAction

def quiet_transformers() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def foreground(db: Path, name: str, runs: list, options: RunnerOptions, resume: bool = False,
               sweep_file: str | None = None, spec_path: str | None = None) -> dict[str, int]:
    """The runner in this process, with a progress display; Ctrl-C stops it cleanly. The sweep
    is written down first, like a detached one's, so that `stilts resume` continues it whatever
    ends this process (a closed terminal, a dropped SSH session, a full disk)."""
    from stilts_tui.runner.control import ensure_no_runner
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.setup import sweep_runner
    from stilts_tui.runner.sweepfile import write_sweep
    from stilts_tui.sweep.progress import SweepProgress

    files = RunnerFiles(db)
    ensure_no_runner(files)
    os.umask(0o077)  # as a detached runner (runner/__main__.py): what the sweep writes is the user's alone
    if sweep_file is None:
        sweep_file = str(write_sweep(files, name, runs, options, spec_path))
    progress = SweepProgress(len(runs))
    made = sweep_runner(db, name, runs, options, sweep_file, resume=resume, on_event=progress.on_event,
                        on_run=progress.on_run, on_notice=progress.notice)
    runner = made.runner
    print(f"{name}: {len(runs)} runs on {made.where}; results in {db}", file=sys.stderr)
    with progress:
        progress.progress.update(progress.sweep, completed=0)
        counts = runner.run()
    if runner.disk_full is not None:
        raise runner.disk_full.with_fix(runner.resume_hint())
    if runner.stop_flag:
        with contextlib.suppress(OSError):  # the terminal may be the thing that went away
            print(f"sweep stopped; `stilts resume --db {db}` continues it", file=sys.stderr)
        raise KeyboardInterrupt
    return counts


def sweep_summary(db: Path, runs: list) -> str:
    from stilts_tui.ops.finished import finished_ids, read_records
    from stilts_tui.ops.plan import counts_line

    return counts_line(runs, finished_ids(read_records(db)))


def want_colour(choice: str = "auto") -> bool:
    """Charts in colour: `color` always, `text` never, `auto` on a terminal unless NO_COLOR is
    set (https://no-color.org)."""
    if choice != "auto":
        return choice == "color"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def load_records(db: Path, spec: str | None = None, filters: list[str] | None = None) -> list[Run]:
    """The results file's runs, typed (of one spec, and filtered, when asked)."""
    from stilts_tui.analysis.filters import apply_filters, parse_filters
    from stilts_tui.store import Store

    wanted = parse_filters(filters)
    with Store(db) as store:
        runs = runs_of(store.runs())
    if spec:
        runs = [r for r in runs if r.value("spec") == spec]
    return apply_filters(runs, wanted)


def print_results(db: Path, fmt: str, runs: bool, spec: str | None = None, **kw) -> None:
    from stilts_tui.analysis.report import render_results
    from stilts_tui.analysis.validate import check_baseline, check_by

    records = load_records(db, spec, kw.pop("filters", None))
    # After a sweep (run, resume, demo) the summary is 120 wide on a terminal, as it always was;
    # piped or redirected, whole.
    kw.setdefault("width", output_width(120))
    if not runs:
        check_by(records, kw.get("by", ()))
        check_baseline(records, kw.get("baseline"))
    sys.stdout.write(render_results(records, fmt, runs, **kw))
