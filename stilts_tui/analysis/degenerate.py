"""Degenerate intermediates and the targets trained from them. An intermediate run whose final dev
score is at or below its task's degenerate threshold (`Run.degenerate`: the majority-label level,
or MCC 0) learned nothing of its task; every target run that starts from its checkpoint
(`init_from`) measures a transfer from nothing. The runs table, the run detail, the pair table
and `stilts status` all flag both from here, so they name the same runs in the same words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stilts_tui.domain.run import Run, runs_of

MARK = "⚠"


@dataclass(frozen=True)
class DegenerateSources:
    """The degenerate intermediate runs of a results file, by run id, and which runs start from one."""

    by_id: Mapping[str, Run]
    targets: Mapping[str, list[Run]]        # intermediate run id -> the runs that start from it

    def source_of(self, run: Run) -> Run | None:
        """The degenerate intermediate run `run` starts from (None when it starts from none)."""
        parent = run.value("init_from")
        return self.by_id.get(parent) if isinstance(parent, str) else None

    def flagged(self, run: Run) -> bool:
        """A degenerate intermediate, or a run trained from one."""
        return run.run_id in self.by_id or self.source_of(run) is not None

    def note(self, run: Run) -> str:
        """What to say of the run (plain text; "" when it is neither)."""
        if run.run_id in self.by_id:
            n = len(self.targets.get(run.run_id, []))
            return (f"degenerate intermediate: {score_words(run)}; it learned nothing of {run.target}, and "
                    f"{n} target run(s) start from it")
        source = self.source_of(run)
        if source is not None:
            return f"starts from a degenerate intermediate: run {source.run_id} ({source.target}), {score_words(source)}"
        return ""

    def pairs(self) -> dict[tuple[str, str], int]:
        """(intermediate, target) -> how many of the pair's runs start from a degenerate intermediate."""
        out: dict[tuple[str, str], int] = {}
        for runs in self.targets.values():
            for r in runs:
                out[(r.intermediate, r.target)] = out.get((r.intermediate, r.target), 0) + 1
        return out

    def __bool__(self) -> bool:
        return bool(self.by_id)


def degenerate_sources(records: Iterable[Run | Mapping[str, Any]]) -> DegenerateSources:
    runs = runs_of(records)
    bad = {r.run_id: r for r in runs if r.kind == "intermediate" and r.finished and r.degenerate}
    targets: dict[str, list[Run]] = {}
    for r in runs:
        parent = r.value("init_from")
        if isinstance(parent, str) and parent in bad:
            targets.setdefault(parent, []).append(r)
    return DegenerateSources(bad, targets)


def score_words(run: Run) -> str:
    """`mcc 0.0 ≤ 0.0, the degenerate threshold (majority label 0.0, random guess 0.0)`, ×100."""
    b = run.baselines
    levels = [f"{name} {v * 100:.1f}" for name, v in (("majority label", b.majority), ("random guess", run.guess))
              if v is not None]
    threshold = b.degenerate_threshold
    return (f"{run.metric_name} {(run.score or 0.0) * 100:.1f}"
            + (f" ≤ {threshold * 100:.1f}, the degenerate threshold" if threshold is not None else "")
            + (f" ({', '.join(levels)})" if levels else ""))
