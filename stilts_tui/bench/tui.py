"""`stilts bench tui`: the app (headless, Textual's run_test) on a results file of N runs while
16 runs stream 20 step events a second each into their event logs. Reported: the time until the
runs table shows every run, and how long key presses take to be handled and drawn (the cursor
moving), sampled throughout, with the live updates flowing; then how long the results screen
takes to draw its pair table and a target's violins from every record."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path


def _streams(folder: Path, run_ids: list[str], rate: float, stop: threading.Event) -> None:
    handles = {rid: (folder / f"{rid}.jsonl").open("a", encoding="utf-8") for rid in run_ids}
    step = 0
    period = 1.0 / rate
    while not stop.is_set():
        step += 1
        now = time.time()
        for rid, fh in handles.items():
            fh.write(json.dumps({"v": 1, "event": "step", "run_id": rid, "attempt": 1, "t": now, "step": step, "epoch": step / 1000,
                                 "total_steps": 100000, "loss": 1.0 / step, "lr": 1e-5, "sequences_per_s": 100.0,
                                 "tokens_per_s": 6400.0, "memory_mb": 9000.0}) + "\n")
            fh.flush()
        stop.wait(period)
    for fh in handles.values():
        fh.close()


async def _measure(db: Path, n_total: int, presses: int) -> dict:
    from stilts_tui.app.app import StiltsApp
    from stilts_tui.app.runs_table import RunsTable

    app = StiltsApp(db, refresh_s=1.0)
    t0 = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(RunsTable)
        while len(table.rows) < n_total:
            await pilot.pause(0.01)
        open_s = time.perf_counter() - t0
        latencies = []
        for i in range(presses):
            before = table.cursor
            t = time.perf_counter()
            await pilot.press("down" if i % 40 < 20 else "up")
            while table.cursor == before:
                await pilot.pause(0)
            await pilot.pause(0)  # the redraw
            latencies.append(time.perf_counter() - t)
            await asyncio.sleep(0.05)
        live = len(app.snapshot.live) if app.snapshot else 0
        loads = app.loads
        results_s, violins_s = await _results_then_violins(app, pilot)
    return {"open_s": open_s, "key_median_s": statistics.median(latencies), "key_p95_s": sorted(latencies)[int(0.95 * len(latencies))],
            "key_max_s": max(latencies), "presses": presses, "live_runs": live, "refreshes": loads,
            "results_s": results_s, "violins_s": violins_s}


async def _results_then_violins(app, pilot) -> tuple[float, float]:
    """Seconds until the results screen shows its pair table (3), then the first target's
    violins in colour (v): both drawn in a worker thread from every record."""
    from textual.widgets import Static

    def view() -> str:
        views = app.screen.query("#results-view")
        return str(views.first(Static).render()) if views else ""

    async def until(key: str, text: str, gone: str | None = None) -> float:
        """Press `key`, then wait for a drawing that holds `text` (and no longer `gone`)."""
        before = view()
        t = time.perf_counter()
        await pilot.press(key)
        while (now := view()) == before or text not in now or (gone is not None and gone in now):
            if time.perf_counter() - t > 120:
                raise TimeoutError(f"the results screen never showed {text!r}")
            await pilot.pause(0.005)
        return time.perf_counter() - t

    results_s = await until("3", "dev scores per")
    return results_s, await until("v", "random guess", gone="dev scores per")


def run_bench(n_runs: int = 5000, streams: int = 16, rate: float = 20.0, presses: int = 100) -> dict:
    """The loaded case, and in the same invocation a quiet baseline (100 runs, nothing streaming)
    whose key latency is what the headless harness itself costs on this machine."""
    quiet = _case(100, 0, rate, presses)
    loaded = _case(n_runs, streams, rate, presses)
    return loaded | {"baseline": quiet}


def _case(n_runs: int, streams: int, rate: float, presses: int) -> dict:
    from stilts_tui.bench.results import synthetic_records, write_store

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = synthetic_records(n_runs)
        running = records[:streams]
        for r in running:
            r.update(status="running", score=None, attempts=1, events_path=str(root / f"{r['run_id']}.jsonl"),
                     slot=f"gpu{len(r['run_id']) % 2}", started_at=time.time())
        db = root / "results.json"
        write_store(db, records)
        stop = threading.Event()
        writer = threading.Thread(target=_streams, args=(root, [r["run_id"] for r in running], rate, stop), daemon=True)
        if streams:
            writer.start()
        try:
            result = asyncio.run(_measure(db, n_runs, presses))
        finally:
            stop.set()
            if streams:
                writer.join()
    return {"runs": n_runs, "streams": streams, "events_per_s": streams * rate, **result}


def render(r: dict) -> str:
    b = r["baseline"]
    return (f"bench tui: {r['runs']:,} runs, {r['streams']} runs streaming ({r['events_per_s']:.0f} events/s), "
            f"headless 120x40\n"
            f"  quiet baseline (100 runs, no stream): open {b['open_s']:.2f} s; key median {b['key_median_s'] * 1000:.0f} ms, "
            f"p95 {b['key_p95_s'] * 1000:.0f} ms, max {b['key_max_s'] * 1000:.0f} ms\n"
            f"  runs table shows every run after {r['open_s']:.2f} s\n"
            f"  key press handled and drawn: median {r['key_median_s'] * 1000:.0f} ms, p95 {r['key_p95_s'] * 1000:.0f} ms, "
            f"max {r['key_max_s'] * 1000:.0f} ms over {r['presses']} presses ({r['refreshes']} live refreshes meanwhile, "
            f"{r['live_runs']} runs followed live)\n"
            f"  results screen: pair table drawn {r['results_s']:.2f} s after its key; a target's violins "
            f"{r['violins_s']:.2f} s after v\n")
