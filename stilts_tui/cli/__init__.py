"""`stilts`: the command line. Every user error is one message and a fix, never a traceback.

Each module holds a group of commands, each command's parser beside its handler; this one
assembles them and turns errors into messages."""

from __future__ import annotations

import argparse
import os
import sys

from stilts_tui.cli import bench, demo, forecast, results, sweep, tasks, tui
from stilts_tui.cli.common import DEFAULT_DB
from stilts_tui.errors import StiltsError

__all__ = ["DEFAULT_DB", "build_parser", "main"]

# the order of `stilts --help`
GROUPS = (tasks, tui, sweep, results, forecast, demo, bench)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stilts", description="Plan, run, watch and analyse STILTs sweeps.")
    p.add_argument("--version", action="version", version=f"stilts {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


def _version() -> str:
    """The installed package's version (pyproject.toml's), without importing anything heavy."""
    from importlib import metadata

    try:
        return metadata.version("stilts-tui")
    except metadata.PackageNotFoundError:  # run from a clone that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv  # main([]) is `stilts` alone, whatever the real command line
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["tui", *argv])
    try:
        return int(args.func(args) or 0)
    except StiltsError as exc:
        print(f"error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
