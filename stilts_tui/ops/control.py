"""Stopping and retrying, as the CLI and the app ask for them. The work (proving which processes
are the sweep's, the requests the runner takes, the fallbacks when it has ended) is in
runner/control.py; this is the one place the two front ends reach it from."""

from __future__ import annotations

from stilts_tui.runner.control import retry_run, stop_all, stop_run

__all__ = ["retry_run", "stop_all", "stop_run"]
