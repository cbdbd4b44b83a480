"""The forecast methods on cached features (stilts_tui/forecast writes them; docs/forecast.md):

- TextEmb (Vu et al. 2020; Poth et al. 2021): a task is the mean of the pretrained encoder's
  mean-pooled vectors of its sampled train sequences; candidates rank by the cosine similarity of
  their vector to the target's. A mean is the same in any example order.
- LogME (You et al. 2021, analysis/logme.py): the evidence of the target's labels on the features
  of each intermediate's trained checkpoint on the target's sample; the pretrained model's own
  LogME (the `none` intermediate) is the reference a helpful intermediate should beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stilts_tui.analysis.forecast_data import MethodRanking
from stilts_tui.analysis.logme import logme
from stilts_tui.forecast.jobs import PRETRAINED, FeatureAnswer, FeatureSet


@dataclass
class Features:
    """The sets of a FeatureAnswer by (encoder, task), their arrays read once."""

    answer: FeatureAnswer
    _arrays: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def of(cls, answer: FeatureAnswer) -> Features:
        return cls(answer, {})

    def set(self, encoder: str, task: str) -> FeatureSet | None:
        return next((s for s in self.answer.sets if s.job.key == (encoder, task)), None)

    def arrays(self, s: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
        if s.job.key not in self._arrays:
            with np.load(s.path) as z:
                self._arrays[s.job.key] = (z["features"].astype(np.float64), z["labels"])
        return self._arrays[s.job.key]


def task_vector(features: np.ndarray) -> np.ndarray:
    return features.mean(axis=0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _cost(ranking: MethodRanking, sets: list[FeatureSet]) -> MethodRanking:
    ranking.forward_passes = sum(s.forward_passes for s in sets)
    ranking.seconds = sum(s.seconds for s in sets)
    ranking.cached_passes = sum(s.rows for s in sets if s.cached)
    return ranking


def textemb(feats: Features, target: str, candidates: list[str]) -> MethodRanking:
    own = feats.set(PRETRAINED, target)
    ranking = MethodRanking("textemb", target, {})
    if own is None:
        ranking.not_applicable = f"no pretrained features of {target}"
        return ranking
    vec = task_vector(feats.arrays(own)[0])
    used = [own]
    for c in candidates:
        s = feats.set(PRETRAINED, c)
        if s is None:
            ranking.missing.append(c)
            continue
        used.append(s)
        ranking.scores[c] = cosine(task_vector(feats.arrays(s)[0]), vec)
    return _cost(ranking, used)


def logme_ranking(feats: Features, target: str, candidates: list[str], missing: list[str]) -> MethodRanking:
    ranking = MethodRanking("logme", target, {}, missing=list(missing))
    base = feats.set(PRETRAINED, target)
    if base is None or not base.labelled:
        head = base.head if base else "its"
        ranking.not_applicable = (f"{target}'s {head} head labels tokens or spans, not sequences: LogME (one label "
                                  f"per feature vector) is not defined for it")
        return ranking
    def score(s: FeatureSet) -> float:
        return logme(*feats.arrays(s))

    ranking.reference = score(base)
    used = [base]
    for c in candidates:
        s = feats.set(c, target)
        if s is None:
            continue
        used.append(s)
        ranking.scores[c] = score(s)
    return _cost(ranking, used)
