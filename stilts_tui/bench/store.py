"""`stilts bench store`: a runner's write pattern on a results file of N runs (many runs
starting and finishing: two status changes each), as the journal writes it, against the whole-
file rewrite every change cost before the journal (TinyDB's table update, then the file written
whole and fsync'd). The writer runs in a fresh process, so its peak memory is its own."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from stilts_tui.bench.results import synthetic_records


def queued_file(path: Path, n: int) -> None:
    """N runs shaped like a study's, all queued (a sweep just planned), as one TinyDB file. The
    records are copies of up to 2,000 synthetic ones with their own ids (same shape, faster to make)."""
    shapes = synthetic_records(min(n, 2000))
    docs = {}
    for i in range(n):
        rec = dict(shapes[i % len(shapes)])
        for k in ("score", "metric", "metrics", "started_at", "finished_at", "wall_s"):
            rec.pop(k, None)
        rec |= {"run_id": f"{rec['run_id']}-{i}", "status": "queued", "attempts": 0, "queued_at": 0.0}
        docs[str(i + 1)] = rec
    path.write_bytes(orjson.dumps({"runs": docs}))


def _ms(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"median_ms": statistics.median(xs) * 1e3, "p99_ms": xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1e3,
            "max_ms": xs[-1] * 1e3, "total_s": sum(xs)}


def writer_phase(db: str, changes: int, rewrites: int, fold_mb: float | None = None, stop: str = "") -> dict[str, Any]:
    """In a fresh process: open the store as the runner does, start and finish `changes` runs,
    close; then `rewrites` status changes the way every change was written before the journal."""
    import resource

    from tinydb import Query

    from stilts_tui import store_journal
    from stilts_tui.store import Store
    from stilts_tui.store_journal import journal_path

    if fold_mb is not None:  # fold more often than the store's own rule, to time folds under load
        store_journal.FOLD_MIN_BYTES, store_journal.FOLD_BASE_SHARE = int(fold_mb * 2**20), 10**9
    path = Path(db)
    t0 = time.perf_counter()
    store = Store(path, writer=True)
    open_s = time.perf_counter() - t0
    ids = [r["run_id"] for r in store.runs()[:changes // 2]]
    lat: list[float] = []
    journal_max = 0
    for n, run_id in enumerate(ids):
        for fields in ({"status": "running", "started_at": float(n), "pid": 1000 + n, "slot": "cpu0", "attempts": 1},
                       {"status": "finished", "finished_at": n + 60.0, "pid": None, "score": 0.7, "metric": "accuracy",
                        "wall_s": 60.0, "metrics": {"score": 0.7, "metric": "accuracy",
                                                    "baselines": {"random": 0.5, "majority": 0.527}}}):
            t = time.perf_counter()
            store.update(run_id, **fields)
            lat.append(time.perf_counter() - t)
        if journal_path(path).exists():
            journal_max = max(journal_max, journal_path(path).stat().st_size)
    journal = store.storage.journal
    assert journal is not None
    folds = journal.folds
    if stop:
        Path(stop).touch()  # the follower beside it stops before the close rewrites the file
        time.sleep(1.0)
    t0 = time.perf_counter()
    store.close()
    close_s = time.perf_counter() - t0
    after = {"journal": journal_path(path).exists(), "file_mb": path.stat().st_size / 2**20}
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    before: list[float] = []
    with Store(path, writer=True) as old:
        for n, run_id in enumerate(ids[:rewrites]):
            t = time.perf_counter()
            old.table.update({"status": "running", "started_at": float(n)}, Query().run_id == run_id)
            before.append(time.perf_counter() - t)
    return {"open_s": open_s, "changes": len(lat), "after": _ms(lat), "folds": folds, "journal_max_mb": journal_max / 2**20,
            "close_s": close_s, "closed": after, "writer_peak_mb": rss_mb, "before": _ms(before) if before else None, "rewrites": len(before)}


def follower_phase(db: str, stop: str, every_s: float = 0.5) -> dict[str, Any]:
    """In a fresh process, beside the writer: what the app does, a store.Follower refreshed every
    `every_s` until the file `stop` appears; the first (whole) read and each refresh timed."""
    import resource

    from stilts_tui.store import Follower

    follower = Follower(db)
    t0 = time.perf_counter()
    follower.refresh()
    first = time.perf_counter() - t0
    times: list[float] = []
    while not Path(stop).exists():
        time.sleep(every_s)
        t = time.perf_counter()
        follower.refresh()
        times.append(time.perf_counter() - t)
    return {"first_s": first, "refreshes": len(times), "refresh": _ms(times) if times else None,
            "full_reads": follower.full_reads, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(call: str) -> subprocess.Popen:
    code = f"import json; from stilts_tui.bench.store import *; print(json.dumps({call}))"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(err[-2000:])
    return json.loads(out.strip().splitlines()[-1])


def run_bench(n: int, changes: int, rewrites: int, fold_mb: float | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "results.json"
        queued_file(db, n)
        size_mb = db.stat().st_size / 2**20
        stop = Path(tmp) / "stop"
        follower = _child(f"follower_phase({str(db)!r}, {str(stop)!r})")
        time.sleep(0.2)  # it reads the file before the writer opens it, as an app open beside a sweep does
        out = _result(_child(f"writer_phase({str(db)!r}, {changes}, {rewrites}, {fold_mb!r}, {str(stop)!r})"))
        out["follower"] = _result(follower)
        # A reader in a fresh process while nothing is writing: the file alone, no journal.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"from stilts_tui.store import Store; Store({str(db)!r}).runs()"],
                       check=True)
        out["read_s"] = time.perf_counter() - t0
    return {"runs": n, "file_mb": size_mb, "fold_mb": fold_mb, **out}


def render(r: dict) -> str:
    a, b = r["after"], r["before"]
    lines = [f"bench store: {r['runs']:,} runs in a {r['file_mb']:.1f} MB results file; {r['changes']:,} status changes "
             f"({r['changes'] // 2:,} runs started and finished)"
             + (f"; folding every {r['fold_mb']:g} MB of journal" if r.get("fold_mb") else ""),
             f"  open as the writer            {r['open_s']:.2f} s",
             f"  a status change (journal)     median {a['median_ms']:.2f} ms, p99 {a['p99_ms']:.1f} ms, "
             f"max {a['max_ms']:.0f} ms; {a['total_s']:.1f} s in all; {r['folds']} background folds, "
             f"journal at most {r['journal_max_mb']:.1f} MB",
             f"  close (final fold)            {r['close_s']:.2f} s; journal left: {r['closed']['journal']}; "
             f"file {r['closed']['file_mb']:.1f} MB",
             f"  writer peak memory            {r['writer_peak_mb']:.0f} MB"]
    f = r.get("follower")
    if f and f["refresh"]:
        lines.append(f"  the app's refresh beside it   first read {f['first_s']:.2f} s, then {f['refreshes']} refreshes "
                     f"(every 0.5 s): median {f['refresh']['median_ms']:.1f} ms, max {f['refresh']['max_ms']:.0f} ms; "
                     f"{f['full_reads']} whole read(s) of the file; peak {f['peak_mb']:.0f} MB")
    lines.append(f"  read the file (fresh process) {r['read_s']:.2f} s")
    if b:
        lines.append(f"  before: a status change rewrote the file: median {b['median_ms']:.0f} ms, "
                     f"max {b['max_ms']:.0f} ms (over {r['rewrites']} changes)")
    return "\n".join(lines) + "\n"
