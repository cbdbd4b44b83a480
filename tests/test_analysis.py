"""Statistics, violins, paper tables and exports, against independent computations."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from runner_helpers import stilts
from scipy import stats as sps

from stilts_tui.analysis.export import to_csv, to_latex, to_markdown
from stilts_tui.analysis.filters import apply_filters, parse_filters
from stilts_tui.analysis.matrix import build_matrix, ranking
from stilts_tui.analysis.matrix_views import matrix_heat
from stilts_tui.analysis.report import render_results, violins_for
from stilts_tui.analysis.stats import (
    PERMUTATIONS,
    bootstrap_ci,
    pair_stats,
    permutation_p,
    permutation_test,
)
from stilts_tui.analysis.tables import pair_records, pair_table, size_points, table2, table3
from stilts_tui.analysis.violin import Violin, kde, render_violins
from stilts_tui.bench.results import synthetic_records, write_store
from stilts_tui.domain.run import Run
from stilts_tui.errors import StiltsError


def run(inter, target, score, seed=1, lr=1e-5, metric="accuracy", threshold=0.5, random=0.5, kind="target", status="finished"):
    cfg = {"kind": kind, "task": target, "intermediate": inter, "lr": lr, "batch_size": 16, "warmup_ratio": 0.0,
           "seed": seed, "epochs": 3, "max_length": 128, "model": "m", "init_from": "x" if inter != "none" else None}
    return {"run_id": f"{inter}-{target}-{seed}-{lr}", "kind": kind, "intermediate": inter, "target": target, "lr": lr,
            "batch_size": 16, "warmup_ratio": 0.0, "seed": seed, "status": status, "score": score, "metric": metric,
            "config": cfg, "metrics": {"baselines": {"degenerate_threshold": threshold, "random": random}}}


@pytest.fixture(scope="module")
def two_groups():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.62, 0.04, 24), rng.normal(0.66, 0.05, 24)
    runs = [run("none", "rte", float(x), seed=i) for i, x in enumerate(a)]
    runs += [run("hellaswag", "rte", float(x), seed=i) for i, x in enumerate(b)]
    return a, b, runs


def test_descriptive_statistics_match_numpy(two_groups):
    a, b, runs = two_groups
    none, hs = pair_stats(runs, resamples=0)
    assert (none.intermediate, hs.intermediate) == ("none", "hellaswag")
    for s, x in ((none, a), (hs, b)):
        assert s.n == len(x) and s.min == pytest.approx(x.min()) and s.best == pytest.approx(x.max())
        assert s.mean == pytest.approx(x.mean()) and s.median == pytest.approx(np.median(x))
        assert s.std == pytest.approx(np.std(x, ddof=1))
    assert hs.delta_mean == pytest.approx(b.mean() - a.mean()) and hs.delta_best == pytest.approx(b.max() - a.max())
    # paired over identical grid points (same seed here): by hand
    diffs = b - a
    assert hs.paired_n == 24 and hs.paired_mean_diff == pytest.approx(diffs.mean())
    assert hs.win_rate == pytest.approx((diffs > 0).mean())


def test_bootstrap_and_permutation_agree_with_scipy(two_groups):
    a, b, _ = two_groups
    (m_lo, m_hi), (b_lo, b_hi) = bootstrap_ci(a, 10_000, np.random.default_rng(0))
    ref = sps.bootstrap((a,), np.mean, n_resamples=10_000, method="percentile", random_state=1).confidence_interval
    assert m_lo == pytest.approx(ref.low, abs=0.003) and m_hi == pytest.approx(ref.high, abs=0.003)
    ref_best = sps.bootstrap((a,), np.max, n_resamples=10_000, method="percentile", random_state=1).confidence_interval
    assert b_lo == pytest.approx(ref_best.low, abs=0.005) and b_hi == pytest.approx(ref_best.high, abs=1e-9)

    def diff(x, y, axis):
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    ref_p = sps.permutation_test((b, a), diff, n_resamples=20_000, alternative="two-sided", random_state=1).pvalue
    ours = permutation_test(b, a)  # 24 vs 24: too many splits to enumerate, random permutations
    assert not ours.exact and ours.draws == PERMUTATIONS
    assert ours.p == pytest.approx(ref_p, abs=0.02)
    # clearly different groups: the smallest p the draws allow; identical groups: p near 1
    assert permutation_p(a + 1.0, a) == pytest.approx(1 / (PERMUTATIONS + 1))
    assert permutation_p(a, a.copy()) > 0.9
    assert permutation_p(b, a) == permutation_p(b[::-1], a)  # the same data, the same p, in any order


def test_the_permutation_p_of_a_hand_made_4_vs_4_is_the_exact_one():
    from itertools import combinations

    a, b = np.array([0.70, 0.72, 0.69, 0.75]), np.array([0.66, 0.71, 0.64, 0.68])
    pooled = np.concatenate([a, b])
    observed = abs(a.mean() - b.mean())
    extreme = 0
    for first in combinations(range(8), 4):  # all 70 splits, by hand
        rest = [i for i in range(8) if i not in first]
        extreme += abs(pooled[list(first)].mean() - pooled[rest].mean()) >= observed - 1e-12
    test = permutation_test(a, b)
    assert test.exact and test.draws == 70
    assert test.p == pytest.approx(extreme / 70) and extreme == 8  # 0.114: by hand, not a draw
    assert sps.permutation_test((a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                permutation_type="independent", n_resamples=np.inf,
                                alternative="two-sided").pvalue == pytest.approx(test.p)
    # the same p wherever the comparison is shown: pairs table, matrix, ranking, report (any resamples)
    runs = [run("none", "rte", float(x), seed=i) for i, x in enumerate(b)]
    runs += [run("cola", "rte", float(x), seed=i) for i, x in enumerate(a)]
    pairs = [s for s in pair_stats(runs, resamples=1000) if s.intermediate == "cola"][0]
    report = [s for s in pair_stats(runs, resamples=10_000, seed=5) if s.intermediate == "cola"][0]
    cell = build_matrix(runs, ("mean",), resamples=1000).cell("rte", "cola", "mean")
    _, ranked = ranking(runs, "rte", resamples=500)
    assert pairs.p_value == report.p_value == cell.p == ranked[0].p == pytest.approx(8 / 70)
    for legend in (pair_table([pairs], 1000, 0).note, "\n".join(matrix_heat(build_matrix(runs, ("mean",), mark="holm")).legend)):
        assert "exact over every split" in legend and f"at most {PERMUTATIONS:,})" in legend


def test_degenerate_counting_on_hand_made_cases():
    # binary (RTE: majority 146/277 is the threshold), 3-way (MedNLI: majority), 4-way MC (1/4 + 0.01), MCC (<= 0)
    assert Run.of(run("none", "rte", 146 / 277, threshold=146 / 277)).degenerate
    assert not Run.of(run("none", "rte", 147 / 277, threshold=146 / 277)).degenerate
    assert Run.of(run("none", "mednli", 0.333, threshold=0.3333)).degenerate
    assert Run.of(run("none", "hellaswag", 0.259, threshold=0.26)).degenerate
    assert not Run.of(run("none", "hellaswag", 0.2601, threshold=0.26)).degenerate
    assert Run.of(run("none", "cola", 0.0, metric="mcc", threshold=0.0)).degenerate
    assert Run.of(run("none", "cola", -0.02, metric="mcc", threshold=0.0)).degenerate
    assert not Run.of(run("none", "cola", 0.01, metric="mcc", threshold=0.0)).degenerate
    runs = [run("none", "cola", s, seed=i, metric="mcc", threshold=0.0) for i, s in enumerate([0.0, 0.0, 0.4, 0.5])]
    (s,) = pair_stats(runs, resamples=0)
    assert s.degenerate == 2 and s.mean_nondegenerate == pytest.approx(0.45) and s.guess == 0.0


def test_filters_compare_numbers_as_numbers():
    runs = [run("none", "rte", 0.6, lr=1e-5), run("none", "rte", 0.7, lr=2e-5, seed=42)]
    assert [r.score for r in apply_filters(runs, parse_filters(["lr=0.00001"]))] == [0.6]
    assert [r.score for r in apply_filters(runs, parse_filters(["seed=42", "epochs=3"]))] == [0.7]
    with pytest.raises(StiltsError, match="no run has a field 'learning_rate'"):
        apply_filters(runs, parse_filters(["learning_rate=1e-5"]))
    with pytest.raises(StiltsError, match="not key=value"):
        parse_filters(["lr"])


# ------------------------------------------------------------------ violins


def canvas_rows(text: str) -> tuple[list[str], list[int]]:
    """The chart's rows inside its frame, and the columns of its x ticks (┬ on the bottom frame)."""
    lines = text.splitlines()
    top = next(i for i, ln in enumerate(lines) if "┌" in ln)
    bottom = next(i for i, ln in enumerate(lines) if "└" in ln)
    return lines[top + 1 : bottom], [i for i, ch in enumerate(lines[bottom]) if ch == "┬"]


