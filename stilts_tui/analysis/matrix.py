"""Transfer matrices: rows are targets (then probes), columns intermediates, each cell how a
statistic of the pair's dev scores differs from the baseline intermediate's on the same row (the
second study's Figure 2; the first study's Figure 2 read as one table).

Units. A pair whose runs come from several restarts ([restarts] in the spec) is read restart by
restart: the statistic is taken within each restart (over its grid points) and averaged over the
restarts, and intervals and tests resample restarts. Without restarts the units are the runs and
the statistic is taken over all of them (Δ best is the best run's gain, as the first study reads
it). Scores stay on the metric's 0-1 scale here; views show ×100."""

from __future__ import annotations

import statistics
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stilts_tui.analysis import paper_order
from stilts_tui.analysis.correlation import is_mixing
from stilts_tui.analysis.significance import ALPHA, Holm, holm
from stilts_tui.analysis.stats import (
    CI_LEVEL,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Reduce,
    permutation_p,
)
from stilts_tui.domain.run import Run, runs_of
from stilts_tui.errors import StiltsError

STATS = ("mean", "best", "median", "degenerate")
STAT_LABEL = {"mean": "Δ mean", "best": "Δ best", "median": "Δ median", "degenerate": "degenerate runs"}
MARKS = ("ci", "holm")
_REDUCE: dict[str, Reduce] = {"mean": lambda x: x.mean(axis=1), "best": lambda x: x.max(axis=1),
                              "median": lambda x: np.median(x, axis=1)}


def _within(stat: str, scores: list[float]) -> float:
    """A statistic of one restart's few runs (plain Python: faster than numpy at this size)."""
    if stat == "best":
        return max(scores)
    if stat == "median":
        return statistics.median(scores)
    return sum(scores) / len(scores)


