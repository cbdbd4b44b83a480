"""`stilts bench gpu`: the one prepared call of a GPU session. Within its budget, in this order,
and writing `bench-gpu.json` and `bench-gpu.md` into its folder after every step (a time limit
that ends the call loses only the step it was in):

  a. smoke: a few optimizer steps of every training path (each precision, each optimizer, both
     clip modes, a fixed device batch with accumulation, each head family, frozen-encoder mixing,
     resume from a saved state, a hand-off from an intermediate checkpoint): a finite loss, the
     step time and the peak memory of each; a failure is recorded and the rest goes on;
  b. profile: one paper-grid run under torch.profiler (host vs device time, top kernels, kernel
     launches per step);
  c. the paper's RTE grid: the runner, plain and with fused trials, against Hugging Face Trainer
     (one fresh process per run) on the same runs in the same call (`stilts bench sweep --grid paper
     --fuse 12`), never extrapolated;
  d. same science: the demo task's grid one run per process and fused, the score distributions
     compared with the analysis layer's permutation test.

`--device cpu --quick` runs the same steps with the tiny model on CPU in a few minutes: the test
suite does, so a GPU call cannot fail on a typo."""

from __future__ import annotations

import functools
import io
import json
import math
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from stilts_tui.bench.head_data import FAMILY_TASKS, write_head_data
from stilts_tui.bench.shaped import write_rte_shaped
from stilts_tui.domain.run_config import RunConfig

JSON_NAME = "bench-gpu.json"
DEMO_TASK_FILE = Path(__file__).resolve().parents[2] / "experiments" / "tasks" / "demo_acceptability.toml"
MARKDOWN_NAME = "bench-gpu.md"


@dataclass(frozen=True)
class SmokePath:
    """One training path: its name, the task it trains on and what it changes of the base run."""

    name: str
    task: str = "rte"
    change: dict[str, Any] = field(default_factory=dict)


def smoke_paths() -> list[SmokePath]:
    """Every path the worker has, each changed on its own from one base run."""
    paths = [SmokePath(f"precision {p}", change={"precision": p}) for p in ("tf32", "bf16", "fp32")]
    paths += [SmokePath(f"optimizer {o}", change={"optimizer": o}) for o in ("torch_adamw", "hf_adamw", "bert_adam", "amsgrad")]
    paths += [SmokePath("clip per_micro_batch", change={"grad_clip": "per_micro_batch", "device_batch": 4}),
              SmokePath("device batch 4 of 16 (accumulation)", change={"batch_size": 16, "device_batch": 4})]
    paths += [SmokePath(f"head {family} ({task})", task=task) for family, task in FAMILY_TASKS.items()]
    paths += [SmokePath("frozen_mix (ScalarMix probe)", change={"transfer": "frozen_mix", "head_style": "jiant"})]
    return paths


