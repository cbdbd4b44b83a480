"""`python -m stilts_tui.train RUN.json`: one run, events on stdout and in the run's event log.

Exit codes: 0 finished, 3 failed (the `failed` event says why), 2 unreadable run file."""

from __future__ import annotations

import os
import signal
import sys
import traceback

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _reason(exc: BaseException) -> str:
    import torch

    from stilts_tui.errors import StiltsError
    from stilts_tui.train.loop import NanLossError

    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return "oom"
    if isinstance(exc, NanLossError):
        return "nan_loss"
    if isinstance(exc, StiltsError):
        return "data_error"
    if isinstance(exc, KeyboardInterrupt):
        return "killed"
    return "error"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m stilts_tui.train RUN.json", file=sys.stderr)
        return 2
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    from stilts_tui.train.config import RunConfig
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    try:
        cfg = RunConfig.load(argv[0])
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: cannot read run file {argv[0]}: {exc}", file=sys.stderr)
        return 2
    events = EventWriter(cfg.run_id, cfg.events_path or None)
    # SIGTERM (stilts stop) becomes a KeyboardInterrupt so the failure is recorded as killed.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        metrics = run(cfg, events)
    except BaseException as exc:  # every failure becomes a `failed` event with its reason
        tail = traceback.format_exc().strip().splitlines()[-12:]
        events.emit("failed", reason=_reason(exc), message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    stderr_tail=tail)
        events.close()
        return 3
    events.emit("finished", metrics=metrics, wall_s=metrics["wall_s"])
    events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
