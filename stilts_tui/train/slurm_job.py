"""What a Slurm job runs: one run, or several (packing) one after another in one process with a
warm cache. Submitted through submitit, which pickles this callable and runs it on the node.

Each run writes its events to its own log on the shared filesystem, exactly as a local worker
does; the runner tails those logs. A job told it is about to time out (or be preempted) saves
the run in progress (train/resume.py) and is requeued by submitit; back on a node, runs whose
attempt already ended are skipped and the interrupted one continues from its saved step."""

from __future__ import annotations

import os

from submitit.helpers import Checkpointable, DelayedSubmission


def _ended(events_path: str, attempt: int) -> bool:
    from stilts_tui.domain.events import read_events

    return any(e["event"] in ("finished", "failed") and e.get("attempt", 1) == attempt for e in read_events(events_path))


class SlurmRuns(Checkpointable):
    def __init__(self, runs: list[tuple[str, int]]) -> None:
        self.runs = [(str(path), int(attempt)) for path, attempt in runs]  # (run file, attempt)

    def __call__(self) -> list[dict]:
        from stilts_tui.domain.run_config import RunConfig
        from stilts_tui.train.__main__ import _quiet_imports, run_file
        from stilts_tui.train.warm import WarmCache

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        _quiet_imports()
        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
        if cpus:
            import torch

            torch.set_num_threads(cpus)
        cache = WarmCache()
        outcomes = []
        for path, attempt in self.runs:
            cfg = RunConfig.load(path)
            if _ended(cfg.events_path, attempt):  # done before a requeue
                outcomes.append({"run_id": cfg.run_id, "skipped": True})
                continue
            outcomes.append({"run_id": cfg.run_id, "exit": run_file(path, attempt, cache)})
        return outcomes

    def checkpoint(self, *args, **kwargs) -> DelayedSubmission:
        """Called by submitit on the time-limit (or preemption) signal, before it requeues."""
        from stilts_tui.train import resume

        resume.save_active()
        return super().checkpoint(*args, **kwargs)
