"""`python -m stilts_tui.runner --db DB --sweep SWEEP.json [--resume]`: the runner process.
`stilts run` starts it detached (own session, output to DB's runner log); it can also be run
in the foreground. It listens on nothing: see files.py for its control files."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from stilts_tui.errors import StiltsError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stilts_tui.runner")
    p.add_argument("--db", required=True)
    p.add_argument("--sweep", required=True)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    os.umask(0o077)  # everything the runner writes is the user's alone
    from stilts_tui.runner.setup import sweep_runner
    from stilts_tui.runner.sweepfile import read_sweep
    from stilts_tui.sweep.expand import describe

    def log(msg: str) -> None:
        with contextlib.suppress(OSError):  # the log's disk may be the one that is full
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", flush=True)

    def on_run(cfg, rec) -> None:
        score = f"{rec.get('metric')} {rec['score']:.4f}" if rec.get("status") == "finished" else \
            f"{rec.get('reason')}: {rec.get('message') or ''}"
        log(f"{rec.get('status', '?'):8} {cfg.run_id} {describe(cfg)} {score}")

    try:
        name, runs, options = read_sweep(args.sweep)
        made = sweep_runner(Path(args.db), name, runs, options, args.sweep, resume=args.resume, on_run=on_run,
                            on_notice=log)
        runner = made.runner
        log(f"runner {os.getpid()}: sweep {name}, {len(runs)} runs, {made.where}{' (resumed)' if args.resume else ''}")
        counts = runner.run()
    except StiltsError as exc:
        log(f"error: {exc.problem}" + (f"\n  fix: {exc.fix}" if exc.fix else ""))
        return 2
    if runner.disk_full is not None:
        log(f"runner {os.getpid()} paused: {runner.disk_full.problem}. {runner.resume_hint()}. {counts}")
        return 4
    log(f"runner {os.getpid()} done: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
