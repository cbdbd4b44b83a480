"""The worker, a subprocess that knows nothing of the UI or the runner.

    python -m stilts_tui.train RUN.json          one run, then exit
    python -m stilts_tui.train --serve           a warm worker: runs one after another
    python -m stilts_tui.train --group A.json B.json ...   runs that train fused (train/fused/)

A warm worker imports everything once, says `ready`, then reads one command per line on stdin
({"run": "RUN.json", "attempt": 2}, or {"group": [...], "attempts": [...]} for runs that train
fused, each writing its own events as if alone) and runs it, with tokenisers, tokenised data and weights kept
in memory between runs. It exits at end of input, and dies with its parent (the runner) so that
no orphan keeps a GPU busy. SIGTERM ends the current run as `killed` and the worker with it.

Exit codes: 0 finished, 3 failed (the `failed` event says why), 2 unreadable run file."""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import os
import signal
import sys
import time
import traceback

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL when the parent exits (a SIGKILLed runner included)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _message(exc: BaseException) -> str:
    """One line: a user error's problem and its fix; anything else its first line."""
    from stilts_tui.diskspace import DiskFullError, is_disk_full
    from stilts_tui.errors import StiltsError

    if is_disk_full(exc) and not isinstance(exc, DiskFullError):
        exc = DiskFullError.from_os_error(exc, _RUN_DIR or ".")
    if isinstance(exc, StiltsError):
        return exc.one_line()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# transformers' words for a model it can neither find in the cache nor download.
UNAVAILABLE = ("couldn't connect to 'https://huggingface.co'", "is not a local folder and is not a valid model identifier",
               "offline mode")


def _reason(exc: BaseException) -> str:
    import torch

    from stilts_tui.diskspace import is_disk_full
    from stilts_tui.errors import StiltsError
    from stilts_tui.train.loop import NanLossError

    if is_disk_full(exc):  # before the others: a full disk can surface as any of them
        return "disk_full"
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return "oom"
    if isinstance(exc, NanLossError):
        return "nan_loss"
    if isinstance(exc, StiltsError):
        return "data_error"
    if isinstance(exc, OSError) and any(m in str(exc) for m in UNAVAILABLE):
        return "unavailable"
    if isinstance(exc, KeyboardInterrupt):
        return "killed"
    if type(exc).__name__ == "UncompletedJobError":  # submitit: out of time and out of requeues
        return "timeout"
    return "error"


def _quiet_imports() -> None:
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    import stilts_tui.train.loop  # noqa: F401  (the heavy imports, done before the first run)


_terminated = False
_RUN_DIR: str | None = None  # the current run's folder: where a full disk is reported when no file is named


def _terminate(*_) -> None:
    """A stop (the user's, the runner's): the run in progress saves where it is first, when it is
    between weight updates, so a resume continues from here rather than from its last periodic
    save."""
    global _terminated
    _terminated = True
    if "stilts_tui.train.resume" in sys.modules:
        from stilts_tui.train import resume

        with contextlib.suppress(Exception):  # a save that fails costs the save, never the stop
            resume.save_active()
    if "stilts_tui.train.fused.group" in sys.modules:
        from stilts_tui.train.fused import group

        group.save_active()
    raise KeyboardInterrupt


def run_file(path: str, attempt: int = 1, cache=None) -> int:
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    try:
        cfg = RunConfig.load(path)
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: cannot read run file {path}: {exc}", file=sys.stderr)
        return 2
    global _RUN_DIR
    _RUN_DIR = cfg.output_dir or None
    try:
        events = EventWriter(cfg.run_id, cfg.events_path or None, attempt=attempt)
    except OSError as exc:  # its log cannot even be opened: said on stdout, the runner's pipe
        events = EventWriter(cfg.run_id, None, attempt=attempt)
        events.emit("failed", reason=_reason(exc), message=_message(exc), stderr_tail=[])
        return 3
    try:
        metrics = run(cfg, events, cache=cache)
    except SystemExit:  # a Slurm job requeued by submitit: the run continues there, it has not failed
        events.close()
        raise
    except BaseException as exc:  # every failure becomes a `failed` event with its reason
        tail = traceback.format_exc().strip().splitlines()[-12:]
        events.emit("failed", reason=_reason(exc), message=_message(exc),
                    stderr_tail=tail)
        events.close()
        return 3
    events.emit("finished", metrics=metrics, wall_s=metrics["wall_s"])
    events.close()
    return 0


def run_group_files(paths: list[str], attempts: list[int], cache=None) -> int:
    """Runs that train fused: each its own `started` ... `finished` or `failed`, as `run_file` writes
    them, each as soon as that run ends."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.fused.group import run_group

    try:
        cfgs = [RunConfig.load(p) for p in paths]
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: cannot read a run file of {paths}: {exc}", file=sys.stderr)
        return 2
    writers = [EventWriter(c.run_id, c.events_path or None, attempt=a) for c, a in zip(cfgs, attempts, strict=True)]
    failed, ended = [], set()

    def on_end(cfg, what) -> None:
        ended.add(cfg.run_id)
        events = writers[cfgs.index(cfg)]
        if isinstance(what, BaseException):
            tail = traceback.format_exception(what)[-12:]
            events.emit("failed", reason=_reason(what), message=_message(what), stderr_tail=[t.rstrip() for t in tail])
            failed.append(cfg.run_id)
        else:
            events.emit("finished", metrics=what, wall_s=what["wall_s"], fused=True)
        events.close()

    try:
        run_group(cfgs, writers, on_end, cache=cache)
    except BaseException as exc:  # before any trial started (its data, a check): every run fails with it
        for cfg in cfgs:
            if cfg.run_id not in ended:
                with contextlib.suppress(Exception):
                    on_end(cfg, exc)
        if isinstance(exc, SystemExit):
            raise
    return 3 if failed else 0


def serve(threads: int | None) -> int:
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.warm import WarmCache

    t0 = time.time()
    _quiet_imports()
    if threads:
        import torch

        torch.set_num_threads(threads)
    cache = WarmCache()
    EventWriter("", None).emit("ready", pid=os.getpid(), import_s=time.time() - t0)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            group = [str(p) for p in cmd["group"]] if "group" in cmd else None
            attempts = [int(a) for a in cmd["attempts"]] if group else []
            path, attempt = ("", 0) if group else (str(cmd["run"]), int(cmd.get("attempt", 1)))
        except (ValueError, KeyError, TypeError):
            print(f"error: bad command line {line.strip()[:200]!r}", file=sys.stderr)
            continue
        rc = run_group_files(group, attempts, cache) if group else run_file(path, attempt, cache)
        if _terminated:  # stopped: the runner replaces this worker
            return rc
    return 0


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminate)  # a stopped run is recorded as killed
    if argv[:1] == ["--serve"]:
        _die_with_parent()
        # The runner asks for every thread's stack before killing a stalled run (runner/stall.py).
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
        threads = int(argv[2]) if len(argv) > 2 and argv[1] == "--threads" else None
        try:
            return serve(threads)
        except KeyboardInterrupt:
            return 3
    if argv[:1] == ["--group"] and len(argv) > 1:
        _quiet_imports()
        return run_group_files(argv[1:], [1] * (len(argv) - 1))
    if len(argv) != 1:
        print("usage: python -m stilts_tui.train RUN.json | --group RUN.json... | --serve [--threads N]", file=sys.stderr)
        return 2
    _quiet_imports()
    return run_file(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
