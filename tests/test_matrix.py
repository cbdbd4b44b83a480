"""Transfer matrices, correlations and rankings (issue 16): Δ and significance on hand-made
results with known answers, Spearman's edge cases and Holm against an independent Holm, partial
studies, the first study's Figure 2 as one matrix, the exports, and the CLI's messages."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from stilts_tui.analysis.correlation import correlations
from stilts_tui.analysis.heatmap import to_latex, to_markdown, to_text
from stilts_tui.analysis.matrix import build_matrix, ranking
from stilts_tui.analysis.matrix_views import correlation_heat, matrix_heat, nice_ceiling
from stilts_tui.analysis.significance import MIN_MODELS, Spearman, holm, spearman, spearman_pairs
from stilts_tui.analysis.stats import pair_stats
from stilts_tui.analysis.study_views import StudyOptions, render_study, write_study
from stilts_tui.bench.results import study_records, synthetic_records, write_store
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.loop import run_record


def rec(inter: str, task: str, score: float | None, restart: int | None = None, probe: bool = False,
        status: str = "finished", lr: float = 1e-5, seed: int = 0, metric: str = "accuracy", degenerate_at: float = 0.5) -> dict:
    cfg = RunConfig(kind="target", model="m", task=task, intermediate=inter, lr=lr, seed=seed if restart is None else restart,
                    probe=probe, restart=restart, spec_name="hand")
    cfg.run_id = cfg.compute_id()
    r = run_record(cfg) | {"status": status, "attempts": 1}
    if status == "finished":
        r |= {"score": score, "metric": metric,
              "metrics": {"score": score, "metric": metric, "baselines": {"degenerate_threshold": degenerate_at}}}
    return r


def hand_made() -> list[dict]:
    """none, A, B on rte (3 restarts each) and on a probe; C only on rte (its probe runs queued)."""
    out = []
    for i, (n, a, b) in enumerate([(0.60, 0.70, 0.59), (0.62, 0.72, 0.61), (0.64, 0.74, 0.66)]):
        out += [rec("none", "rte", n, i), rec("A", "rte", a, i), rec("B", "rte", b, i), rec("C", "rte", n + 0.01, i)]
    for i, (n, a, b) in enumerate([(0.80, 0.70, 0.81), (0.82, 0.71, 0.79), (0.81, 0.72, 0.80)]):
        out += [rec("none", "edges_pos", n, i, True), rec("A", "edges_pos", a, i, True), rec("B", "edges_pos", b, i, True)]
        out.append(rec("C", "edges_pos", None, i, True, status="queued"))
    return out


def test_matrix_deltas_marks_and_missing_cells_on_known_answers():
    m = build_matrix(hand_made(), ("mean", "best"), resamples=2000)
    assert m.rows == ["rte", "edges_pos"] and m.probes == {"edges_pos"} and m.columns == ["A", "B", "C"]
    assert m.cell("rte", "none", "mean").value == pytest.approx(0.62)          # the baseline: absolute
    assert m.cell("rte", "A", "mean").value == pytest.approx(0.10)
    assert m.cell("rte", "B", "mean").value == pytest.approx(0.0, abs=1e-12)
    # Restarts are the units: Δ best is the mean over restarts of each restart's best (one run each here).
    assert m.cell("rte", "A", "best").value == pytest.approx(0.10)
    assert m.cell("edges_pos", "A", "mean").value == pytest.approx(-0.10)
    a, b = m.cell("rte", "A", "mean"), m.cell("rte", "B", "mean")
    assert a.units == 3 and a.n == 3 and a.ci is not None and a.ci[0] > 0 and m.significant(a)
    assert b.ci[0] < 0 < b.ci[1] and not m.significant(b)
    # Three restarts against three: the smallest exact two-sided permutation p is 2/20.
    assert a.p == pytest.approx(0.1, abs=0.03) and not a.holm_pass
    # C has queued probe runs and nothing finished there: missing (…), never zero.
    c = m.cell("edges_pos", "C", "mean")
    assert c.value is None and c.pending == 3
    heat = matrix_heat(m)
    row = heat.row_labels.index("edges_pos")
    texts = [cell.text for cell in heat.rows[row]]
    assert texts[heat.col_labels.index("C\nΔmean")] == "…"
    assert m.losses("A", "mean") == 1 and m.losses("B", "mean") == 0      # A cost the probed skill
    lost = heat.rows[heat.row_labels.index("probes lost (sig.)")]
    assert lost[heat.col_labels.index("A\nΔmean")].text == "1"
    # averages over the targets: C has a value on rte only
    assert m.average("C", "mean") == (pytest.approx(0.01), 1, 1)
    assert m.average("C", "mean", probes=True) == (None, 0, 1)


def test_missing_baseline_and_absent_pair_are_shown_as_missing_not_zero():
    records = [rec("A", "rte", 0.7), rec("A", "rte", 0.72, seed=1), rec("none", "cb", 0.5), rec("none", "cb", 0.6, seed=1)]
    m = build_matrix(records)
    assert m.cell("rte", "A", "mean").value is None        # no baseline on rte
    assert m.cell("cb", "A", "mean") is None               # A never ran cb
    text = to_text(matrix_heat(m), 100, colour=False).plain
    rte_line = next(line for line in text.splitlines() if line.startswith("rte"))
    assert "—" in rte_line and "+0.0" not in rte_line and "0.0" not in rte_line.split()[1:]


def test_holm_mark_uses_permutation_p_across_the_matrix():
    rng = np.random.default_rng(0)
    records = []
    for task, shift in (("t1", 0.2), ("t2", 0.0), ("t3", 0.0)):
        for k in range(12):
            records += [rec("none", task, float(0.5 + rng.normal(0, 0.01)), seed=k, lr=1e-5),
                        rec("A", task, float(0.5 + shift + rng.normal(0, 0.01)), seed=k, lr=1e-5)]
    m = build_matrix(records, mark="holm", resamples=2000)
    assert m.holm["mean"].m == 3
    assert m.significant(m.cell("t1", "A", "mean")) and not m.significant(m.cell("t2", "A", "mean"))
    assert "Holm" in "\n".join(matrix_heat(m).legend)


def test_first_study_figure2_as_one_matrix_agrees_with_the_pair_statistics():
    records = synthetic_records(1008)
    m = build_matrix(records, ("mean", "best", "degenerate"), resamples=0)
    for s in pair_stats(records, resamples=0):
        if s.intermediate == "none":
            assert m.cell(s.target, "none", "mean").value == pytest.approx(s.mean)
            continue
        assert m.cell(s.target, s.intermediate, "mean").value == pytest.approx(s.delta_mean)
        assert m.cell(s.target, s.intermediate, "best").value == pytest.approx(s.delta_best)
        assert m.cell(s.target, s.intermediate, "degenerate").value == s.degenerate
    heat = matrix_heat(m)
    assert heat.col_labels[:3] == ["none\nmean", "none\nbest", "none\ndegen"]
    assert "hellaswag\nΔbest" in heat.col_labels


def test_column_order_by_gain_and_by_list():
    records = hand_made()
    assert build_matrix(records, order="gain").columns == ["A", "C", "B"]
    assert build_matrix(records, order=["C", "A"]).columns == ["C", "A"]
    with pytest.raises(Exception, match="'Z'"):
        build_matrix(records, order=["Z"])


def test_ranking_orders_by_delta_mean_with_intervals_and_counts():
    head, ranked = ranking(hand_made(), "rte", resamples=500)
    assert head.intermediate == "none" and head.mean == pytest.approx(0.62) and head.n == 3
    assert [r.intermediate for r in ranked] == ["A", "C", "B"]
    assert ranked[0].delta == pytest.approx(0.10) and ranked[0].ci[0] > 0 and ranked[0].units == 3
    text = render_study(hand_made(), "ranking", "table", StudyOptions(target="rte", resamples=500))
    assert text.index("A ") < text.index("C ") < text.index("B ")


@pytest.mark.filterwarnings("error")  # scipy's ConstantInputWarning included: such pairs never reach it
def test_spearman_drops_missing_values_averages_ties_and_says_why_there_is_no_number():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=20), rng.normal(size=20)
    x[[1, 4]], y[[7]] = np.nan, np.nan
    keep = ~(np.isnan(x) | np.isnan(y))
    ours, ref = spearman(x, y), scipy.stats.spearmanr(x[keep], y[keep])
    assert ours.n == 17 and ours.rho == pytest.approx(ref.statistic) and ours.p == pytest.approx(ref.pvalue)
    # ties share their average rank: ranks (1.5, 1.5, 3, 4.5, 4.5) and (1, 2.5, 2.5, 4, 5)
    tied = spearman(np.array([1.0, 1, 2, 3, 3]), np.array([1.0, 2, 2, 3, 4]))
    rho = 8.25 / np.sqrt(9 * 9.5)
    assert tied.rho == pytest.approx(rho, abs=1e-12)
    assert tied.p == pytest.approx(2 * scipy.stats.t.sf(rho * np.sqrt(3 / (1 - rho**2)), 3), rel=1e-9)
    # no number, and why
    assert spearman(np.arange(2.0), np.arange(2.0)) == Spearman(None, None, 2, "2 models (a test needs 3)")
    assert spearman(np.array([1.0, np.nan, 2]), np.arange(3.0)).reason == "2 models (a test needs 3)"
    assert spearman(np.ones(6), np.arange(6.0)) == Spearman(None, None, 6, "a constant column")
    assert spearman(np.array([1.0, 1, 1, 5]), np.array([0.0, 1, 2, np.nan])).reason == "a constant column"
    # exactly ±1 with p = 0: a perfect order, a column against itself, two points when 2 are enough
    assert spearman(np.arange(3.0), np.arange(3.0)) == Spearman(1.0, 0.0, 3)
    assert spearman(np.arange(3.0), -np.arange(3.0)) == Spearman(-1.0, 0.0, 3)
    x = rng.normal(size=5)  # scipy can say 0.9999999999999999 for a column against itself
    assert spearman(x, x) == Spearman(1.0, 0.0, 5)
    assert spearman(np.array([0.0, 1]), np.array([3.0, 2]), min_n=2) == Spearman(-1.0, 0.0, 2)


@pytest.mark.filterwarnings("error")
def test_spearman_pairs_is_spearman_of_every_pair_of_columns():
    """One scipy call for the complete columns, pair by pair for the rest: the same numbers."""
    rng = np.random.default_rng(11)
    values = rng.normal(size=(12, 7))
    values[:, 2] = np.round(values[:, 2])      # ties
    values[3, 4] = np.nan                      # a missing model in one column
    values[:, 5] = 0.7                         # a constant column
    values[:, 6] = values[:, 0]                # the same as another column
    pairs = spearman_pairs(values)
    assert set(pairs) == {(i, j) for i in range(7) for j in range(i, 7)}
    for (i, j), got in pairs.items():
        want = spearman(values[:, i], values[:, j])
        assert (got.n, got.reason) == (want.n, want.reason), (i, j)
        if want.rho is not None:
            assert got.rho == pytest.approx(want.rho, abs=1e-12) and got.p == pytest.approx(want.p, rel=1e-9, abs=1e-15)
    assert pairs[(3, 3)] == Spearman(1.0, 0.0, 12) and pairs[(4, 5)].reason == "a constant column"
    assert pairs[(1, 4)].n == 11
    few = spearman_pairs(values[:2, :3])
    assert all(s.reason == "2 models (a test needs 3)" for s in few.values())
    two = spearman_pairs(values[:, :2])       # two columns: scipy's single number, placed
    assert two[(0, 1)].rho == pytest.approx(spearman(values[:, 0], values[:, 1]).rho, abs=1e-12)


def test_ranks_and_p_values_are_scipys():
    """The ranks are scipy.stats.rankdata's (average), the p-values scipy.stats.spearmanr's."""
    from stilts_tui.analysis.significance import average_ranks

    rng = np.random.default_rng(3)
    for n in (3, 4, 7, 33):
        x = np.round(rng.normal(size=n), 1)  # ties
        assert np.array_equal(average_ranks(x), scipy.stats.rankdata(x))
        values = np.round(rng.normal(size=(n, 5)), 1)
        pairs = spearman_pairs(values)
        ref = scipy.stats.spearmanr(values)
        for (i, j), got in pairs.items():
            if i != j and got.rho is not None:
                assert got.rho == pytest.approx(ref.statistic[i, j], abs=1e-12)
                assert got.p == pytest.approx(ref.pvalue[i, j], rel=1e-9, abs=1e-15)


def holm_reference(p: list[float], alpha: float) -> list[bool]:
    """Holm through adjusted p-values: p_adj(k) = max over j ≤ k of min(1, (m − j + 1) p(j))."""
    order = np.argsort(p, kind="stable")
    m, running, adjusted = len(p), 0.0, np.empty(len(p))
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        adjusted[i] = running
    return list(adjusted <= alpha)


def test_holm_agrees_with_the_adjusted_p_formulation_and_states_its_thresholds():
    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 40, 595):
        p = list(np.concatenate([rng.uniform(0, 0.001, size=m // 4), rng.uniform(0, 1, size=m - m // 4)]))
        assert list(holm(p).rejected) == holm_reference(p, 0.05)
    h = holm([0.01, 0.02, 0.03, 0.2])
    assert h.thresholds == pytest.approx((0.0125, 0.05 / 3, 0.025, 0.05))
    assert h.rejected == (True, False, False, False)          # 0.02 > 0.05/3 stops it
    assert "0.0125" in h.describe() and "1 passed" in h.describe()


def reference_holm_bonferoni(p: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """jiant taskmaster_v1 scripts/taskmaster_v1/plot_results.py l. 139-143, as released."""
    arr = p.reshape(-1)
    k = (np.sort(arr) > (alpha / (len(arr) + 1 - np.arange(len(arr))))).argmax()
    return np.argsort(np.argsort(arr)).reshape(*p.shape) < k


def test_jiant_holm_variant_matches_the_studys_code():
    rng = np.random.default_rng(5)
    for m in (4, 30, 350):
        p = np.concatenate([rng.uniform(0, 1e-4, size=m // 3), rng.uniform(0, 1, size=m - m // 3)])
        ours = holm(list(p), 0.05, "jiant")
        assert list(ours.rejected) == list(reference_holm_bonferoni(p))
        assert ours.thresholds[0] == pytest.approx(0.05 / (m + 1)) and ours.thresholds[-1] == pytest.approx(0.025)
    # Where every p passes, the released code marks none (argmax of all-False is 0); we mark all
    # (docs/pruksachatkun2020.md, deviations).
    assert holm([1e-9, 1e-9], 0.05, "jiant").passed == 2 and not reference_holm_bonferoni(np.array([1e-9, 1e-9])).any()


def test_correlations_over_models_with_restarts_as_units_and_baseline_excluded():
    records = study_records(12 * 35 * 3)
    corr = correlations(records, variant="standard")
    assert len(corr.models) == 33 and all(i != "none" for i, _ in corr.models)
    assert corr.columns[:10] == sorted(corr.targets) and len(corr.columns) == 35
    assert corr.holm_full.m == 35 * 34 // 2
    assert corr.holm_targets.m == 10 * 34 - 10 * 9 // 2
    # The study's own family for its significant-cells figure: 10 target rows × 35 columns.
    jiant = correlations(records)
    assert jiant.holm_targets.m == 350 and jiant.holm_targets.variant == "jiant"
    block = np.array([[jiant.pair(a, b).p for b in jiant.columns] for a in jiant.targets])
    marked = reference_holm_bonferoni(block)
    assert {(a, b) for i, a in enumerate(jiant.targets) for j, b in enumerate(jiant.columns) if marked[i, j]} \
        == jiant.significant_targets
    # Mixing probes (frozen encoder) are left out, as the study's figures drop the _MIX columns.
    mix = dict(records[0], config=dict(records[0]["config"], transfer="frozen_mix"), target="se_extra_mix")
    assert "se_extra_mix" not in correlations([*records, mix]).columns
    # against scipy on the model × column values
    a, b = corr.columns[0], corr.columns[12]
    i, j = corr.columns.index(a), corr.columns.index(b)
    ref = scipy.stats.spearmanr(corr.values[:, i], corr.values[:, j])
    assert corr.pair(a, b).rho == pytest.approx(ref.statistic) and corr.pair(a, b).p == pytest.approx(ref.pvalue)
    full = correlation_heat(corr, "full")
    assert len(full.rows) == 35 and any("*" in c.text for row in full.rows for c in row)
    targets_view = correlation_heat(corr, "targets")
    assert len(targets_view.rows) == 10
    for a, row in zip(targets_view.row_labels, targets_view.rows, strict=True):
        for b, cell in zip(targets_view.col_labels, row, strict=True):
            if a != b:   # only significant cells are labelled
                assert bool(cell.text) == ((a, b) in corr.significant_targets)


def test_a_column_with_too_few_models_says_so():
    """The study computes ρ from 3 shared models up (calculate_correlations.py l. 93-94); below
    that a cell says n/a, and columns under 5 models are named in the legend."""
    records = []
    for k, inter in enumerate(("A", "B", "C", "D", "E", "F")):
        records += [rec(inter, "rte", 0.5 + 0.01 * k), rec(inter, "cb", 0.6 - 0.01 * k)]
        if k < 2:
            records.append(rec(inter, "copa", 0.5 + 0.02 * k))
        if k < 4:
            records.append(rec(inter, "wsc", 0.5 + 0.03 * k))
    corr = correlations(records)
    assert corr.pair("rte", "cb").rho == pytest.approx(-1.0) and corr.pair("rte", "cb").n == 6
    assert corr.pair("rte", "copa").rho is None and "2 models" in corr.pair("rte", "copa").reason
    assert corr.pair("rte", "wsc").rho == pytest.approx(1.0) and corr.pair("rte", "wsc").n == 4
    heat = correlation_heat(corr)
    assert MIN_MODELS == 3
    assert any("copa (2)" in line and "wsc (4)" in line for line in heat.legend)
    assert heat.rows[heat.row_labels.index("rte")][heat.col_labels.index("copa")].text == "n/a"


def test_exports_parse_markdown_latex_csv_json_and_figures(tmp_path):
    records = hand_made()
    opts = StudyOptions(stats=("mean", "best"), resamples=200)
    rows = list(csv.DictReader(io.StringIO(render_study(records, "matrix", "csv", opts))))
    assert len(rows) == 4 * 2 * 2 - 0 and {"row", "intermediate", "stat", "value", "ci_low", "p", "significant"} <= set(rows[0])
    a_rte = next(r for r in rows if r["row"] == "rte" and r["intermediate"] == "A" and r["stat"] == "mean")
    assert float(a_rte["value"]) == pytest.approx(0.10) and a_rte["role"] == "target"
    assert json.loads(render_study(records, "correlation", "json", opts)) is not None
    heat = matrix_heat(build_matrix(records, ("mean",)))
    md = to_markdown(heat).splitlines()
    table = [line for line in md if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1 and len(table) == 2 + len(heat.rows)
    tex = to_latex(heat)
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
    assert all(line.count("&") == len(heat.col_labels) for line in body)
    assert "\\cellcolor[RGB]" in tex and "{lrrrr}" in tex
    for name in ("m.png", "m.svg"):
        assert write_study(records, "matrix", tmp_path / name, opts).startswith("figure")
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "m.svg").read_bytes()[:500]
    write_study(records, "correlation", tmp_path / "c.pdf", opts)
    assert (tmp_path / "c.pdf").read_bytes()[:4] == b"%PDF"


def test_colour_scale_ends_and_terminal_text():
    assert nice_ceiling(3.2) == 5 and nice_ceiling(0.07) == pytest.approx(0.1) and nice_ceiling(10) == 10
    text = to_text(matrix_heat(build_matrix(hand_made())), 80, colour=True)
    styles = {str(span.style) for span in text.spans}
    assert any("on #" in s for s in styles)                  # coloured cells
    assert "+10.0*" in text.plain and "scale" in text.plain


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "stilts_tui", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_views_and_their_errors(tmp_path):
    db = tmp_path / "r.json"
    write_store(db, hand_made())
    out = run_cli("results", "--db", str(db), "--view", "matrix", "--stat", "mean,degenerate")
    assert out.returncode == 0 and "Transfer matrix against none" in out.stdout and "avg targets" in out.stdout
    assert "\x1b[" not in out.stdout                           # piped: no colour codes
    out = run_cli("results", "--db", str(db), "--view", "ranking", "--target", "rte")
    assert out.returncode == 0 and "ranked by Δ mean" in out.stdout
    out = run_cli("results", "--db", str(db), "--view", "correlation", "--show", "targets")
    assert out.returncode == 0 and "n/a" in out.stdout
    out = run_cli("results", "--db", str(db), "--view", "matrix", "-o", str(tmp_path / "fig.svg"))
    assert out.returncode == 0 and (tmp_path / "fig.svg").stat().st_size > 0
    for bad, needle in ((["--stat", "average"], "unknown statistic 'average'"), (["--order", "A,Z"], "'Z'"),
                        (["--mark", "fdr"], "--mark 'fdr'"), (["-o", str(tmp_path / "x.docx")], "unknown file type"),
                        (["-o", "/proc/no-such-dir/m.png"], "could not write")):
        out = run_cli("results", "--db", str(db), "--view", "matrix", *bad)
        assert out.returncode != 0 and needle in out.stderr and "Traceback" not in out.stderr
    out = run_cli("results", "--db", str(db), "--view", "ranking", "--target", "boolq")
    assert out.returncode != 0 and "targets with runs: edges_pos, rte" in out.stderr
    out = run_cli("results", "--db", str(db), "--view", "ranking", "--target", "edges_pox")
    assert out.returncode != 0 and "did you mean 'edges_pos'?" in out.stderr


def test_paper_order_lays_out_rows_and_columns_as_the_studys_figure():
    m = build_matrix(study_records(12 * 35 * 3), order="paper", resamples=0)
    assert m.rows[:4] == ["cb", "copa", "wsc", "rte"] and m.rows[10:12] == ["edges_pos", "edges_ner"]
    assert m.columns[:3] == ["qamr", "commonsenseqa", "scitail"] and m.columns[-1] == "mnli"
    corr = correlations(study_records(12 * 35 * 3), paper=True)
    assert corr.columns[:3] == ["cb", "copa", "wsc"]