@dataclass
class Report:
    """What the call has found so far: written whole after every step."""

    device: str
    model: str
    quick: bool
    budget_s: float
    started: float = field(default_factory=time.time)
    machine: str = field(default_factory=lambda: f"{platform.machine()}, {platform.node()}")
    smoke: list[dict] = field(default_factory=list)
    profile: dict | None = None
    grid: dict | None = None
    science: dict | None = None
    skipped: list[str] = field(default_factory=list)

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        data = asdict(self) | {"elapsed_s": time.time() - self.started}
        tmp = out / (JSON_NAME + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(out / JSON_NAME)
        (out / MARKDOWN_NAME).write_text(markdown(data), encoding="utf-8")


def _events(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]


def train_once(cfg: RunConfig, attempt: int = 1) -> tuple[dict, list[dict]]:
    """One run in this process; its metrics and the events it wrote."""
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    buf = io.StringIO()
    try:
        metrics = run(cfg, EventWriter(cfg.run_id, None, buf, attempt=attempt))
    except BaseException as exc:
        exc.add_note(buf.getvalue()[-2000:])
        raise
    return metrics, _events(buf)


def _outcome(name: str, cfg: RunConfig, metrics: dict, events: list[dict], t0: float) -> dict:
    losses = [e["loss"] for e in events if e.get("event") == "step"]
    memory = [e["memory_mb"] for e in events if e.get("event") == "step" and e.get("memory_mb") is not None]
    started = next((e for e in events if e.get("event") == "started"), {})
    finite = bool(losses) and all(math.isfinite(x) for x in losses) and math.isfinite(metrics.get("final_loss") or 0.0)
    steps = metrics.get("steps") or 0
    return {"path": name, "ok": finite, "task": cfg.task, "steps": steps, "final_loss": metrics.get("final_loss"),
            "step_s": (metrics.get("train_s") or 0.0) / steps if steps else None,
            "peak_memory_mb": max(memory) if memory else None, "precision": started.get("precision"),
            "wall_s": time.time() - t0, "error": None if finite else "a loss was not finite (or no step ran)"}


def _failure(name: str, exc: BaseException, t0: float) -> dict:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return {"path": name, "ok": False, "error": text[-1500:], "wall_s": time.time() - t0}


def smoke_one(path: SmokePath, base: RunConfig) -> dict:
    t0 = time.time()
    cfg = replace(base, task=path.task, **path.change)
    cfg.output_dir = str(Path(base.output_dir) / _slug(path.name))
    cfg.run_id = cfg.compute_id()
    try:
        metrics, events = train_once(cfg)
    except Exception as exc:
        return _failure(path.name, exc, t0)
    return _outcome(path.name, cfg, metrics, events, t0)


def smoke_resume(base: RunConfig) -> dict:
    """A run that fails after saving its state, then its second attempt: it must resume there."""
    import os

    t0 = time.time()
    cfg = replace(base, resume_every_s=1e-6, output_dir=str(Path(base.output_dir) / "resume"))
    cfg.run_id = cfg.compute_id()
    os.environ["STILTS_FAULT_INJECT"] = "error:3"
    try:
        train_once(cfg)
    except Exception:  # noqa: BLE001 - the injected failure
        pass
    finally:
        os.environ.pop("STILTS_FAULT_INJECT", None)
    try:
        metrics, events = train_once(cfg, attempt=2)
    except Exception as exc:
        return _failure("resume from a saved state", exc, t0)
    out = _outcome("resume from a saved state", cfg, metrics, events, t0)
    resumed = next((e for e in events if e.get("event") == "resumed"), None)
    out["resumed_at_step"] = resumed["step"] if resumed else None
    if resumed is None:
        out.update(ok=False, error="the second attempt did not resume from the saved state")
    return out


def smoke_handoff(base: RunConfig) -> dict:
    """An intermediate that saves its checkpoint, and a target that starts from it."""
    t0 = time.time()
    inter = replace(base, kind="intermediate", task="copa", save_checkpoint=True,
                    output_dir=str(Path(base.output_dir) / "handoff-intermediate"))
    inter.run_id = inter.compute_id()
    try:
        train_once(inter)
        target = replace(base, intermediate="copa", init_from=inter.run_id, init_checkpoint=str(Path(inter.output_dir) / "checkpoint"),
                         output_dir=str(Path(base.output_dir) / "handoff-target"))
        target.run_id = target.compute_id()
        metrics, events = train_once(target)
    except Exception as exc:
        return _failure("hand-off from an intermediate checkpoint", exc, t0)
    out = _outcome("hand-off from an intermediate checkpoint", target, metrics, events, t0)
    if not any(e.get("event") == "handoff" for e in events):
        out.update(ok=False, error="the target reported no hand-off")
    return out


def profile_run(base: RunConfig, top: int = 12) -> dict:
    """One paper-grid run's steps under torch.profiler: where the time goes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    cfg = replace(base, output_dir=str(Path(base.output_dir) / "profile"))
    cfg.run_id = cfg.compute_id()
    with profile(activities=activities) as prof:
        metrics, _ = train_once(cfg)
    averages = prof.key_averages()
    steps = max(1, metrics.get("steps") or 1)
    device_key = "self_device_time_total" if cuda else "self_cpu_time_total"
    ranked = sorted(averages, key=lambda a: getattr(a, device_key, 0.0), reverse=True)[:top]
    launches = sum(a.count for a in averages if a.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    host_us = sum(a.self_cpu_time_total for a in averages)
    device_us = sum(getattr(a, "self_device_time_total", 0.0) for a in averages) if cuda else None
    return {"steps": steps, "train_s": metrics.get("train_s"), "host_s": host_us / 1e6,
            "device_s": None if device_us is None else device_us / 1e6,
            "launches_per_step": launches / steps if cuda else None,
            "top": [{"name": a.key, "calls": a.count, "self_ms": getattr(a, device_key, 0.0) / 1e3} for a in ranked]}


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")


def _base(model_path: str, data_dir: str, root: Path, quick: bool) -> RunConfig:
    return RunConfig(kind="target", model=model_path, task="rte", data_dir=data_dir, lr=2e-5, batch_size=8, epochs=1,
                     max_length=64 if quick else 128, train_size=32 if quick else 128, warmup_ratio=0.1,
                     max_device_batch=16, cache_dir=str(root / "cache"), output_dir=str(root / "runs"))


def run_gpu_bench(out: Path, budget_s: float = 480.0, device: str = "cuda", quick: bool = False,
                  grid_runs: int | None = None, step: Callable[[str], None] | None = None) -> Report:
    """Steps a, b and c (see the module's docstring) within `budget_s` seconds, the report
    written after each. `step` hears the name of each step as it starts."""
    from stilts_tui.bench.worker import bench_model

    say = step or (lambda _name: None)
    model = "tiny" if quick else "roberta-large-random"
    report = Report(device=device, model=model, quick=quick, budget_s=budget_s)
    deadline = report.started + budget_s
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        write_rte_shaped(data_dir / "rte", sizes={"train": 64, "dev": 32} if quick else None)
        write_head_data(data_dir, copies=8 if quick else 32)
        model_path = bench_model(model, "rte", str(data_dir), root)
        base = _base(model_path, str(data_dir), root, quick)
        report.write(out)
        checks: list[tuple[str, Callable[[], dict]]] = [(p.name, functools.partial(smoke_one, p, base))
                                                        for p in smoke_paths()]
        checks += [("resume", functools.partial(smoke_resume, base)), ("hand-off", functools.partial(smoke_handoff, base))]
        for name, check in checks:
            if time.time() > deadline:
                report.skipped.append(f"smoke {name}: budget spent")
                continue
            say(f"smoke {name}")
            report.smoke.append(check())
            report.write(out)
        if time.time() < deadline:
            say("profile")
            try:
                report.profile = profile_run(base)
            except Exception as exc:
                report.profile = _failure("profile", exc, time.time())
            report.write(out)
        else:
            report.skipped.append("profile: budget spent")
        report.grid = _grid(model_path, str(data_dir), deadline, quick, grid_runs, say)
        report.write(out)
        report.science = same_science(model, root / "science", deadline, quick, say)
        report.write(out)
    return report


def same_science(model: str, root: Path, deadline: float, quick: bool, say: Callable[[str], None]) -> dict:
    """The fast mode computes the same science: a grid of the demo task (which a random-weight
    model can learn, unlike RTE) trained one run per process and fused, and the two score
    distributions compared with the analysis layer's permutation test."""
    from stilts_tui.analysis.stats import permutation_test
    from stilts_tui.bench.sweep import run_bench
    from stilts_tui.bench.worker import bench_model
    from stilts_tui.data import demo
    from stilts_tui.runner.options import RunnerOptions
    from stilts_tui.tasks import register_task_file

    if deadline - time.time() < 30:
        return {"skipped": "budget spent: no same-science check"}
    runs, epochs = (4, 1) if quick else (12, 10)
    say(f"same science: {runs} demo runs one per process and fused")
    t0 = time.time()
    task_file = DEMO_TASK_FILE
    try:
        register_task_file(task_file)
        data_dir = root / "data"
        demo.build(data_dir, target_train=64 if quick else 512, target_dev=64 if quick else 256)
        model_path = bench_model(model, "demo_acceptability", str(data_dir), root)
        result = run_bench(model_path, "demo_acceptability", str(data_dir), runs, None, epochs, 16, 64, RunnerOptions(),
                           ["one-by-one", "fused"], [str(task_file)], 989.0, "small", fuse=runs)
    except Exception as exc:
        return _failure("same science", exc, t0)
    alone, fused = (result["ways"][w]["score_values"] for w in ("one-by-one", "fused"))
    test = permutation_test(alone, fused)
    return {"runs": runs, "epochs": epochs, "one_by_one": alone, "fused": fused, "p": test.p, "method": test.method,
            "same_distribution": test.p >= 0.05, "wall_s": time.time() - t0,
            "makespan_s": {w: v["makespan_s"] for w, v in result["ways"].items()}}


def _grid(model: str, data_dir: str, deadline: float, quick: bool, runs: int | None,
          say: Callable[[str], None]) -> dict:
    """The paper's RTE grid, the runner against Trainer, on as many runs as the time left allows."""
    from stilts_tui.bench.sweep import run_bench
    from stilts_tui.runner.options import RunnerOptions

    left = deadline - time.time()
    n = runs or (2 if quick else 36)
    if left < 30:
        return {"skipped": f"{left:.0f} s of the budget left: no grid"}
    say(f"paper grid, {n} runs, runner vs Trainer")
    t0 = time.time()
    try:
        # The runner plain and with fused trials (the 12 runs of one batch size train as one model).
        result = run_bench(model, "rte", data_dir, n, 32 if quick else None, 1, 16, 64 if quick else 128,
                           RunnerOptions(), ["trainer", "runner", "fused"], None, 989.0, "paper", fuse=2 if quick else 12)
    except Exception as exc:
        return _failure("paper grid", exc, t0)
    return result | {"wall_s": time.time() - t0}


def markdown(data: dict) -> str:
    """The report as a page a person reads first (the JSON beside it holds everything)."""
    lines = [f"# stilts bench gpu: {data['model']} on {data['device']} ({'quick' if data['quick'] else 'full'})", "",
             f"{data['elapsed_s']:.0f} s of a {data['budget_s']:.0f} s budget; machine {data['machine']}.", "",
             "## Smoke", "", "| path | ok | steps | step | peak MB | final loss | note |", "|---|---|---:|---:|---:|---:|---|"]
    for s in data["smoke"]:
        step = f"{s['step_s'] * 1e3:.1f} ms" if s.get("step_s") else ""
        mem = f"{s['peak_memory_mb']:.0f}" if s.get("peak_memory_mb") else ""
        loss = f"{s['final_loss']:.4f}" if s.get("final_loss") is not None else ""
        note = (s.get("error") or "").replace("\n", " ").replace("|", "/")[:160]
        lines.append(f"| {s['path']} | {'yes' if s['ok'] else '**no**'} | {s.get('steps', '')} | {step} | {mem} | {loss} | {note} |")
    p = data.get("profile")
    if p and "top" in p:
        lines += ["", "## Profile", "", f"{p['steps']} steps; host {p['host_s']:.2f} s"
                  + (f", device {p['device_s']:.2f} s, {p['launches_per_step']:.0f} kernel launches per step"
                     if p.get("device_s") is not None else " (no device timeline on CPU)"), "",
                  "| op | calls | self ms |", "|---|---:|---:|"]
        lines += [f"| {t['name'][:60]} | {t['calls']} | {t['self_ms']:.1f} |" for t in p["top"]]
    elif p:
        lines += ["", "## Profile", "", f"failed: {p.get('error')}"]
    g = data.get("grid") or {}
    lines += ["", "## Paper grid, runner vs Trainer", ""]
    if "ways" in g:
        for way, w in g["ways"].items():
            mfu = f", MFU {w['mfu']:.1%}" if w.get("mfu") is not None else ""
            idle = f", GPU idle {w['gpu_idle_fraction']:.0%}" if w.get("gpu_idle_fraction") is not None else ""
            lines.append(f"- {way}: makespan {w['makespan_s']:.1f} s{mfu}{idle}")
        lines += [f"- ratio {k}: {v:.2f}x" for k, v in g.get("ratios", {}).items()]
    else:
        lines.append(str(g.get("skipped") or g.get("error") or "not run"))
    sc = data.get("science") or {}
    lines += ["", "## Same science: one run per process against fused", ""]
    if "p" in sc:
        lines.append(f"{sc['runs']} runs of the demo task, {sc['epochs']} epoch(s): scores one by one "
                     f"{', '.join(f'{x:.3f}' for x in sc['one_by_one'])}; fused {', '.join(f'{x:.3f}' for x in sc['fused'])}; "
                     f"permutation p = {sc['p']:.3g} ({sc['method']}): "
                     + ("the same distribution at α = 0.05" if sc["same_distribution"] else "**the distributions differ**"))
    else:
        lines.append(str(sc.get("skipped") or sc.get("error") or "not run"))
    if data.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(data["skipped"])]
    return "\n".join(lines) + "\n"
