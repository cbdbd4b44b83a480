"""The transfer matrix and the correlations as a table the keyboard walks cell by cell: the colours
and texts of the analysis layer's heat grid, and one line describing the cell under the cursor."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from stilts_tui.analysis.correlation import Correlations
from stilts_tui.analysis.heatmap import Heat, cell_text, flat_label
from stilts_tui.analysis.matrix import STAT_LABEL, TransferMatrix
from stilts_tui.analysis.matrix_views import matrix_columns


@dataclass
class GridData:
    """What the grid shows and what its cells stand for (computed off the UI thread)."""

    heat: Heat
    matrix: TransferMatrix | None = None
    correlations: Correlations | None = None
    show: str = "full"


def _pct(x: float, signed: bool = True) -> str:
    return f"{x * 100:+.1f}" if signed else f"{x * 100:.1f}"


def describe_matrix_cell(m: TransferMatrix, row: int, col: int) -> str:
    if row >= len(m.rows):
        return "an average over the rows above (probes lost: probe cells significantly below the baseline)"
    task = m.rows[row]
    column, stat = matrix_columns(m)[col]
    c = m.cell(task, column, stat)
    role = "probe" if task in m.probes else "target"
    head = f"{role} {task} × {column} — {STAT_LABEL[stat]}"
    if c is None:
        return f"{head}: no runs of this pair"
    if column == m.baseline:
        head = f"{role} {task} × {column} (the baseline) — {stat}"
    if c.value is None:
        return f"{head}: {c.pending} runs queued or running, {c.failed} failed, none finished" + (
            "" if column == m.baseline else f" (or {m.baseline} has none to compare with)")
    if stat == "degenerate":
        return f"{head}: {int(c.value)} of {c.n} finished runs at or below the degenerate threshold"
    value = _pct(c.value, column != m.baseline)
    ci = f" 95% CI [{_pct(c.ci[0], column != m.baseline)}, {_pct(c.ci[1], column != m.baseline)}]" if c.ci else ""
    test = (f", p {c.p:.3g} (Holm {'passes' if c.holm_pass else 'fails'})" if c.p is not None else "")
    more = f"; {c.pending} pending, {c.failed} failed" if c.pending or c.failed else ""
    enter = "" if column == m.baseline else " — enter: violins and runs"
    return f"{head}: {value}{ci}{test}; {c.n} runs, {c.units} units{more}{enter}"


def describe_correlation_cell(corr: Correlations, show: str, row: int, col: int) -> str:
    rows = corr.columns if show == "full" else corr.targets
    a, b = rows[row], corr.columns[col]
    if a == b:
        return f"{a}: the diagonal"
    s = corr.pair(a, b)
    if s.rho is None:
        return f"{a} × {b}: no ρ — {s.reason}"
    significant = corr.significant_full if show == "full" else corr.significant_targets
    return (f"{a} × {b}: ρ {s.rho:+.3f}, p {s.p:.3g} over {s.n} models; Holm–Bonferroni "
            f"{'passes' if (a, b) in significant else 'fails'}")


class StudyGrid(DataTable):
    """A DataTable of a heat grid, walked by cell."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=False, **kwargs)
        self.data: GridData | None = None

    def fill(self, data: GridData) -> None:
        keep = self.cursor_coordinate
        self.data = data
        heat = data.heat
        self.clear(columns=True)
        self.add_column(Text(heat.corner, style="bold"), key="label")
        for j, label in enumerate(heat.col_labels):
            self.add_column(Text(flat_label(label), style="bold"), key=f"c{j}")
        for i, (label, row) in enumerate(zip(heat.row_labels, heat.rows, strict=True)):
            # Averages in bold, probes in italic (the text views draw rules between these groups).
            rows = data.matrix.rows if data.matrix else heat.row_labels
            probes = data.matrix.probes if data.matrix else data.correlations.probes if data.correlations else set()
            style = "bold" if i >= len(rows) else "italic" if label in probes else ""
            self.add_row(Text(label, style=style), *[cell_text(c, heat.cell_width) for c in row], key=f"r{i}")
        self.fixed_columns = 1
        if keep.row < self.row_count and keep.column < len(self.columns):
            self.cursor_coordinate = keep
        if self.cursor_coordinate.column == 0 and len(self.columns) > 1:
            self.cursor_coordinate = self.cursor_coordinate._replace(column=1)

    def describe(self) -> str:
        if self.data is None or not self.row_count:
            return ""
        row, col = self.cursor_coordinate.row, self.cursor_coordinate.column - 1
        if col < 0:
            return self.data.heat.row_labels[row] if row < len(self.data.heat.row_labels) else ""
        if self.data.matrix is not None:
            return describe_matrix_cell(self.data.matrix, row, col)
        if self.data.correlations is not None:
            return describe_correlation_cell(self.data.correlations, self.data.show, row, col)
        return ""

    def pair(self) -> tuple[str, str] | None:
        """(target, intermediate) under the cursor, when it is a matrix cell of a trained pair."""
        m = self.data.matrix if self.data else None
        row, col = self.cursor_coordinate.row, self.cursor_coordinate.column - 1
        if m is None or col < 0 or row >= len(m.rows):
            return None
        column, _ = matrix_columns(m)[col]
        return m.rows[row], column
