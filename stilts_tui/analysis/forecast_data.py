"""A forecast as `stilts forecast` saves it: per target and method, a score per candidate
intermediate and what it cost. JSON beside the results file (RESULTS.forecast/SPEC.json), so the
results view and the app read it without torch."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from stilts_tui.errors import StiltsError

METHODS = ("textemb", "logme")
METHOD_LABEL = {"textemb": "TextEmb", "logme": "LogME"}


@dataclass
class MethodRanking:
    method: str
    target: str
    scores: dict[str, float]                  # candidate intermediate -> forecast score (higher: better)
    forward_passes: int = 0                   # sequences through an encoder, this forecast (0: all cached)
    seconds: float = 0.0
    cached_passes: int = 0                    # sequences whose features came from the cache
    reference: float | None = None            # LogME: the pretrained model's own score (the `none` intermediate)
    missing: list[str] = field(default_factory=list)   # candidates without a checkpoint
    not_applicable: str = ""                  # why the method does not apply to this target

    def order(self) -> list[str]:
        return sorted(self.scores, key=lambda c: (-self.scores[c], c))


@dataclass
class Forecast:
    spec: str
    model: str
    sample: int
    seed: int
    rankings: list[MethodRanking]
    load_seconds: float = 0.0                 # loading models and tokenizers, once per forecast
    forward_passes: int = 0                   # in all: each (encoder, task) feature set made once, shared
    seconds: float = 0.0                      # in all, making them
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Forecast:
        return cls(**{**raw, "rankings": [MethodRanking(**r) for r in raw["rankings"]]})

    def ranking(self, target: str, method: str) -> MethodRanking | None:
        return next((r for r in self.rankings if r.target == target and r.method == method), None)

    @property
    def targets(self) -> list[str]:
        return list(dict.fromkeys(r.target for r in self.rankings))


def forecast_dir(db: Path) -> Path:
    return db.parent / f"{db.stem}.forecast"


def save_forecast(forecast: Forecast, db: Path) -> Path:
    """Save beside `db`, as SPEC.json. The rankings of targets or methods this forecast did not
    compute (`--target`, `--method`) are kept from the file's earlier forecast of the same
    model and sample; the costs are this forecast's."""
    path = forecast_dir(db) / f"{forecast.spec}.json"
    if path.is_file():
        try:
            old = Forecast.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            old = None
        if old and (old.model, old.sample, old.seed) == (forecast.model, forecast.sample, forecast.seed):
            done = {(r.target, r.method) for r in forecast.rankings}
            forecast = replace(forecast, rankings=[r for r in old.rankings if (r.target, r.method) not in done]
                               + forecast.rankings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(forecast.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path


def load_forecasts(db: Path, spec: str | None = None) -> list[Forecast]:
    """Every forecast saved beside `db` (only `spec`'s, if given)."""
    folder = forecast_dir(db)
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    out = []
    for path in paths:
        try:
            forecast = Forecast.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise StiltsError(f"forecast file {path} cannot be read ({exc})",
                              "delete it and forecast again: stilts forecast SPEC --db ...") from None
        if spec is None or forecast.spec == spec:
            out.append(forecast)
    return out