def dots(text: str, violin: int = 0) -> list[int]:
    """Braille points per chart row within one violin's columns: the drawn width at 2×4 resolution."""
    rows, ticks = canvas_rows(text)
    gap = ticks[1] - ticks[0] if len(ticks) > 1 else 20
    lo, hi = ticks[violin] - gap // 2, ticks[violin] + gap // 2
    return [sum(bin(ord(ch) - 0x2800).count("1") for ch in row[lo:hi] if 0x2800 <= ord(ch) <= 0x28FF) for row in rows]


def value_of_row(text: str):
    """Row index -> value, from two of plotext's labelled y ticks."""
    rows, _ = canvas_rows(text)
    labelled = [(i, float(m.group(1))) for i, r in enumerate(rows) if (m := re.match(r"\s*(-?[\d.]+)[┤┼]", r))]
    (i0, v0), (i1, v1) = labelled[0], labelled[-1]
    return lambda i: v0 + (v1 - v0) * (i - i0) / (i1 - i0)


def test_violin_shape_follows_the_kde_on_the_rendered_characters():
    rng = np.random.default_rng(0)
    uni = list(rng.normal(60, 2, 200))
    text = render_violins("t", [Violin("uni", uni)], height=21)
    w = dots(text)
    at = value_of_row(text)
    assert abs(at(w.index(max(w))) - 60) < 1.5  # widest at the mode of N(60, 2)
    assert f"mean {np.mean(uni):.1f}" in text and f"min {min(uni):.1f}" in text and f"best {max(uni):.1f}" in text
    assert "◆" in canvas_rows(text)[0][round(np.interp(np.mean(uni), [at(20), at(0)], [20, 0]))]  # ◆ on the mean's row

    bi = list(np.r_[rng.normal(50, 1.5, 100), rng.normal(70, 1.5, 100)])
    wb = dots(render_violins("t", [Violin("bi", bi)], height=21))
    inked = [i for i, d in enumerate(wb) if d]
    body = wb[inked[0] : inked[-1] + 1]
    third = len(body) // 3
    upper, waist, lower = max(body[:third]), min(body[third : 2 * third]), max(body[2 * third :])
    assert upper > 3 * max(waist, 1) and lower > 3 * max(waist, 1)  # two bulges, a narrow waist between

    both = render_violins("t", [Violin("tight", list(rng.normal(60, 0.3, 100))), Violin("wide", list(rng.normal(60, 5, 100)))],
                          height=21)
    tight_rows, wide_rows = sum(d > 0 for d in dots(both, 0)), sum(d > 0 for d in dots(both, 1))
    assert tight_rows <= 3 and wide_rows >= 12  # a tight sample draws a narrow shape, a spread one a tall shape
    assert kde(np.array([1.0, 2.0]), np.array([1.5]))[0] > 0


