"""Forecasting transfer before paying for it (`stilts forecast`, the Plan screen): which features
a spec's forecast needs, computed by `python -m stilts_tui.forecast` in a process of its own (so
nothing here imports torch), scored by the analysis' TextEmb and LogME, saved beside the results
file for `stilts results --view forecast`. docs/forecast.md says what each method computes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stilts_tui.analysis.forecast_data import (
    METHODS,
    Forecast,
    MethodRanking,
    forecast_dir,
    save_forecast,
)
from stilts_tui.analysis.forecast_scores import Features, logme_ranking, textemb
from stilts_tui.domain.run import Run, runs_of
from stilts_tui.errors import StiltsError
from stilts_tui.forecast.jobs import PRETRAINED, FeatureAnswer, FeatureJob, FeatureRequest
from stilts_tui.ops.finished import read_records
from stilts_tui.sweep.spec import Spec, load_spec
from stilts_tui.tasks import get_task

DEFAULT_SAMPLE = 256
DEFAULT_SEED = 0


@dataclass(frozen=True)
class ForecastAsk:
    spec_path: Path
    db: Path
    targets: tuple[str, ...] = ()          # default: every target of the spec
    methods: tuple[str, ...] = METHODS
    sample: int = DEFAULT_SAMPLE
    seed: int = DEFAULT_SEED


def parse_methods(text: str) -> tuple[str, ...]:
    methods = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad:
        raise StiltsError(f"--method {text!r}: " + (f"unknown method {bad[0]!r}" if bad else "no method given"),
                          "choose from " + ", ".join(METHODS) + " (a comma list runs several: textemb,logme)")
    return methods


def task_of(intermediate: str) -> str:
    """An intermediate's task: `cola@2000` (a train-size variant) reads cola's data."""
    return intermediate.partition("@")[0]


def candidates_for(spec: Spec, target: str) -> list[str]:
    """The spec's intermediates but `none` (the baseline) and the target itself: a task is always
    most similar to itself, and Poth et al. rank other tasks only."""
    return [i for i in spec.intermediates if i != "none" and task_of(i) != target]


def checkpoints(records: Iterable[Run | Mapping[str, Any]], model: str) -> dict[str, Path]:
    """intermediate -> its latest finished run's checkpoint folder that still exists."""
    found: dict[str, tuple[float, Path]] = {}
    for r in runs_of(records):
        if r.kind != "intermediate" or not r.finished or r.model != model:
            continue
        folder = Path(r.output_dir) / "checkpoint"
        when = r.finished_at or 0.0
        if folder.is_dir() and (r.intermediate not in found or when > found[r.intermediate][0]):
            found[r.intermediate] = (when, folder)
    return {name: folder for name, (_, folder) in found.items()}


def _job(spec: Spec, encoder: str, checkpoint: Path | None, task: str, ask: ForecastAsk) -> FeatureJob:
    settings = spec.task_settings(task)
    return FeatureJob(encoder=encoder, model=spec.model, checkpoint=str(checkpoint) if checkpoint else None,
                      task=task, data_dir=settings.get("data_dir") or spec.data_dir,
                      max_length=int(settings.get("max_length") or get_task(task).max_length),
                      sample=ask.sample, seed=ask.seed)


@dataclass
class FeaturePlan:
    spec: Spec
    targets: list[str]
    request: FeatureRequest
    missing: dict[str, list[str]]          # target -> candidates without a checkpoint (LogME)


def plan_features(ask: ForecastAsk, spec: Spec | None = None,
                  records: Iterable[Run | Mapping[str, Any]] | None = None) -> FeaturePlan:
    spec = spec or load_spec(ask.spec_path)
    if ask.sample < 2:
        raise StiltsError("--sample must be at least 2 (examples drawn from each task's train split)")
    unknown = [t for t in ask.targets if t not in spec.targets]
    if unknown:
        raise StiltsError(f"--target {unknown[0]!r} is not a target of {spec.name}",
                          "the spec's targets: " + ", ".join(spec.targets))
    targets = list(ask.targets) or list(spec.targets)
    ckpts = checkpoints(read_records(ask.db) if records is None else records, spec.model)
    jobs: dict[tuple[str, str], FeatureJob] = {}
    missing: dict[str, list[str]] = {}
    for t in targets:
        jobs.setdefault((PRETRAINED, t), _job(spec, PRETRAINED, None, t, ask))
        for c in candidates_for(spec, t):
            if "textemb" in ask.methods:
                jobs.setdefault((PRETRAINED, task_of(c)), _job(spec, PRETRAINED, None, task_of(c), ask))
            if "logme" in ask.methods:
                if c in ckpts:
                    jobs.setdefault((c, t), _job(spec, c, ckpts[c], t, ask))
                else:
                    missing.setdefault(t, []).append(c)
    request = FeatureRequest(tuple(jobs.values()), str(forecast_dir(ask.db) / "features"), tuple(spec.task_files))
    return FeaturePlan(spec, targets, request, missing)