@dataclass
class Side:
    """The finished runs of one (intermediate, task) pair, grouped by restart."""

    scores: dict[int | None, list[float]] = field(default_factory=dict)
    degenerate: int = 0
    pending: int = 0
    failed: int = 0
    _units: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return sum(map(len, self.scores.values()))

    @property
    def by_restart(self) -> bool:
        return len(self.scores) > 1

    def units(self, stat: str) -> np.ndarray:
        """One value per restart (the statistic within it), or every run's score."""
        if stat not in self._units:
            if self.by_restart:
                groups = [v for _, v in sorted(self.scores.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
                self._units[stat] = np.array([_within(stat, v) for v in groups], dtype=float)
            else:
                self._units[stat] = np.array([s for v in self.scores.values() for s in v], dtype=float)
        return self._units[stat]

    def reduce(self, stat: str) -> Reduce:
        return _REDUCE["mean"] if self.by_restart else _REDUCE[stat]

    def value(self, stat: str) -> float | None:
        if stat == "degenerate":
            return float(self.degenerate) if self.n else None
        return float(self.reduce(stat)(self.units(stat)[None])[0]) if self.n else None


@dataclass
class Cell:
    row: str
    column: str
    stat: str
    value: float | None          # Δ against the baseline; absolute in the baseline's column; a count for "degenerate"
    n: int = 0                   # finished runs behind it
    units: int = 0               # restarts (or runs, without restarts) behind it
    pending: int = 0
    failed: int = 0
    ci: tuple[float, float] | None = None     # 95 % percentile-bootstrap interval of the value
    p: float | None = None                    # two-sided permutation p of the difference
    holm_pass: bool = False                   # p passes Holm–Bonferroni across the matrix's cells of this stat

    @property
    def ci_excludes_zero(self) -> bool:
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)


@dataclass
class TransferMatrix:
    stats: tuple[str, ...]
    baseline: str
    rows: list[str]
    probes: set[str]
    columns: list[str]                                   # intermediates other than the baseline, in order
    cells: dict[tuple[str, str, str], Cell]              # (row, column or baseline, stat)
    metrics: dict[str, str]
    mark: str = "ci"
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    holm: dict[str, Holm] = field(default_factory=dict)
    mixing_left_out: int = 0                             # frozen-encoder probe runs, as the study's figure

    def cell(self, row: str, column: str, stat: str) -> Cell | None:
        return self.cells.get((row, column, stat))

    def significant(self, cell: Cell) -> bool:
        if cell.column == self.baseline or cell.stat == "degenerate":
            return False
        return cell.holm_pass if self.mark == "holm" else cell.ci_excludes_zero

    @property
    def targets(self) -> list[str]:
        return [r for r in self.rows if r not in self.probes]

    def average(self, column: str, stat: str, probes: bool = False) -> tuple[float | None, int, int]:
        """(mean of the column's values over the targets (or the probes), rows with a value, rows)."""
        rows = [r for r in self.rows if (r in self.probes) == probes]
        values = [c.value for r in rows if (c := self.cell(r, column, stat)) and c.value is not None]
        return (sum(values) / len(values) if values else None), len(values), len(rows)

    def losses(self, column: str, stat: str) -> int:
        """Probes whose cell is significantly below the baseline: skills the intermediate cost."""
        return sum(1 for r in self.probes if (c := self.cell(r, column, stat)) and c.value is not None
                   and c.value < 0 and self.significant(c))


@dataclass
class _Read:
    sides: dict[tuple[str, str], Side]
    probes: set[str]
    metrics: dict[str, str]
    mixing: int                       # frozen-encoder probe runs left out


def _sides(records: Iterable[Run | Mapping[str, Any]]) -> _Read:
    sides: dict[tuple[str, str], Side] = defaultdict(Side)
    probes: set[str] = set()
    metrics: dict[str, str] = {}
    mixing = 0
    for r in runs_of(records):
        if r.kind != "target":
            continue
        if is_mixing(r):
            mixing += 1
            continue
        side = sides[(r.intermediate, r.target)]
        if r.value("probe"):
            probes.add(r.target)
        if r.finished and r.score is not None:
            side.scores.setdefault(r.value("restart"), []).append(r.score)
            side.degenerate += r.degenerate
            metrics.setdefault(r.target, r.metric_name)
        elif r.pending:
            side.pending += 1
        elif r.failed:
            side.failed += 1
    return _Read(sides, probes, metrics, mixing)


def _bootstrap(units: np.ndarray, reduce: Reduce, resamples: int, rng: np.random.Generator) -> np.ndarray:
    return reduce(units[rng.integers(0, len(units), size=(resamples, len(units)))])


def _interval(draws: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(draws, [(1 - CI_LEVEL) / 2 * 100, (1 + CI_LEVEL) / 2 * 100])
    return float(lo), float(hi)


def compare(side: Side, base: Side | None, stat: str, resamples: int, rng: np.random.Generator,
            tests: bool = True, seed: int = DEFAULT_SEED) -> tuple[float | None, tuple[float, float] | None, float | None]:
    """(Δ of the statistic, its bootstrap interval, the permutation p) of `side` against `base`;
    without a base, the absolute value and its interval. The p is the one rule's
    (stats.permutation_test, the pairs table's too): it depends on the units and `seed` only."""
    value = side.value(stat)
    if value is None or stat == "degenerate":
        return value, None, None
    a = side.units(stat)
    if base is None:
        ci = _interval(_bootstrap(a, side.reduce(stat), resamples, rng)) if tests and resamples and len(a) > 1 else None
        return value, ci, None
    base_value = base.value(stat)
    if base_value is None:
        return None, None, None
    b = base.units(stat)
    delta = value - base_value
    if not (tests and resamples and len(a) > 1 and len(b) > 1):
        return delta, None, None
    draws = _bootstrap(a, side.reduce(stat), resamples, rng) - _bootstrap(b, base.reduce(stat), resamples, rng)
    p = permutation_p(a, b, side.reduce(stat), seed) if side.by_restart == base.by_restart else None
    return delta, _interval(draws), p


def _rows(tasks: set[str], probes: set[str], order: str | list[str]) -> list[str]:
    if order == "paper":
        return paper_order.in_order(tasks - probes, paper_order.TARGETS) + paper_order.in_order(tasks & probes,
                                                                                                 paper_order.PROBES)
    return sorted(tasks - probes) + sorted(tasks & probes)


def _order(columns: set[str], order: str | list[str], gain: dict[str, float | None]) -> list[str]:
    if isinstance(order, list):
        unknown = [c for c in order if c not in columns]
        if unknown:
            raise StiltsError(f"--order names {unknown[0]!r}, which has no target runs here",
                              "intermediates with runs: " + ", ".join(sorted(columns)))
        return order
    if order == "paper":
        return paper_order.in_order(columns, paper_order.INTERMEDIATES)
    if order == "gain":
        return sorted(columns, key=lambda c: (gain.get(c) is None, -(gain.get(c) or 0.0), c))
    return sorted(columns)


def build_matrix(records: Iterable[Run | Mapping[str, Any]], stats: tuple[str, ...] = ("mean",), baseline: str = "none",
                 order: str | list[str] = "name", mark: str = "ci", resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED, alpha: float = ALPHA) -> TransferMatrix:
    """Every (row, intermediate, stat) cell. Each cell's generator is seeded from `seed` and the
    cell, so a cell's interval does not change when other rows are filtered out."""
    read = _sides(records)
    sides, probes = read.sides, read.probes
    tasks = {t for _, t in sides}
    rows = _rows(tasks, probes, order)
    columns = {i for i, _ in sides if i != baseline}
    cells: dict[tuple[str, str, str], Cell] = {}
    for (inter, task), side in sides.items():
        base = sides.get((baseline, task)) if inter != baseline else None
        for stat in stats:
            rng = np.random.default_rng([seed, zlib.crc32(repr((task, inter, stat)).encode())])
            if inter != baseline and base is None:
                value, ci, p = None, None, None       # nothing to compare with: missing, never zero
            else:
                value, ci, p = compare(side, base, stat, resamples, rng, seed=seed)
            units = len(side.scores) if side.by_restart else side.n
            cells[(task, inter, stat)] = Cell(task, inter, stat, value, side.n, units, side.pending, side.failed, ci, p)
    holms = {}
    for stat in stats:
        tested = [c for c in cells.values() if c.stat == stat and c.p is not None]
        holms[stat] = result = holm([c.p for c in tested if c.p is not None], alpha)
        for c, passed in zip(tested, result.rejected, strict=True):
            c.holm_pass = passed
    m = TransferMatrix(stats, baseline, rows, probes, [], cells, read.metrics, mark, resamples, seed, holms, read.mixing)
    first = next((s for s in stats if s != "degenerate"), stats[0])
    m.columns = _order(columns, order, {c: m.average(c, first)[0] for c in columns})
    return m


@dataclass
class Ranked:
    intermediate: str
    delta: float | None
    ci: tuple[float, float] | None
    p: float | None
    n: int
    units: int
    mean: float | None


def ranking(records: Iterable[Run | Mapping[str, Any]], target: str, baseline: str = "none", resamples: int = DEFAULT_RESAMPLES,
            seed: int = DEFAULT_SEED) -> tuple[Ranked | None, list[Ranked]]:
    """For one target: the baseline's own mean, then every other intermediate ranked by Δ mean."""
    sides = _sides(records).sides
    base = sides.get((baseline, target))
    ranked = []
    for (inter, task), side in sides.items():
        if task != target or inter == baseline or not side.n:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(repr((task, inter, "mean")).encode())])
        delta, ci, p = compare(side, base, "mean", resamples, rng, seed=seed) if base and base.n else (None, None, None)
        ranked.append(Ranked(inter, delta, ci, p, side.n, len(side.scores) if side.by_restart else side.n,
                             side.value("mean")))
    ranked.sort(key=lambda r: (r.delta is None, -(r.delta or 0.0), r.intermediate))
    head = None
    if base and base.n:
        rng = np.random.default_rng([seed, zlib.crc32(repr((target, baseline, "mean")).encode())])
        mean, ci, _ = compare(base, None, "mean", resamples, rng)
        head = Ranked(baseline, None, ci, None, base.n, len(base.scores) if base.by_restart else base.n, mean)
    return head, ranked