def test_violin_guess_line_identical_scores_key_and_colour():
    rng = np.random.default_rng(2)
    vs = [Violin("none", list(rng.normal(65, 3, 40)), 1, colour=0), Violin("same", [60.0] * 5, 5, colour=3)]
    text = render_violins("t", vs, guess=50.0, height=16)
    rows, _ = canvas_rows(text)
    at = value_of_row(text)
    guess_row = next(i for i, r in enumerate(rows) if "┈" in r)
    assert abs(at(guess_row) - 50) <= abs(at(1) - at(0))  # the dotted line sits at the guess, within a row
    assert sum(d > 0 for d in dots(text, 1)) == 1 and "degen 5" in text and "best 60.0" in text  # a line, not nothing
    assert "┈┈ random guess 50.0" in text and "◆ mean" in text
    assert "\x1b[" not in text
    coloured = render_violins("t", vs, guess=50.0, height=16, color=True)
    assert "38;2;31;119;180" in coloured and "38;2;214;39;40" in coloured  # palette 0 and 3: the violins' own colours
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).split("\n")[2].rstrip() == text.split("\n")[2]


def test_violins_fit_80_by_24_and_split_what_does_not_fit():
    rng = np.random.default_rng(1)
    vs = [Violin(name, list(rng.normal(60, 3, 36)), 2) for name in ("none", "hellaswag", "hellaswag_p", "synthesis_gpt2")]
    text = render_violins("rte: dev accuracy ×100 per intermediate", vs, guess=50.0)
    lines = text.splitlines()
    assert len(lines) <= 24 and max(len(ln) for ln in lines) <= 80
    assert all(name in text for name in ("none", "hellaswag", "hellaswag_p", "synthesis_gp"))
    assert text.count("degen 2") == 4
    _, ticks = canvas_rows(text)
    for line in lines[-6:-1]:  # each statistic sits under its own violin's tick
        cells = [m.start() + len(m.group()) // 2 for m in re.finditer(r"\S+ \S+", line)]
        assert len(cells) == 4 and all(abs(c - t) <= 2 for c, t in zip(cells, ticks, strict=True)), line
    records = [run(name, "rte", x / 100, seed=i) for name in ("none", "a", "b", "c", "d", "e", "f")
               for i, x in enumerate(rng.normal(60, 3, 6))]
    split = violins_for(records, "rte", width=60)
    assert split.count("┌") == 2 and all(f" {n} " in split or f" {n}\n" in split for n in "abcdef")
    assert max(len(ln) for ln in split.splitlines()) <= 60


# ------------------------------------------------------------------ tables and exports


def test_exports_round_trip_and_latex_structure(two_groups):
    _, _, runs = two_groups
    stats = pair_stats(runs, resamples=200)
    back = list(csv.DictReader(io.StringIO(render_results(runs, "csv", resamples=200))))
    for row, s in zip(back, pair_records(stats), strict=True):
        for key in ("mean", "best", "std", "ci_mean_low", "ci_best_high"):
            assert float(row[key]) == s[key]  # full precision, same numbers
    table = pair_table(stats, 200, 0)
    latex = to_latex(table)
    body = [ln for ln in latex.splitlines() if ln.endswith("\\\\")]
    assert "\\begin{tabular}{l" in latex and latex.rstrip().endswith("\\end{tabular}")
    assert len(body) == 1 + len(table.rows)
    assert all(len(re.findall(r"(?<!\\)&", ln)) == len(table.columns) - 1 for ln in body)
    # Task names hold LaTeX's special characters: every one comes out escaped.
    a, _, _ = two_groups
    tricky = [run("hellaswag_p@2000", "winogrande_m", float(x), seed=i) for i, x in enumerate(a)]
    tricky += [run("50%_#1", "winogrande_m", float(x), seed=i) for i, x in enumerate(a)]
    tex = to_latex(pair_table(pair_stats(tricky, resamples=0, baseline="hellaswag_p@2000"), 0, 0))
    assert "hellaswag\\_p@2000" in tex and "winogrande\\_m" in tex and "50\\%\\_\\#1" in tex
    assert tex.startswith("% ") and not re.search(r"(?<!\\)[_%#]", tex.split("\n", 1)[1]), tex  # a comment, then escaped
    md = to_markdown(table).splitlines()
    assert all(ln.count("|") == len(table.columns) + 1 for ln in md if ln.startswith("|"))
    assert to_csv(table).splitlines()[0].startswith("target,intermediate")


def test_paper_tables_and_figure3():
    runs = []
    for inter, shift in (("none", 0.0), ("hellaswag_p@2000", 0.01), ("hellaswag_p@10000", 0.02), ("hellaswag_p@40000", 0.03)):
        runs += [run(inter, "rte", 0.6 + shift + 0.01 * i, seed=i) for i in range(4)]
    runs += [run("hellaswag", "socialiqa", 0.41, kind="zero_shot")]
    stats = pair_stats(runs, resamples=0)
    t2 = table2(stats)
    assert t2.rows[0][0] == "none" and t2.rows[0][1] == pytest.approx(0.63)
    t3 = table3(stats)
    assert {r[0] for r in t3.rows} == {"hellaswag_p@2000", "hellaswag_p@10000", "hellaswag_p@40000"}
    assert size_points(stats)[("hellaswag_p", "rte")] == [(2000, pytest.approx(0.01), pytest.approx(0.01)),
                                                         (10000, pytest.approx(0.02), pytest.approx(0.02)),
                                                         (40000, pytest.approx(0.03), pytest.approx(0.03))]
    fig = render_results(runs, "table", view="figure3")
    assert "hellaswag_p → rte" in fig and "Δ best" in fig
    t4 = render_results(runs, "markdown", view="table4")
    assert "| hellaswag | 41.0 |" in t4


# ------------------------------------------------------------------ the CLI on a synthetic store


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("syn") / "results.json"
    write_store(db, synthetic_records(1008))  # one full grid: 56 pairs x 18 points
    return db


def test_results_plot_and_report_from_the_cli(synthetic_db, tmp_path):
    out = json.loads(stilts("results", "--db", str(synthetic_db), "--format", "json").stdout)
    assert {"intermediate", "target", "n", "min", "mean", "best", "degenerate", "delta_mean", "p_value",
            "ci_mean_low"} <= set(out[0])
    by_lr = json.loads(stilts("results", "--db", str(synthetic_db), "--format", "json", "--by", "intermediate,target,lr").stdout)
    assert len(by_lr) == 3 * len(out) and {r["lr"] for r in by_lr} == {1e-5, 2e-5, 3e-5}
    only = json.loads(stilts("results", "--db", str(synthetic_db), "--format", "json", "--filter", "lr=1e-5").stdout)
    assert sum(r["n"] for r in only) == sum(r["n"] for r in out) // 3
    latex = stilts("results", "--db", str(synthetic_db), "--format", "latex", "--view", "table3").stdout
    assert "\\begin{tabular}" in latex and "$\\Delta$ mean" in latex
    plot = stilts("plot", "rte", "--db", str(synthetic_db)).stdout
    assert "none" in plot and "random guess" in plot and max(len(x) for x in plot.splitlines()) <= 80
    assert "\x1b[" not in plot and any(0x2800 < ord(ch) <= 0x28FF for ch in plot)  # piped: plain braille
    coloured = stilts("plot", "rte", "--db", str(synthetic_db), "--format", "color").stdout
    assert "\x1b[38;2;31;119;180m" in coloured  # the baseline's colour
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).split("\n")[5].rstrip() == plot.split("\n")[5]
    bad = stilts("plot", "nope", "--db", str(synthetic_db), check=False)
    assert bad.returncode == 2 and "targets with runs: " in bad.stderr
    typo = stilts("plot", "rtx", "--db", str(synthetic_db), check=False)
    assert typo.returncode == 2 and "did you mean 'rte'?" in typo.stderr
    report = tmp_path / "report.md"
    stilts("report", str(synthetic_db), "-o", str(report), "--resamples", "200")
    text = report.read_text()
    for part in ("# stilts report", "**dev scores per (intermediate, target) of roberta-large**", "Model: `roberta-large`.", "**Table 2", "**Table 3", "**Figure 3",
                 "```", "## Software", "- torch ", "random guess"):
        assert part in text, part
    figures = sorted((tmp_path / "report-figures").glob("violins-*.png"))
    assert len(figures) == 8 and all(f"](report-figures/{f.name})" in text for f in figures)  # one per target, linked
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    stilts("report", str(synthetic_db), "-o", str(tmp_path / "plain.md"), "--resamples", "200", "--no-figures")
    assert "![" not in (tmp_path / "plain.md").read_text() and not (tmp_path / "plain-figures").exists()


