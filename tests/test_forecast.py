"""Forecasting transfer, the numpy side (issue 35): LogME against the reference implementation
ported line by line, TextEmb's order invariance and seeded sample, the ranking scores against
hand-computed cases, and the forecast-vs-measured view on hand-made results."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from stilts_tui.analysis.forecast_data import Forecast, MethodRanking, load_forecasts, save_forecast
from stilts_tui.analysis.forecast_scores import (
    Features,
    cosine,
    logme_ranking,
    task_vector,
    textemb,
)
from stilts_tui.analysis.forecast_view import forecast_view, render_forecast, render_forecast_view
from stilts_tui.analysis.logme import logme
from stilts_tui.analysis.ranking import average_ranks, forecast_order, ndcg, regret_at, spearman
from stilts_tui.forecast.jobs import PRETRAINED, FeatureAnswer, FeatureJob, FeatureSet
from stilts_tui.forecast.rows import draw_sample
from tests.test_matrix import rec

# ------------------------------------------------------------------ the reference LogME
# thuml/LogME LogME.py at commit 56551ca, l. 47-57 (truncated_svd) and l. 61-181 (the LogME
# class with `_fit = _fit_fixed_point`), line by line; only numba's @njit is left out.


def ref_truncated_svd(x):
    u, s, vh = np.linalg.svd(x.transpose() @ x)
    s = np.sqrt(s)
    u_times_sigma = x @ vh.transpose()
    k = np.sum((s > 1e-10) * 1)  # rank of f
    s = s.reshape(-1, 1)
    s = s[:k]
    vh = vh[:k]
    u = u_times_sigma[:, :k] / s.reshape(1, -1)
    return u, s, vh


class RefLogME(object):  # noqa: UP004  (as the reference writes it)
    def __init__(self, regression=False):
        self.regression = regression
        self.fitted = False
        self.reset()

    def reset(self):
        self.num_dim = 0
        self.alphas = []  # alpha for each class / dimension
        self.betas = []  # beta for each class / dimension
        self.ms = []  # m for each class / dimension

    def _fit_fixed_point(self, f: np.ndarray, y: np.ndarray):
        N, D = f.shape  # k = min(N, D)
        if N > D:  # direct SVD may be expensive
            u, s, vh = ref_truncated_svd(f)
        else:
            u, s, vh = np.linalg.svd(f, full_matrices=False)
        s = s.reshape(-1, 1)
        sigma = (s ** 2)

        evidences = []
        self.num_dim = y.shape[1] if self.regression else int(y.max() + 1)
        for i in range(self.num_dim):
            y_ = y[:, i] if self.regression else (y == i).astype(np.float64)
            y_ = y_.reshape(-1, 1)
            x = u.T @ y_  # x has shape [k, 1], but actually x should have shape [N, 1]
            x2 = x ** 2
            res_x2 = (y_ ** 2).sum() - x2.sum()  # if k < N, we compute sum of xi for 0 singular values directly

            alpha, beta = 1.0, 1.0
            for _ in range(11):
                t = alpha / beta
                gamma = (sigma / (sigma + t)).sum()
                m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
                res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
                alpha = gamma / (m2 + 1e-5)
                beta = (N - gamma) / (res2 + 1e-5)
                t_ = alpha / beta
                evidence = D / 2.0 * np.log(alpha) \
                    + N / 2.0 * np.log(beta) \
                    - 0.5 * np.sum(np.log(alpha + beta * sigma)) \
                    - beta / 2.0 * res2 \
                    - alpha / 2.0 * m2 \
                    - N / 2.0 * np.log(2 * np.pi)
                evidence /= N
                if abs(t_ - t) / t <= 1e-3:  # abs(t_ - t) <= 1e-5 or abs(1 / t_ - 1 / t) <= 1e-5:
                    break
            evidence = D / 2.0 * np.log(alpha) \
                + N / 2.0 * np.log(beta) \
                - 0.5 * np.sum(np.log(alpha + beta * sigma)) \
                - beta / 2.0 * res2 \
                - alpha / 2.0 * m2 \
                - N / 2.0 * np.log(2 * np.pi)
            evidence /= N
            m = 1.0 / (t + sigma) * s * x
            m = (vh.T @ m).reshape(-1)
            evidences.append(evidence)
            self.alphas.append(alpha)
            self.betas.append(beta)
            self.ms.append(m)
        self.ms = np.stack(self.ms)
        return np.mean(evidences)

    _fit = _fit_fixed_point

    def fit(self, f: np.ndarray, y: np.ndarray):
        if self.fitted:
            warnings.warn('re-fitting for new data. old parameters cleared.')  # noqa: B028
            self.reset()
        else:
            self.fitted = True
        f = f.astype(np.float64)
        if self.regression:
            y = y.astype(np.float64)
            if len(y.shape) == 1:
                y = y.reshape(-1, 1)
        return self._fit(f, y)


@pytest.mark.parametrize(("n", "d", "classes", "seed"), [(200, 32, 2, 0), (50, 64, 3, 1), (300, 16, 5, 2),
                                                         (64, 64, 2, 3), (500, 8, 4, 4), (40, 384, 2, 5)])
def test_logme_equals_the_reference_on_random_features_and_labels(n, d, classes, seed):
    """Both branches (more rows than columns: the truncated SVD; fewer: the direct one)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d)
    y = rng.integers(0, classes, size=n)
    y[:classes] = np.arange(classes)  # every class present
    assert logme(f, y) == pytest.approx(RefLogME().fit(f, y), abs=1e-6)