def extract(request: FeatureRequest, quiet: bool = False) -> FeatureAnswer:
    """Run the feature extraction in its own process. Its progress lines are passed on to stderr
    as they come (unless `quiet`); its error, if any, becomes this process's StiltsError."""
    with tempfile.TemporaryDirectory(prefix="stilts-forecast-") as tmp:
        ask_path, answer_path = Path(tmp) / "request.json", Path(tmp) / "answer.json"
        ask_path.write_text(request.to_json(), encoding="utf-8")
        problem, fix = "", ""
        with subprocess.Popen([sys.executable, "-m", "stilts_tui.forecast", str(ask_path), str(answer_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:
                said = line.strip()
                if said.startswith("error: "):
                    problem = said[len("error: "):]
                elif said.startswith("fix: ") and problem:
                    fix = said[len("fix: "):]
                elif not quiet:
                    sys.stderr.write(line)
        if proc.returncode != 0:
            raise StiltsError(problem or f"feature extraction failed (exit {proc.returncode})",
                              fix or "run it again; the messages above say what failed")
        return FeatureAnswer.read(answer_path)


def score(plan: FeaturePlan, answer: FeatureAnswer, ask: ForecastAsk) -> Forecast:
    feats = Features.of(answer)
    rankings: list[MethodRanking] = []
    for t in plan.targets:
        cands = candidates_for(plan.spec, t)
        if "textemb" in ask.methods:
            rankings.append(_renamed(textemb(feats, t, sorted({task_of(c) for c in cands})), cands))
        if "logme" in ask.methods:
            rankings.append(logme_ranking(feats, t, cands, plan.missing.get(t, [])))
    notes = [f"{c} reads {task_of(c)}'s data: TextEmb gives it {task_of(c)}'s similarity"
             for c in plan.spec.intermediates if "@" in c]
    return Forecast(plan.spec.name, plan.spec.model, ask.sample, ask.seed, rankings, answer.load_seconds,
                    sum(s.forward_passes for s in answer.sets), sum(s.seconds for s in answer.sets), notes)


def _renamed(ranking: MethodRanking, candidates: list[str]) -> MethodRanking:
    """TextEmb scores tasks; each candidate intermediate gets its task's."""
    ranking.scores = {c: ranking.scores[task_of(c)] for c in candidates if task_of(c) in ranking.scores}
    return ranking


def forecast(ask: ForecastAsk, quiet: bool = False) -> tuple[Forecast, Path, float]:
    """(the forecast, where it was saved, its wall seconds)."""
    start = time.perf_counter()
    plan = plan_features(ask)
    answer = extract(plan.request, quiet=quiet)
    result = score(plan, answer, ask)
    return result, save_forecast(result, ask.db), time.perf_counter() - start


def missing_fix(spec_path: Path, db: Path) -> str:
    return (f"train them: stilts run {spec_path} --db {db} runs each intermediate first (its target runs wait on "
            f"it); stilts stop --all --db {db} once they have finished, then forecast again")


@dataclass
class PlanForecast:
    """What the Plan screen shows: the forecast, and per candidate intermediate the device-hours of
    its target runs still to run (None where no finished run of the same model and task measures
    them): what dropping it saves."""

    forecast: Forecast
    hours: dict[str, float | None]


def plan_forecast(spec_path: Path, db: Path) -> PlanForecast:
    from stilts_tui.ops.plan import plan_spec
    from stilts_tui.runner.estimate import plan_estimate

    spec = load_spec(spec_path)
    result, _, _ = forecast(ForecastAsk(spec_path, db), quiet=True)
    plan = plan_spec(spec, db)
    hours: dict[str, float | None] = {}
    for c in spec.intermediates:
        runs = [r for r in plan.todo if r.kind == "target" and r.intermediate == c]
        est = plan_estimate(runs, plan.records, plan.options) if runs else None
        hours[c] = 0.0 if est is None else est.seconds / 3600 if est.measured == est.total else None
    return PlanForecast(result, hours)
