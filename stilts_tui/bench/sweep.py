"""`stilts bench sweep`: one small grid run three ways, in one invocation, on fresh results files:

  trainer     Hugging Face Trainer (dynamic padding; bf16 on CUDA), one subprocess per run, one
              after another: what a lab's own script does
  one-by-one  this worker, one fresh subprocess per run, one after another (the runner without
              slots or warm workers)
  runner      the runner: every slot busy, warm workers
  fused       the runner with `fuse = N` (`--fuse N`): the runs that may fuse train as one model per
              worker (train/fused/), against `runner` on the same runs

Reported: makespan of each and the ratios; on NVIDIA GPUs also the GPU idle fraction (NVML
utilisation samples under 5 %) and the sweep-wide MFU on non-pad tokens; per-run overhead: from the moment a run is handed
over (its process started, or its command sent to a warm worker) until its data and model are
ready to train (the `started` event; for Trainer, just before `trainer.train()`); how busy the
runner's slots were; and the largest score difference between the ways."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.options import RunnerOptions
from stilts_tui.sweep.spec import PAPER_GRID


def paper_grid_points(n_runs: int) -> list[dict]:
    """The first ``n_runs`` of the study's 36-run target grid, in an order where every prefix
    mixes batch sizes and learning rates (a 12-run subset has all three batch sizes, each lr)."""
    import itertools

    points = [dict(zip(PAPER_GRID, values, strict=True)) for values in itertools.product(*PAPER_GRID.values())]
    points.sort(key=lambda p: (PAPER_GRID["seed"].index(p["seed"]), PAPER_GRID["warmup_ratio"].index(p["warmup_ratio"]),
                               (PAPER_GRID["lr"].index(p["lr"]) - PAPER_GRID["batch_size"].index(p["batch_size"])) % 3,
                               PAPER_GRID["batch_size"].index(p["batch_size"])))
    if n_runs > len(points):
        raise ValueError(f"the paper's grid has {len(points)} points; asked for {n_runs}")
    return points[:n_runs]


def grid(model: str, task: str, data_dir: str | None, n_runs: int, train_size: int | None, epochs: int,
         batch_size: int, max_length: int, workdir: Path, task_files: list[str] | None = None,
         which: str = "small") -> list[RunConfig]:
    """``small``: two learning rates × seeds at one batch size; ``paper``: the study's target grid
    (lr × batch × warmup × seed), each run's device batch its batch size."""
    lrs = [5e-5, 1e-4]
    if which == "paper":
        points = paper_grid_points(n_runs)
    else:
        points = [{"lr": lrs[i % 2], "batch_size": batch_size, "warmup_ratio": 0.1, "seed": 1 + i // 2} for i in range(n_runs)]
    runs = []
    for p in points:
        cfg = RunConfig(kind="target", model=model, task=task, data_dir=data_dir, epochs=epochs, max_length=max_length,
                        train_size=train_size, max_device_batch=p["batch_size"], cache_dir=str(workdir / "cache"),
                        spec_name="bench-sweep", task_files=list(task_files or []), **p)
        cfg.run_id = cfg.compute_id()
        runs.append(cfg)
    return runs


def _placed(runs: list[RunConfig], root: Path) -> list[RunConfig]:
    return [replace(r, output_dir=str(root / "runs" / r.run_id), events_path=str(root / "runs" / r.run_id / "events.jsonl"))
            for r in runs]


def _one_by_one(runs: list[RunConfig], root: Path, module: str) -> dict:
    """Each run in a fresh `python -m MODULE RUN.json` process, one after another."""
    scores, overheads = {}, []
    t0 = time.time()
    for cfg in _placed(runs, root):
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(cfg.to_json())
        t_start = time.time()
        proc = subprocess.run([sys.executable, "-m", module, str(out / "run.json")], capture_output=True, text=True,
                              env=os.environ | {"TOKENIZERS_PARALLELISM": "false"}, timeout=7200)
        if proc.returncode != 0:
            raise RuntimeError(f"{module} failed on {cfg.run_id}: {proc.stderr[-2000:]}")
        if module == "stilts_tui.train":
            from stilts_tui.domain.events import read_events

            evs = read_events(cfg.events_path)
            overheads.append(next(e["t"] for e in evs if e["event"] == "started") - t_start)
            scores[cfg.run_id] = next(e for e in evs if e["event"] == "finished")["metrics"]["score"]
        else:
            result = json.loads((out / "result.json").read_text())
            overheads.append(result["start_s"])
            scores[cfg.run_id] = result["score"]
    return {"makespan_s": time.time() - t0, "scores": scores, "overhead_s": statistics.median(overheads), "slots": 1}


class GpuSampler:
    """GPU utilisation sampled through NVML twice a second while the runner works (no GPU: no samples)."""

    def __init__(self) -> None:
        import threading

        self.samples: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from stilts_tui.runner.slots import visible_gpus

        while not self.stop.wait(0.5):
            gpus = visible_gpus()
            if not gpus:
                return  # no NVIDIA driver
            self.samples += [g.util for g in gpus]

    def __enter__(self) -> GpuSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=2)

    def idle_fraction(self) -> float | None:
        return sum(u < 5 for u in self.samples) / len(self.samples) if self.samples else None


def model_flops_per_token(params: int, shape: dict, tokens_per_sequence: float) -> float:
    """6N for the weights (forward + backward) + 12·L·d·T for attention over T tokens."""
    return 6 * params + 12 * shape["layers"] * shape["hidden"] * tokens_per_sequence


def _runner(runs: list[RunConfig], root: Path, slots, peak_tflops: float) -> dict:
    from stilts_tui.models import resolve_model
    from stilts_tui.runner.loop import Runner
    from stilts_tui.runner.slots import model_shape
    from stilts_tui.store import Store

    db = root / "results.json"
    t0 = time.time()
    with GpuSampler() as sampler:
        counts = Runner(db, _placed(runs, root), slots).run()
    makespan = time.time() - t0
    if counts["finished"] != len(runs):
        raise RuntimeError(f"the runner finished {counts['finished']} of {len(runs)} runs: see {db}")
    recs = Store(db).runs()
    spans: dict[tuple, tuple[float, float]] = {}  # a fused group keeps its one slot busy once
    for r in recs:
        key = tuple(r.get("fused_group") or [r["run_id"]])
        lo, hi = spans.get(key, (r["started_at"], r["finished_at"]))
        spans[key] = (min(lo, r["started_at"]), max(hi, r["finished_at"]))
    busy = sum(hi - lo for lo, hi in spans.values())
    warm = [r["overhead_s"] for r in recs if r.get("warm_start")]
    return {"makespan_s": makespan, "scores": {r["run_id"]: r["score"] for r in recs},
            "overhead_s": statistics.median(warm) if warm else None, "warm_starts": len(warm),
            "cold_overhead_s": max(r["overhead_s"] for r in recs), "slots": len(slots),
            "tokens_per_sequence": sum(r["metrics"]["train_tokens"] for r in recs)
            / max(1, sum(r["metrics"]["train_sequences"] for r in recs)),
            "slot_busy": busy / (len(slots) * makespan), "threads": slots[0].threads,
            "sequences_per_s": sum(r["metrics"]["train_sequences"] for r in recs) / makespan,
            "fused_groups": len({tuple(r["fused_group"]) for r in recs if r.get("fused_group")}),
            "gpu_idle_fraction": sampler.idle_fraction(), "mfu": _mfu(recs, model_shape(resolve_model(runs[0].model)),
                                                                      makespan, peak_tflops)}


def _mfu(recs: list[dict], shape: dict, makespan: float, peak_tflops: float) -> float | None:
    """Sweep-wide model FLOPs utilisation on real (non-pad) training tokens, against the peak of
    every GPU used; None on CPU."""
    devices = {r.get("device") for r in recs}
    gpus = {d for d in devices if d and d.startswith("cuda")}
    if not gpus:
        return None
    flops = 0.0
    for r in recs:
        m = r["metrics"]
        per_seq = m["train_tokens"] / max(1, m["train_sequences"])
        flops += m["train_tokens"] * model_flops_per_token(m["params"], shape, per_seq)
    return flops / makespan / (peak_tflops * 1e12 * len(gpus))


def run_bench(model: str, task: str, data_dir: str | None, n_runs: int, train_size: int | None, epochs: int,
              batch_size: int, max_length: int, slot_options: RunnerOptions, ways: list[str],
              task_files: list[str] | None = None, peak_tflops: float = 989.0, which_grid: str = "small",
              fuse: int | None = None) -> dict:
    import torch

    from stilts_tui.bench.worker import bench_model
    from stilts_tui.runner.options import slots_from_options
    from stilts_tui.runner.slots import cpu_count

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_path = bench_model(model, task, data_dir, root)
        runs = grid(model_path, task, data_dir, n_runs, train_size, epochs, batch_size, max_length, root, task_files,
                    which_grid)
        slots = slots_from_options(slot_options, runs)
        results = {}
        for way in ways:
            if way == "trainer":
                results[way] = _one_by_one(runs, root / way, "stilts_tui.bench.trainer_run")
            elif way == "one-by-one":
                results[way] = _one_by_one(runs, root / way, "stilts_tui.train")
            elif way == "fused":
                results[way] = _runner([replace(r, fuse=fuse or 1) for r in runs], root / way, slots, peak_tflops)
            else:
                results[way] = _runner(runs, root / way, slots, peak_tflops)
    ref = results.get("runner")
    for r in results.values():
        if ref:
            r["max_score_diff"] = max(abs(r["scores"][k] - ref["scores"][k]) for k in ref["scores"])
    for r in results.values():  # after every comparison: the runner's own scores are the reference
        r["score_values"] = sorted(r.pop("scores").values())  # the distribution, for a test between ways
    ratios = {f"{w}/runner": results[w]["makespan_s"] / ref["makespan_s"] for w in results if ref and w not in ("runner", "fused")}
    if ref and "fused" in results:  # how much sooner the same runs end fused
        ratios["runner/fused"] = ref["makespan_s"] / results["fused"]["makespan_s"]
    return {"model": model, "task": task, "runs": n_runs, "train_size": train_size, "epochs": epochs,
            "batch_size": batch_size, "max_length": max_length, "device": "cuda" if torch.cuda.is_available() else "cpu",
            "cores": cpu_count(), "machine": f"{platform.processor() or platform.machine()}, {cpu_count()} cores",
            "slots": [s.id for s in slots], "ways": results, "ratios": ratios, "date": time.strftime("%Y-%m-%d"),
            "peak_tflops": peak_tflops, "grid": which_grid, "fuse": fuse}


def render(r: dict) -> str:
    batch = "the paper's grid" if r.get("grid") == "paper" else f"batch {r['batch_size']}"
    tokens = r["ways"].get("runner", {}).get("tokens_per_sequence")
    lines = [f"bench sweep: {r['runs']} runs of {r['model']} on {r['task']} ({r['train_size'] or 'all'} train examples, "
             f"{r['epochs']} epoch(s), {batch}, max {r['max_length']} tokens"
             f"{f', {tokens:.0f} real tokens per sequence' if tokens else ''}) on {r['device']}, "
             f"{r['cores']} cores; runner slots: {', '.join(r['slots'])}"]
    for way, w in r["ways"].items():
        extra = (f" on a warm worker ({w['warm_starts']} runs; first start {w['cold_overhead_s']:.2f} s)"
                 f"  slots busy {w['slot_busy']:.0%}") if "slot_busy" in w else ""
        if w.get("gpu_idle_fraction") is not None:
            extra += f"  GPU idle {w['gpu_idle_fraction']:.0%}"
        if w.get("sequences_per_s") is not None:
            extra += f"  {w['sequences_per_s']:.1f} train seq/s over the makespan"
        if w.get("fused_groups"):
            extra += f"  {w['fused_groups']} fused group(s) of up to {r['fuse']}"
        if w.get("mfu") is not None:
            extra += f"  MFU {w['mfu']:.1%} of {r['peak_tflops']:g} TFLOP/s per GPU"
        diff = f"  max |Δscore| vs runner {w['max_score_diff']:.4f}" if way != "runner" and "max_score_diff" in w else ""
        overhead = "   n/a" if w["overhead_s"] is None else f"{w['overhead_s']:5.2f} s"
        lines.append(f"  {way:<11} makespan {w['makespan_s']:7.1f} s   per-run overhead {overhead} (median)"
                     f"{extra}{diff}")
    for k, v in r["ratios"].items():
        lines.append(f"  ratio {k:<18} {v:.2f}x")
    return "\n".join(lines) + "\n"