def test_logme_equals_the_reference_on_informative_and_low_rank_features():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=120)
    informative = rng.normal(size=(120, 20)) + y[:, None] * 2.0
    low_rank = rng.normal(size=(120, 3)) @ rng.normal(size=(3, 30))   # rank 3 < 30 columns
    for f in (informative, low_rank, informative.astype(np.float32)):
        assert logme(f, y) == pytest.approx(RefLogME().fit(f, y), abs=1e-6)
    # and it means something: features that carry the labels score higher than noise
    assert logme(informative, y) > logme(rng.normal(size=(120, 20)), y)


def test_logme_refuses_mismatched_rows():
    from stilts_tui.errors import StiltsError

    with pytest.raises(StiltsError, match="one label per feature row"):
        logme(np.zeros((5, 3)), np.zeros(4, dtype=int))


# ------------------------------------------------------------------ TextEmb


def test_textemb_similarity_is_invariant_to_example_order():
    rng = np.random.default_rng(0)
    target, source = rng.normal(size=(300, 48)), rng.normal(size=(200, 48)) + 0.3
    before = cosine(task_vector(source), task_vector(target))
    after = cosine(task_vector(source[rng.permutation(200)]), task_vector(target[rng.permutation(300)]))
    assert after == pytest.approx(before, abs=1e-12)
    assert cosine(task_vector(target), task_vector(target)) == pytest.approx(1.0)


def test_the_sample_is_seeded_drawn_without_replacement_and_in_file_order():
    examples = [f"ex{i}" for i in range(1000)]
    a, b = draw_sample(examples, 50, 0), draw_sample(examples, 50, 0)
    assert a == b and len(set(a)) == 50
    assert a == sorted(a, key=examples.index)
    assert draw_sample(examples, 50, 1) != a
    assert draw_sample(examples[:10], 50, 0) == examples[:10]


# ------------------------------------------------------------------ ranking scores, by hand

FORECAST = {"a": 0.9, "b": 0.5, "c": 0.1}
SCORE = {"a": 0.60, "b": 0.70, "c": 0.65}