def test_models_are_never_pooled_and_are_named(tmp_path):
    """Runs of two models on one pair: two rows with a model column (each against its own
    model's baseline), unless --pool-models; one model is named in the title; the report names
    the models and each task's metric."""
    a = [run("none", "rte", 0.6 + 0.01 * i, seed=i) | {"model": "minilm"} for i in range(4)]
    b = [run("none", "rte", 0.8 + 0.01 * i, seed=i) | {"model": "roberta-large"} for i in range(4)]
    c = [run("none", "cola", 0.3 + 0.01 * i, seed=i, metric="mcc", random=0.0, threshold=0.0) | {"model": "minilm"}
         for i in range(3)]
    kept = json.loads(render_results(a + b, "json", resamples=50))
    assert sorted((r["model"], r["n"]) for r in kept) == [("minilm", 4), ("roberta-large", 4)]
    assert "model" in render_results(a + b, "table", resamples=50).splitlines()[2]
    pooled = json.loads(render_results(a + b, "json", resamples=50, pool_models=True))
    assert [r["n"] for r in pooled] == [8] and pooled[0]["model"] == "minilm, roberta-large"
    assert render_results(a, "table", resamples=50).startswith("dev scores per (intermediate, target) of minilm")
    from stilts_tui.analysis.report import markdown_report

    text = markdown_report(a + b + c, "t", None, resamples=50)
    assert "Models: `minilm` (7 runs), `roberta-large` (4 runs)" in text
    assert "Scores ×100; accuracy: rte; Matthews correlation: cola." in text


