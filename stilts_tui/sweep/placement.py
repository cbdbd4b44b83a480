"""Where a results file's runs keep their files: `results.runs/<run id>/` beside `results.json`,
so two results files in one folder never share a run's event log or checkpoint (a run has the
same id in both when its config is the same).

Results files written before this layout keep their runs where they are: a run the file already
records with other folders (the shared `runs/` of earlier versions) keeps them, and a run that
starts from such an intermediate finds its checkpoint there. The tokenised caches stay shared in
`cache/`: they are keyed by their content, written under a file lock and renamed into place, so
one results file's sweep cannot corrupt them for another's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.store import Store
from stilts_tui.sweep.expand import expand
from stilts_tui.sweep.spec import Spec


def runs_folder(db: Path) -> Path:
    """The folder of the results file's own runs."""
    return db.with_name(db.stem + ".runs")


def runs_for(spec: Spec, db: Path) -> list[RunConfig]:
    """Every run of the spec as this results file runs it (paths included)."""
    return adopt_recorded_folders(expand(spec, db.parent, runs_folder(db)), db)


def adopt_recorded_folders(runs: list[RunConfig], db: Path) -> list[RunConfig]:
    """Runs the results file already records in other folders keep those folders (their logs and
    checkpoints are there); runs starting from such an intermediate follow its checkpoint."""
    if not db.is_file():
        return runs
    with Store(db) as store:
        recorded = {r["run_id"]: r for r in store.runs()}
    moved: dict[str, str] = {}
    out = []
    for cfg in runs:
        rec = recorded.get(cfg.run_id) or {}
        where = rec.get("output_dir")
        if where and where != cfg.output_dir:
            cfg = replace(cfg, output_dir=where, events_path=rec.get("events_path") or str(Path(where) / "events.jsonl"))
            moved[cfg.run_id] = where
        out.append(cfg)
    return [replace(cfg, init_checkpoint=str(Path(moved[cfg.init_from]) / "checkpoint"))
            if cfg.init_from in moved else cfg for cfg in out]