def test_regret_at_k_by_hand():
    # the forecast's top 1 is a (0.60); the best measured is b (0.70): (0.70 - 0.60) / 0.70
    assert regret_at(FORECAST, SCORE, 1) == pytest.approx(0.1 / 0.7)
    assert regret_at(FORECAST, SCORE, 2) == 0.0     # top 2 = a, b: b is the best
    assert regret_at(FORECAST, SCORE, 3) == 0.0
    assert regret_at({"b": 0.1, "a": 0.2}, SCORE, 1) == pytest.approx(0.1 / 0.7)
    # only candidates both sides know count; a best at or below 0 gives no ratio
    assert regret_at({**FORECAST, "z": 5.0}, SCORE, 1) == pytest.approx(0.1 / 0.7)
    assert regret_at(FORECAST, {"a": -0.1, "b": 0.0}, 1) is None
    assert regret_at({}, SCORE, 1) is None


def test_ndcg_by_hand():
    # forecast order a, b, c: 0.60/log2(2) + 0.70/log2(3) + 0.65/log2(4) = 1.3666508275
    # measured order b, c, a: 0.70/log2(2) + 0.65/log2(3) + 0.60/log2(4) = 1.4101043398
    dcg = 0.60 + 0.70 / math.log2(3) + 0.65 / 2
    ideal = 0.70 + 0.65 / math.log2(3) + 0.60 / 2
    assert ndcg(FORECAST, SCORE) == pytest.approx(dcg / ideal) == pytest.approx(0.9691841865)
    assert ndcg({"b": 3, "c": 2, "a": 1}, SCORE) == pytest.approx(1.0)
    assert ndcg(FORECAST, {"a": -0.1, "b": 0.2}) is None   # negative relevance (an MCC below 0)


