"""`stilts recover`: a results file rebuilt from what the sweep left beside it.

Everything the store holds is written somewhere else first: each sweep file
(`<db stem>.sweeps/*.json`) lists every run the sweep was asked to run, queued ones included; each
run's folder holds `run.json`, the config its last attempt ran with (written before the attempt
starts, runner/pool.py), and `events.jsonl`, what every attempt of it did (domain/events.py). From
those this module writes a NEW results file through the real Store, so it is a results file like
any other; the damaged one is never written, moved or deleted.

What a log cannot say is rebuilt the way a resumed runner would see it: an attempt cut short (no
`finished` or `failed` line: its runner died, or its worker was killed without a word) is queued
again, and a run the user stopped, or one blocked by its intermediate, is queued too (a resume
blocks it again). A `failed` attempt goes through the runner's own retry policy (runner/retry.py)
with the sweep's --max-retries, so a run given up on is failed, and one with retries left is queued."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from stilts_tui.domain.events import Event, read_events
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.runner.control import ensure_no_runner
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.loop import run_record
from stilts_tui.runner.retry import Attempt, decide
from stilts_tui.runner.sweepfile import read_sweep
from stilts_tui.store import Store, recovered_path

# What the runner's `_prepare` writes on a run that was in flight when its runner died.
INTERRUPTED = {"reason": "interrupted", "message": "its runner stopped before the run ended; it runs again"}
# Fields the runner copies from an attempt's `started` event (runner/loop.py `_record_lines`).
STARTED_FIELDS = ("train_examples", "total_steps", "micro_batch", "accumulation", "params", "precision", "device")


@dataclass
class Recovered:
    """What `recover` wrote: the new file, its runs by status, and what it read them from."""

    source: Path
    out: Path
    counts: dict[str, int]
    sweep_files: int
    run_folders: int
    unreadable: list[str] = field(default_factory=list)  # sweep files or run files skipped, each with why

    @property
    def runs(self) -> int:
        return sum(self.counts.values())


def recover(db: Path, out: Path | None = None) -> Recovered:
    """Rebuild `db`'s store from its sweep files and run folders into `out` (a new file)."""
    files = RunnerFiles(db)
    out = out or recovered_path(db)
    if out.resolve() == db.resolve():
        raise StiltsError(f"--out {out} is the results file being recovered: recover never writes over it",
                          f"pass another --out, or leave it out ({recovered_path(db)})")
    if out.exists():
        raise StiltsError(f"{out} already exists: recover writes a new results file and never replaces one",
                          "pass another --out, or move that file aside first")
    # A live runner still writes the file: what it holds in memory is newer than any log read here.
    ensure_no_runner(files)
    unreadable: list[str] = []
    sweep_paths = _sweep_files(files)
    configs: dict[str, RunConfig] = {}
    max_retries: dict[str, int] = {}
    read_ok: list[Path] = []
    for path in sweep_paths:  # oldest first: a later sweep's settings for a run win
        try:
            _name, runs, options = read_sweep(path)
        except StiltsError as exc:
            unreadable.append(exc.problem)
            continue
        read_ok.append(path)
        for cfg in runs:
            configs[cfg.run_id] = cfg
            max_retries[cfg.run_id] = options.max_retries
    folders = _run_files(files, configs.values())
    for run_file in folders:
        try:
            cfg = RunConfig.load(run_file)
        except (OSError, ValueError, TypeError) as exc:
            unreadable.append(f"run file {run_file}: {exc}")
            continue
        configs[cfg.run_id] = cfg  # what the last attempt ran with (a smaller device batch after an OOM)
    if not configs:
        raise StiltsError(f"nothing to rebuild {db} from: no sweep file in {files.sweeps} and no run in {files.runs}",
                          f"restore {db} from a backup, or run its spec again (stilts run SPEC --db {db})")
    updates = {run_id: rebuilt(cfg, read_events(cfg.events_path or Path(cfg.output_dir) / "events.jsonl"),
                               max_retries.get(run_id, 2))
               for run_id, cfg in configs.items()}
    with Store(out, writer=True) as store:
        store.add_runs(run_record(cfg) for cfg in configs.values())
        store.update_many(updates)
    _copy_sweeps(read_ok, RunnerFiles(out))
    counts: dict[str, int] = {}
    for fields_ in updates.values():
        counts[fields_["status"]] = counts.get(fields_["status"], 0) + 1
    return Recovered(db, out, counts, len(read_ok), len(folders), unreadable)


