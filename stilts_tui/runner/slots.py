"""Where runs execute: slots on GPUs (several runs per GPU when memory allows) or CPU processes
with a fixed number of threads each."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from stilts_tui.errors import StiltsError

# Per run: fp32 weights + gradients + two AdamW moments = 16 bytes per parameter, plus the CUDA
# context and allocator slack. Activations are estimated from the largest batch (Korthikanti et
# al. 2022: about 34·s·b·d + 5·a·s²·b bytes per layer in 16-bit).
BYTES_PER_PARAM = 16
CONTEXT_MB = 1200
DEFAULT_MAX_PER_GPU = 16


@dataclass(frozen=True)
class Slot:
    id: str
    gpu: int | None
    threads: int

    @property
    def device(self) -> str:
        return f"cuda:{self.gpu}" if self.gpu is not None else "cpu"

    def env(self) -> dict[str, str]:
        t = str(self.threads)
        env = {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "TOKENIZERS_PARALLELISM": "false"}
        # Each worker sees only its GPU; a CPU slot sees none, so it never touches a GPU by accident.
        env["CUDA_VISIBLE_DEVICES"] = str(self.gpu) if self.gpu is not None else ""
        return env


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_mb: float
    free_mb: float
    util: int = 0          # % of the last sample period a kernel ran

    @property
    def used_mb(self) -> float:
        return self.total_mb - self.free_mb


def visible_gpus() -> list[Gpu]:
    """NVIDIA GPUs through NVML (nvidia-ml-py), limited to CUDA_VISIBLE_DEVICES when it is set;
    an empty list where there is no driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no GPU: a CPU machine
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = pynvml.nvmlDeviceGetName(h)
            gpus.append(Gpu(i, name.decode() if isinstance(name, bytes) else name, mem.total / 2**20, mem.free / 2**20,
                            pynvml.nvmlDeviceGetUtilizationRates(h).gpu))
    finally:
        pynvml.nvmlShutdown()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        wanted = [int(x) for x in visible.split(",") if x.strip().isdigit()]
        gpus = [g for g in gpus if g.index in wanted]
    return gpus


def model_shape(model_path: str) -> dict:
    """hidden size, layers, heads and an approximate parameter count from a model's config.json
    (a RoBERTa-large shape when the config cannot be read, to err on the side of fewer runs)."""
    shape = {"hidden": 1024, "layers": 24, "heads": 16, "params": 355_000_000}
    cfg_file = Path(model_path) / "config.json"
    if not cfg_file.is_file():
        return shape
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, ValueError):
        return shape
    d = int(cfg.get("hidden_size", shape["hidden"]))
    layers = int(cfg.get("num_hidden_layers", shape["layers"]))
    ffn = int(cfg.get("intermediate_size", 4 * d))
    vocab = int(cfg.get("vocab_size", 50265))
    positions = int(cfg.get("max_position_embeddings", 512))
    params = layers * (4 * d * d + 2 * d * ffn) + (vocab + positions) * d
    return {"hidden": d, "layers": layers, "heads": int(cfg.get("num_attention_heads", 16)), "params": params}


def run_memory_mb(shape: dict, batch: int, seq: int) -> float:
    s, b, d, a = seq, batch, shape["hidden"], shape["heads"]
    activations = shape["layers"] * (34 * s * b * d + 5 * a * s * s * b)
    return CONTEXT_MB + (shape["params"] * BYTES_PER_PARAM + activations) / 2**20


def runs_per_gpu(free_mb: float, shape: dict, batch: int, seq: int, cap: int = DEFAULT_MAX_PER_GPU) -> int:
    return max(1, min(cap, int(0.9 * free_mb // run_memory_mb(shape, batch, seq))))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def plan_slots(gpus: list[Gpu] | None = None, gpu_ids: list[int] | None = None, per_gpu: int | None = None,
               cpu_slots: int | None = None, threads: int | None = None, shape: dict | None = None,
               batch: int = 32, seq: int = 128) -> list[Slot]:
    """The slots of this machine. GPUs: every visible one (or `gpu_ids`), `per_gpu` runs each or
    as many as free memory holds for this model. CPU only: `cpu_slots` processes of `threads`
    threads (default: one single-thread process per core; on small models that beats one
    multi-threaded run)."""
    gpus = visible_gpus() if gpus is None else gpus
    if gpu_ids is not None:
        known = {g.index for g in gpus}
        missing = [i for i in gpu_ids if i not in known]
        if missing:
            raise StiltsError(f"GPU {missing[0]} is not visible (visible: {sorted(known) or 'none'})",
                              "pass --gpus with indices from nvidia-smi, or leave it out to use every GPU")
        gpus = [g for g in gpus if g.index in gpu_ids]
    if gpus:
        slots = []
        for g in gpus:
            k = per_gpu or runs_per_gpu(g.free_mb, shape or model_shape(""), batch, seq)
            slots += [Slot(f"gpu{g.index}.{j}", g.index, threads or max(1, cpu_count() // max(1, len(gpus) * k)))
                      for j in range(k)]
        return slots
    threads = threads or 1
    n = cpu_slots or max(1, cpu_count() // threads)
    return [Slot(f"cpu{j}", None, threads) for j in range(n)]


# `fuse = "auto"` on a CPU: fused trials share one process's threads; past a few the step is
# arithmetic-bound there and fusing more only delays each trial's result.
CPU_FUSED_TRIALS = 4
MAX_FUSED_TRIALS = 12  # the paper grid's runs of one batch size


def fused_trial_memory_mb(shape: dict, batch: int, seq: int) -> float:
    """One more trial in a fused group: its weights, gradients and optimizer state, and its own
    activations (the CUDA context is the group's, counted once)."""
    return run_memory_mb(shape, batch, seq) - CONTEXT_MB


def fused_trials_per_device(cfg, gpus: list[Gpu] | None = None) -> int:
    """How many trials of this run's shape one device holds fused: on a GPU from its free memory
    (the planner's per-run estimate, less the shared context), on a CPU a few."""
    gpus = visible_gpus() if gpus is None else gpus
    if not gpus:
        return CPU_FUSED_TRIALS
    from stilts_tui.models import resolve_model

    try:
        shape = model_shape(resolve_model(cfg.model))
    except Exception:  # noqa: BLE001 - a model not resolvable here: the planner's largest shape
        shape = model_shape("")
    per_trial = fused_trial_memory_mb(shape, cfg.micro_batch()[0], cfg.max_length)
    free = max(g.free_mb for g in gpus) - CONTEXT_MB
    return max(1, min(MAX_FUSED_TRIALS, int(0.9 * free // per_trial)))