def test_spearman_by_hand_and_with_ties():
    # ranks: forecast c1 b2 a3, measured a1 c2 b3; d = (2, -1, -1): 1 - 6*6 / (3*8) = -0.5
    assert spearman(FORECAST, SCORE) == pytest.approx(-0.5)
    assert spearman({"a": 1, "b": 2, "c": 3}, {"a": 10, "b": 20, "c": 30}) == pytest.approx(1.0)
    # ties share their average rank: (2.5, 2.5, 1) against (1, 2, 3) -> -1.5 / sqrt(1.5 * 2)
    tied = spearman({"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 1.0, "b": 2.0, "c": 3.0})
    assert tied == pytest.approx(-1.5 / math.sqrt(3.0))
    assert tied == pytest.approx(scipy.stats.spearmanr([1, 1, 0], [1, 2, 3]).statistic)
    assert list(average_ranks([3.0, 1.0, 3.0, 2.0])) == [3.5, 1.0, 3.5, 2.0]
    assert spearman({"a": 1.0}, {"a": 1.0}) is None
    assert spearman({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 2.0}) is None   # a constant side


def test_forecast_ties_break_by_name():
    assert forecast_order({"b": 1.0, "a": 1.0, "c": 2.0}) == ["c", "a", "b"]


# ------------------------------------------------------------------ methods on feature sets


def _set(tmp: Path, encoder: str, task: str, features: np.ndarray, labels: np.ndarray | None, head: str = "classification",
         cached: bool = False) -> FeatureSet:
    job = FeatureJob(encoder, "m", None if encoder == PRETRAINED else f"/ckpt/{encoder}", task, None, 64, 100, 0)
    path = tmp / f"{encoder}-{task}.npz"
    np.savez(path, features=features.astype(np.float32), labels=np.asarray([] if labels is None else labels, dtype=np.int64),
             examples=np.int64(len(features)))
    return FeatureSet(job, str(path), len(features), len(features), features.shape[1], labels is not None, head,
                      0 if cached else len(features), 0.0 if cached else 1.5, cached)


def test_textemb_and_logme_rank_from_feature_sets(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=80)
    target = rng.normal(size=(80, 16))
    near = target[rng.permutation(80)] + rng.normal(scale=0.1, size=(80, 16))
    far = -target + rng.normal(scale=0.1, size=(80, 16))
    sets = (_set(tmp_path, PRETRAINED, "t", target, y), _set(tmp_path, PRETRAINED, "near", near, None),
            _set(tmp_path, PRETRAINED, "far", far, None, cached=True),
            _set(tmp_path, "near", "t", np.c_[target, y * 3.0], y), _set(tmp_path, "far", "t", target, y))
    feats = Features.of(FeatureAnswer(sets))
    te = textemb(feats, "t", ["near", "far"])
    assert te.order() == ["near", "far"] and te.scores["near"] > 0.9 and te.scores["far"] < -0.9
    assert (te.forward_passes, te.cached_passes) == (160, 80)
    lm = logme_ranking(feats, "t", ["near", "far", "gone"], ["gone"])
    assert lm.order() == ["near", "far"] and lm.missing == ["gone"]
    assert lm.reference == pytest.approx(logme(target, y), abs=1e-6) == pytest.approx(lm.scores["far"], abs=1e-6)
    # a target whose head labels tokens: LogME says it does not apply
    tag = Features.of(FeatureAnswer((_set(tmp_path, PRETRAINED, "tags", target, None, head="tagging"),)))
    na = logme_ranking(tag, "tags", ["near"], [])
    assert not na.scores and "not defined" in na.not_applicable and "tagging" in na.not_applicable


# ------------------------------------------------------------------ the view


def measured_records() -> list[dict]:
    """rte: none 0.60, A +0.10 (clearly best), B +0.05, C +0.045 (C's interval overlaps B's); two seeds x two lrs."""
    out = []
    for inter, base in (("none", 0.60), ("A", 0.70), ("B", 0.65), ("C", 0.645)):
        for i, (lr, seed) in enumerate([(1e-5, 1), (1e-5, 2), (2e-5, 1), (2e-5, 2)]):
            out.append(rec(inter, "rte", base + (0.002, -0.002, 0.001, -0.001)[i], lr=lr, seed=seed))
    return out


def a_forecast() -> Forecast:
    return Forecast("hand", "m", 100, 0, [
        MethodRanking("textemb", "rte", {"A": 0.2, "B": 0.9, "C": 0.5}, 300, 2.0),
        MethodRanking("logme", "rte", {"A": -0.5, "B": -0.6, "C": -0.7}, 300, 3.0, reference=-0.8, missing=["D"])])


def test_the_view_puts_each_ranking_beside_the_measured_one_with_scores():
    view = forecast_view(measured_records(), [a_forecast()], resamples=200)
    rows = {(r[1], r[3]): dict(zip(view.rankings.columns, r, strict=True)) for r in view.rankings.rows}
    assert rows[("TextEmb", "B")]["rank"] == 1 and rows[("TextEmb", "B")]["Δ mean rank"] == 2
    assert rows[("TextEmb", "A")]["Δ mean"] == pytest.approx(0.10) and rows[("TextEmb", "A")]["Δ mean vs best"] == "best"
    assert rows[("LogME", "C")]["Δ mean vs best"] == "<"
    scores = {(r[1], r[2], r[0]): dict(zip(view.scores.columns, r, strict=True)) for r in view.scores.rows}
    te = scores[("TextEmb", "Δ mean", "rte")]
    # TextEmb's top 1 is B (0.65); the best is A (0.70)
    assert te["Regret@1 %"] == pytest.approx((0.70 - 0.65) / 0.70 * 100, abs=1e-9)
    assert te["Regret@3 %"] == 0.0 and te["candidates"] == 3
    # TextEmb ranks B > C > A, measured A > B > C: d = (2, -1, -1) -> -0.5
    assert te["Spearman ρ"] == pytest.approx(-0.5)
    lm = scores[("LogME", "Δ mean", "rte")]
    assert lm["Regret@1 %"] == 0.0 and lm["Spearman ρ"] == pytest.approx(1.0) and lm["NDCG"] == pytest.approx(1.0)
    assert scores[("TextEmb", "Δ mean", "average")]["Spearman ρ"] == pytest.approx(-0.5)


def test_tied_measurements_share_their_rank_and_are_all_best():
    from stilts_tui.analysis.forecast_view import measured_ranks

    assert measured_ranks({"a": 0.0, "b": 0.0, "c": -0.1}) == {"a": 1, "b": 1, "c": 3}
    # every run degenerate: Δ 0 everywhere, an MCC of 0; nothing to score, nothing singled out
    records = [rec(i, "cola", 0.0, lr=lr, seed=s, metric="mcc") for i in ("none", "A", "B") for lr in (1e-5, 2e-5)
               for s in (1, 2)]
    f = Forecast("hand", "m", 10, 0, [MethodRanking("textemb", "cola", {"A": 0.9, "B": 0.1})])
    view = forecast_view(records, [f], resamples=100)
    assert {r[view.rankings.columns.index("Δ mean vs best")] for r in view.rankings.rows} == {"best"}
    assert {r[view.rankings.columns.index("Δ mean rank")] for r in view.rankings.rows} == {1}
    row = dict(zip(view.scores.columns, view.scores.rows[0], strict=True))
    assert row["Regret@1 %"] is None and row["NDCG"] is None and row["Spearman ρ"] is None


def test_the_view_in_every_format_and_its_file(tmp_path):
    records, forecasts = measured_records(), [a_forecast()]
    text = render_forecast_view(records, forecasts, "table", resamples=100)
    assert "forecast vs measured" in text and "Regret@1 %" in text and "95% CI" in text
    flat = list(csv.DictReader(io.StringIO(render_forecast_view(records, forecasts, "csv", resamples=100))))
    assert len(flat) == 6 and {r["method"] for r in flat} == {"textemb", "logme"}
    assert float(next(r for r in flat if r["method"] == "logme" and r["intermediate"] == "A")["Δ mean"]) == \
        pytest.approx(0.10)
    as_json = json.loads(render_forecast_view(records, forecasts, "json", resamples=100))
    assert as_json[0]["target"] == "rte" and "Δ mean Spearman ρ" in as_json[0]
    assert "|" in render_forecast_view(records, forecasts, "markdown", resamples=100)
    assert "\\begin{tabular}" in render_forecast_view(records, forecasts, "latex", resamples=100)
    assert "no forecast saved" in render_forecast_view(records, [], "table")
    from stilts_tui.analysis.forecast_view import write_forecast_view
    from stilts_tui.errors import StiltsError

    assert write_forecast_view(tmp_path / "out" / "view.md", records, forecasts, resamples=100) == "markdown"
    assert "**forecast vs measured" in (tmp_path / "out" / "view.md").read_text(encoding="utf-8")
    with pytest.raises(StiltsError, match="is a table"):
        write_forecast_view(tmp_path / "view.png", records, forecasts)


def test_a_forecast_round_trips_through_its_file(tmp_path):
    db = tmp_path / "results.json"
    f = a_forecast()
    save_forecast(f, db)
    (back,) = load_forecasts(db)
    assert back == f and load_forecasts(db, "other") == []
    # a later forecast of one method keeps the other method's ranking
    save_forecast(Forecast("hand", "m", 100, 0, [MethodRanking("textemb", "rte", {"A": 1.0})]), db)
    (merged,) = load_forecasts(db)
    assert merged.ranking("rte", "textemb").scores == {"A": 1.0} and merged.ranking("rte", "logme") == f.rankings[1]
    text = render_forecast(back, "table")
    assert "none (the pretrained model)" in text and "no checkpoint: D" in text
    (tmp_path / "results.forecast" / "bad.json").write_text("{", encoding="utf-8")
    from stilts_tui.errors import StiltsError

    with pytest.raises(StiltsError, match="cannot be read"):
        load_forecasts(db)


async def test_the_results_screen_shows_the_forecast_beside_the_measured_ranking(tmp_path):
    from stilts_tui.app.app import StiltsApp
    from stilts_tui.bench.results import write_store
    from tests.conftest import screen_text, until

    db = tmp_path / "results.json"
    write_store(db, measured_records())
    save_forecast(a_forecast(), db)
    app = StiltsApp(db, refresh_s=60)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "view pairs" in screen_text(app), what="the results screen")
        while app.screen.view != "forecast":
            await pilot.press("v")
        await until(pilot, lambda: "forecast vs measured" in screen_text(app) and "Regret@1 %" in screen_text(app),
                    what="the forecast view")
