"""`stilts bench results`: a synthetic results file of N runs shaped like a real study (full
configs, metrics with baselines, a few degenerate and failed runs), then the wall time of
`stilts results` and `stilts plot` on it, as a user runs them (fresh processes)."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from stilts_tui.analysis import paper_order
from stilts_tui.domain.run_config import RunConfig

INTERMEDIATES = ("none", "hellaswag", "hellaswag_p", "synthesis_gpt2", "hellaswag_p@2000", "hellaswag_p@10000",
                 "hellaswag_p@40000")
TARGETS = {"rte": (2, 0.527), "wic": (2, 0.5), "mednli": (3, 0.333), "socialiqa": (3, 0.339), "winogrande_xs": (2, 0.505),
           "winogrande_m": (2, 0.505), "winogrande_l": (2, 0.505), "cola": (2, 0.0)}


def synthetic_records(n: int, seed: int = 0) -> list[dict]:
    from stilts_tui.runner.loop import run_record

    rng = np.random.default_rng(seed)
    out: list[dict] = []
    seeds = itertools.count(1)
    while len(out) < n:
        s = next(seeds)
        for inter, (target, (k, guess)), lr, bs, wu in itertools.product(INTERMEDIATES, TARGETS.items(), *grid_axes()):
            if len(out) >= n:
                break
            cfg = RunConfig(kind="target", model="roberta-large", task=target, intermediate=inter, lr=lr, batch_size=bs,
                            warmup_ratio=wu, seed=s, spec_name="synthetic", output_dir=f"/runs/{len(out)}")
            cfg.run_id = cfg.compute_id()
            metric = "mcc" if target == "cola" else "accuracy"
            degenerate = rng.random() < 0.08
            base = 0.55 if metric == "mcc" else 0.7
            score = (0.0 if metric == "mcc" else guess) if degenerate else float(np.clip(rng.normal(base, 0.05), 0, 1))
            rec = run_record(cfg) | {"status": "finished", "score": score, "metric": metric, "attempts": 1,
                                     "started_at": 0.0, "finished_at": 1.0, "wall_s": 60.0,
                                     "metrics": {"score": score, "metric": metric, "baselines": {
                                         "random": 1 / k, "majority": guess, "degenerate_threshold":
                                         0.0 if metric == "mcc" else guess + 1e-9}}}
            out.append(rec)
    return out


STUDY_INTERMEDIATES = ("none", *paper_order.INTERMEDIATES)
STUDY_TARGETS, STUDY_PROBES = paper_order.TARGETS, paper_order.PROBES
STUDY_LRS = (5e-6, 1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 2e-4, 3e-4)


def study_records(n: int, seed: int = 0, restarts: int = 3) -> list[dict]:
    """Runs shaped like the second study: 11 intermediates and none × (10 targets + 25 probes) ×
    `restarts`, then further grid points (learning rates), then further restarts, until there
    are `n`. Each intermediate's gain on a column is one latent skill of the intermediate times the column's reliance on it,
    plus noise, so some columns correlate and some cells differ from the baseline."""
    from stilts_tui.runner.loop import run_record

    rng = np.random.default_rng(seed)
    columns = [(t, False) for t in STUDY_TARGETS] + [(p, True) for p in STUDY_PROBES]
    skill = {i: (0.0 if i == "none" else float(rng.normal(0, 1))) for i in STUDY_INTERMEDIATES}
    reliance = {c: float(rng.normal(0, 0.02)) for c, _ in columns}
    base = {c: float(rng.uniform(0.55, 0.85)) for c, _ in columns}
    out: list[dict] = []
    grid = ((lr, range(block * restarts, (block + 1) * restarts)) for block in itertools.count() for lr in STUDY_LRS)
    for lr, seeds in grid:
        for inter, (task, probe), restart in itertools.product(STUDY_INTERMEDIATES, columns, seeds):
            if len(out) >= n:
                return out
            cfg = RunConfig(kind="target", model="roberta-large", task=task, intermediate=inter, lr=lr, seed=restart,
                            spec_name="synthetic-study", probe=probe, restart=restart, output_dir=f"/runs/{len(out)}",
                            head_style="jiant")
            cfg.run_id = cfg.compute_id()
            score = float(np.clip(base[task] + skill[inter] * reliance[task] + rng.normal(0, 0.01), 0, 1))
            out.append(run_record(cfg) | {"status": "finished", "score": score, "metric": "accuracy", "attempts": 1,
                                          "started_at": 0.0, "finished_at": 1.0, "wall_s": 60.0,
                                          "metrics": {"score": score, "metric": "accuracy", "baselines": {
                                              "random": 0.5, "majority": 0.5, "degenerate_threshold": 0.5}}})
    raise AssertionError("unreachable")


def grid_axes():
    return (1e-5, 2e-5, 3e-5), (8, 16, 32), (0.0, 0.1)


def write_store(path: Path, records: list[dict]) -> None:
    from stilts_tui.store import Store

    with Store(path, writer=True) as store:
        store.table.insert_multiple(records)


PEAKS: dict[str, float] = {}   # command label -> the largest peak memory (MB) of its processes
# The child's own peak: VmHWM, its address space's high-water mark since exec (wait4's maxrss
# would count the pages of this big parent it was forked from).
_PEAK = ("import atexit, sys; out = sys.argv.pop(1); "
         "atexit.register(lambda: open(out, 'w').write(next(l.split()[1] for l in open('/proc/self/status') "
         "if l.startswith('VmHWM')))); ")


def _time(cmd: list[str], repeat: int) -> float:
    """The median wall time of `cmd` in fresh processes; its peak memory goes to PEAKS."""
    times = []
    db = next((Path(c).name for c in cmd if c.endswith(".json")), "")
    label = " ".join(c for c in cmd[3:] if not c.startswith("/")) + (f" [{db}]" if db else "") or "python -c pass"
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            peak = Path(tmp) / "peak"
            code = cmd[2] if cmd[1] == "-c" else f"import runpy; runpy.run_module({cmd[2]!r}, run_name='__main__', alter_sys=True)"
            wrapped = [cmd[0], "-c", _PEAK + code, str(peak), *cmd[3:]]
            t0 = time.perf_counter()
            proc = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:].decode(errors="replace"))
            if peak.exists() and Path("/proc/self/status").exists():
                PEAKS[label] = max(PEAKS.get(label, 0.0), int(peak.read_text()) / 1024)
    return statistics.median(times)


def run_bench(n: int, repeat: int = 3) -> dict:
    PEAKS.clear()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "results.json"
        write_store(db, synthetic_records(n))
        size_mb = db.stat().st_size / 2**20
        base = [sys.executable, "-m", "stilts_tui"]
        out: dict[str, Any] = {"runs": n, "file_mb": size_mb, "repeat": repeat,
               "python_startup_s": _time([sys.executable, "-c", "pass"], repeat),
               "results_s": _time([*base, "results", "--db", str(db)], repeat),
               "results_table2_s": _time([*base, "results", "--db", str(db), "--view", "table2"], repeat),
               "plot_s": _time([*base, "plot", "rte", "--db", str(db)], repeat),
               "plot_color_s": _time([*base, "plot", "rte", "--db", str(db), "--format", "color"], repeat),
               "runs_csv_s": _time([*base, "results", "--db", str(db), "--runs", "--format", "csv"], repeat)}
        # The whole-study views on files shaped like the second study: its own size (one run per
        # restart) and n runs (further grid points per restart).
        study_n = len(STUDY_INTERMEDIATES) * (len(STUDY_TARGETS) + len(STUDY_PROBES)) * 3
        studies: list[dict] = []
        out["study"] = studies
        for runs in sorted({study_n, n}):
            sdb = Path(tmp) / f"study-{runs}.json"
            write_store(sdb, study_records(runs))
            views = {"runs": runs, "file_mb": sdb.stat().st_size / 2**20}
            for label, extra in (("matrix", ["--view", "matrix"]), ("matrix_holm", ["--view", "matrix", "--mark", "holm"]),
                                 ("matrix_3stats", ["--view", "matrix", "--stat", "mean,best,degenerate"]),
                                 ("correlation", ["--view", "correlation"]), ("ranking", ["--view", "ranking"])):
                views[label + "_s"] = _time([*base, "results", "--db", str(sdb), *extra], repeat)
            studies.append(views)
    out["peak_mb"] = dict(PEAKS)
    return out


def render(r: dict) -> str:
    return (f"bench results: {r['runs']:,} runs in a {r['file_mb']:.1f} MB results file; median of {r['repeat']} fresh "
            f"processes (python startup alone {r['python_startup_s']:.2f} s)\n"
            f"  stilts results                 {r['results_s']:.2f} s\n"
            f"  stilts results --view table2   {r['results_table2_s']:.2f} s\n"
            f"  stilts plot rte                {r['plot_s']:.2f} s\n"
            f"  stilts plot rte --format color {r['plot_color_s']:.2f} s\n"
            f"  stilts results --runs --format csv {r['runs_csv_s']:.2f} s\n" + "".join(_render_study(v) for v in r["study"])
            + "peak memory (MB, largest of the processes):\n"
            + "".join(f"  {label:<60} {mb:.0f}\n" for label, mb in r.get("peak_mb", {}).items()))


def _render_study(v: dict) -> str:
    return (f"second-study shape (11 intermediates + none, 35 columns, 3 restarts): {v['runs']:,} runs, "
            f"{v['file_mb']:.1f} MB\n"
            f"  --view matrix                              {v['matrix_s']:.2f} s\n"
            f"  --view matrix --mark holm                  {v['matrix_holm_s']:.2f} s\n"
            f"  --view matrix --stat mean,best,degenerate  {v['matrix_3stats_s']:.2f} s\n"
            f"  --view correlation                         {v['correlation_s']:.2f} s\n"
            f"  --view ranking                             {v['ranking_s']:.2f} s\n")