def test_unknown_baseline_by_and_filter_say_did_you_mean(synthetic_db):
    bad = stilts("results", "--db", str(synthetic_db), "--baseline", "nonee", check=False)
    assert bad.returncode == 2 and "--baseline 'nonee': no target run starts from an intermediate of that name" in bad.stderr
    assert "did you mean 'none'?" in bad.stderr and "Traceback" not in bad.stderr
    bad = stilts("results", "--db", str(synthetic_db), "--by", "intermediate,target,learning_rate", check=False)
    assert bad.returncode == 2 and "--by: no run has a field 'learning_rate'" in bad.stderr
    bad = stilts("results", "--db", str(synthetic_db), "--filter", "sed=1", check=False)
    assert bad.returncode == 2 and "did you mean 'seed'?" in bad.stderr
    bad = stilts("plot", "rte", "--db", str(synthetic_db), "--baseline", "hellaswg", check=False)
    assert bad.returncode == 2 and "did you mean 'hellaswag' or" in bad.stderr


def test_table3_turns_to_fit_80_columns_and_table4_says_why_it_is_empty():
    from stilts_tui.analysis.report import render_results
    from stilts_tui.bench.results import synthetic_records

    records = synthetic_records(400)
    narrow = render_results(records, "table", view="table3", width=80)
    assert max(len(line) for line in narrow.splitlines()) <= 80 and "(turned to fit)" in narrow
    assert "rte Δ mean" in narrow and "hellaswag" in narrow.splitlines()[2]
    wide = render_results(records[:50], "table", view="table3", width=200)  # one target: fits as it is
    assert "turned" not in wide and "Δ mean" in wide.splitlines()[2]
    empty = render_results(records, "table", view="table4", width=80)
    assert empty.startswith("no zero-shot runs in the results file yet") and "zero_shot" in empty