def rebuilt(cfg: RunConfig, events: Iterable[Event], max_retries: int) -> dict:
    """One run's store fields, as the runner would have written them, from its event log."""
    by_attempt: dict[int, list[Event]] = {}
    for ev in events:
        if ev["run_id"] == cfg.run_id:  # a log shared by mistake, or a stray line, is not this run's
            by_attempt.setdefault(ev["attempt"], []).append(ev)
    fields_: dict = {"config": asdict(cfg), "attempts": max(by_attempt, default=0)}
    if not by_attempt:
        return fields_ | {"status": RunStatus.QUEUED, "retries": 0}  # never started: as the sweep queued it
    retries, failures, last = 0, [], fields_["attempts"]
    status: dict = {"status": RunStatus.QUEUED, **INTERRUPTED}
    for attempt in sorted(by_attempt):
        evs = by_attempt[attempt]
        started = next((e for e in evs if e["event"] == "started"), None)
        end = next((e for e in reversed(evs) if e["event"] in ("finished", "failed")), None)
        if attempt == last and started is not None:
            fields_["started_at"] = started["t"]
            fields_ |= {k: started.get(k) for k in STARTED_FIELDS if k in started}
        if end is None:
            continue
        if end["event"] == "finished":
            if attempt == last:
                m = end["metrics"]
                status = {"status": RunStatus.FINISHED, "finished_at": end["t"], "score": m["score"],
                          "metric": m["metric"], "metrics": m, "wall_s": end.get("wall_s"), "reason": None,
                          "message": None}
            continue
        reason, message = end["reason"], end["message"]
        failures.append({"attempt": attempt, "reason": reason, "message": message, "t": end["t"]})
        micro = started.get("micro_batch") if started is not None else None
        d = decide(Attempt(reason=reason, retries=retries, max_retries=max_retries,
                           device_batch=micro or cfg.micro_batch()[0], can_shrink=cfg.can_shrink_device_batch(),
                           fixed_device_batch=cfg.device_batch))
        # A worker stopped by a signal says `killed`: the user's stop, a stall kill or the runner's
        # shutdown, which the log cannot tell apart. It is queued, its retries untouched, as a resume would.
        if reason == "killed":
            status = {"status": RunStatus.QUEUED, "finished_at": end["t"], **INTERRUPTED}
            continue
        if d.action == "retry":
            retries += 1
        if attempt != last:
            continue
        if d.action == "give_up":
            status = {"status": RunStatus.FAILED, "reason": reason, "message": f"{message} ({d.why})"}
        elif d.action == "retry":
            status = {"status": RunStatus.QUEUED, "reason": reason,
                      "message": f"{message} (retry {retries} of {max_retries})"}
        elif d.action == "shrink":
            smaller = replace(cfg, max_device_batch=d.device_batch or 1)
            status = {"status": RunStatus.QUEUED, "reason": "oom", "config": asdict(smaller),
                      "message": f"out of memory with a device batch of {micro or cfg.micro_batch()[0]}; retrying "
                                 f"with {smaller.micro_batch()[0]} and gradient accumulation (same effective batch)"}
        else:  # requeue: a full disk, the run waits for space with its retries untouched
            status = {"status": RunStatus.QUEUED, "reason": reason,
                      "message": f"{message}; queued again: `stilts resume` runs it once space is freed"}
        status["finished_at"] = end["t"]
    if failures:
        fields_["failures"] = failures
    return fields_ | {"retries": retries} | status


def _sweep_files(files: RunnerFiles) -> list[Path]:
    """The sweep files, oldest first (the order `stilts resume` picks its last one by)."""
    if not files.sweeps.is_dir():
        return []
    return sorted(files.sweeps.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))


def _run_files(files: RunnerFiles, configs: Iterable[RunConfig]) -> list[Path]:
    """Every run.json: in the results file's runs folder, and where a sweep put a run elsewhere
    (a results file of the older shared layout keeps its runs in `runs/`, sweep/placement.py)."""
    found = set(files.runs.glob("*/run.json")) if files.runs.is_dir() else set()
    found |= {p for c in configs if c.output_dir and (p := Path(c.output_dir) / "run.json").is_file()}
    return sorted(found)


def _copy_sweeps(paths: list[Path], new: RunnerFiles) -> None:
    """The sweep files beside the new results file too, so `stilts resume --db NEW` finds the
    last sweep; copy2 keeps their times, by which the last one is picked. The originals stay."""
    if not paths or paths[0].parent.resolve() == new.sweeps.resolve():
        return
    new.sweeps.mkdir(parents=True, exist_ok=True)
    new.sweeps.chmod(0o700)  # as make_dirs leaves it: the sweep files are the user's alone
    for path in paths:
        target = new.sweeps / path.name
        if not target.exists():
            shutil.copy2(path, target)
