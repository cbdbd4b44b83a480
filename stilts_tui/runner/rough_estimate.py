"""A rough time for a spec before any of its runs finished (estimate.py estimates only from runs
measured here): the runs' work at a throughput this project measured on a stated GPU, said as
such — the GPU, the figure and where it is written down — never as a measurement of this machine.

The one figure so far (BENCHMARKS.md, "On a GPU: the paper's RTE grid, RoBERTa-large-shaped"):
`stilts bench sweep --model roberta-large-random --task rte-shaped --grid paper --runs 36`
processed 89,640 training sequences in 203.3 s on one H100 80GB with 8 runs at once (441 seq/s),
at max_length 100 (64 real tokens a sequence)."""

from __future__ import annotations

from dataclasses import dataclass

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.estimate import work_units


@dataclass(frozen=True)
class Benchmark:
    model: str            # the model the figure is of (a hub id ending in it matches)
    gpu: str
    seq_per_s: float      # sequences a second, every run at once together
    max_length: int       # the token cap it was measured at: other caps scale the time
    runs_at_once: int
    source: str


BENCHMARKS = (Benchmark("roberta-large", "one NVIDIA H100 80GB", 441.0, 100, 8,
                        "BENCHMARKS.md, the paper's RTE grid, 2026-11-22"),)


@dataclass(frozen=True)
class Rough:
    seconds: float
    runs: int             # runs the figure covers
    total: int
    bench: Benchmark
    early_stopping: bool = False   # some runs validate and stop early: the time is the most they take

    def describe(self) -> str:
        b = self.bench
        hours = self.seconds / 3600
        when = f"{hours:.1f} h" if hours >= 1 else f"{self.seconds / 60:.0f} min"
        left = f"; {self.total - self.runs} run(s) of other models not included" if self.runs < self.total else ""
        left += "; at most: early stopping ends runs sooner" if self.early_stopping else ""
        return (f"rough, not measured here: {'≤' if self.early_stopping else '≈'} {when} wall for {self.runs} run(s) on {b.gpu} at {b.seq_per_s:.0f} seq/s "
                f"({b.runs_at_once} runs at once, max_length {b.max_length}; {b.source}){left}")


def rough_estimate(todo: list[RunConfig]) -> Rough | None:
    """The wall time of `todo` at the benchmark figure of its model (None: no figure for any of its
    models). Work is sequences (estimate.work_units, dev passes included) scaled by the token cap."""
    for bench in BENCHMARKS:
        mine = [cfg for cfg in todo if cfg.model == bench.model or cfg.model.endswith("/" + bench.model)]
        if mine:
            sequences = sum(work_units(cfg) * cfg.max_length / bench.max_length for cfg in mine)
            return Rough(sequences / bench.seq_per_s, len(mine), len(todo), bench,
                         any(cfg.val_interval and cfg.max_vals for cfg in mine))
    return None
