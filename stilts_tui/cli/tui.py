"""`stilts tui`: the terminal app (also what `stilts` alone opens)."""

from __future__ import annotations

import argparse
import shutil
import textwrap

from stilts_tui.cli.common import DEFAULT_DB, Commands
from stilts_tui.errors import StiltsError


def cmd_tui(args: argparse.Namespace) -> int:
    from stilts_tui.app.app import StiltsApp

    if args.refresh <= 0:
        raise StiltsError("--refresh must be positive", "e.g. --refresh 1")
    StiltsApp(args.db, refresh_s=args.refresh).run()
    # Wrapped at the terminal's width between words: a terminal wraps a long line mid-word.
    text = f"stilts tui closed; any sweep on {args.db} keeps running (stilts status --db {args.db})"
    print(textwrap.fill(text, width=max(40, shutil.get_terminal_size().columns - 1), break_long_words=False,
                        break_on_hyphens=False))
    return 0


def register(sub: Commands) -> None:
    """Add this module's commands to `stilts`."""
    tu = sub.add_parser("tui", help="the terminal app: plan, launch, watch and read a study (the default)")
    tu.add_argument("--db", default=DEFAULT_DB)
    tu.add_argument("--refresh", type=float, default=1.0, help="seconds between live updates (default 1)")
    tu.set_defaults(func=cmd_tui)
