"""What `python -m stilts_tui.forecast` is asked to compute and what it answers: typed records
with their JSON form. Standard library only: the analysis, the operations and the app read these
without torch."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PRETRAINED = "pretrained"   # FeatureJob.encoder of the pretrained model (the `none` intermediate)


@dataclass(frozen=True)
class FeatureJob:
    """Features of one encoder on one task's seeded train sample. `encoder` is PRETRAINED or the
    intermediate whose checkpoint is `checkpoint`."""

    encoder: str
    model: str                    # the spec's model: what the checkpoint was trained from
    checkpoint: str | None        # the intermediate run's checkpoint folder
    task: str
    data_dir: str | None
    max_length: int
    sample: int                   # examples drawn (all, when the split is smaller)
    seed: int

    @property
    def key(self) -> tuple[str, str]:
        return self.encoder, self.task


@dataclass(frozen=True)
class FeatureRequest:
    jobs: tuple[FeatureJob, ...]
    cache_dir: str
    task_files: tuple[str, ...] = ()    # user task definitions to register first

    def to_json(self) -> str:
        return json.dumps({"jobs": [asdict(j) for j in self.jobs], "cache_dir": self.cache_dir,
                           "task_files": list(self.task_files)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> FeatureRequest:
        raw = json.loads(text)
        return cls(tuple(FeatureJob(**j) for j in raw["jobs"]), str(raw["cache_dir"]), tuple(raw.get("task_files", ())))


@dataclass(frozen=True)
class FeatureSet:
    """One job's answer: the .npz holding `features` (one row per encoded sequence: per example, or
    per choice / candidate) and, where the head defines one label per row, `labels`."""

    job: FeatureJob
    path: str
    rows: int
    examples: int
    dim: int
    labelled: bool                # one label per row: LogME applies
    head: str
    forward_passes: int           # sequences through the encoder to make it (0 when read from cache)
    seconds: float                # wall time to make it (0 when read from cache)
    cached: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSet:
        return cls(**{**raw, "job": FeatureJob(**raw["job"])})


@dataclass(frozen=True)
class FeatureAnswer:
    sets: tuple[FeatureSet, ...]
    load_seconds: float = 0.0      # loading models and data: paid once per forecast
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps({"sets": [s.as_dict() for s in self.sets], "load_seconds": self.load_seconds,
                           "notes": list(self.notes)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> FeatureAnswer:
        raw = json.loads(text)
        return cls(tuple(FeatureSet.from_dict(s) for s in raw["sets"]), float(raw.get("load_seconds", 0.0)),
                   tuple(raw.get("notes", ())))

    @classmethod
    def read(cls, path: Path) -> FeatureAnswer:
        return cls.from_json(path.read_text(encoding="utf-8"))
