"""Tables out: a terminal table (rich), Markdown, LaTeX, CSV and JSON. Markdown, LaTeX and the
terminal show scores ×100 with one decimal, as the paper does; CSV and JSON keep full precision
on the metric's own 0-1 scale, so they read back to the same numbers."""

from __future__ import annotations

import csv
import io
import json

from stilts_tui.analysis.tables import Table

FORMATS = ("table", "json", "csv", "markdown", "latex")


def cell_text(table: Table, i: int, value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if i in table.scores:
            return f"{value * 100:+.1f}" if table.is_signed(i) else f"{value * 100:.1f}"
        if table.columns[i] == "p":
            return f"{value:.3f}"
        if table.columns[i] == "win rate":
            return f"{value:.0%}"
        return f"{value:g}"
    return str(value)


def to_markdown(table: Table) -> str:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |",
             # numbers right-aligned, text (names, intervals, "0.3 (+2)") left
             "| " + " | ".join("---:" if i and _numeric(table, i) else "---" for i in range(len(table.columns))) + " |"]
    for row in table.rows:
        lines.append("| " + " | ".join(cell_text(table, i, v).replace("|", "\\|") for i, v in enumerate(row)) + " |")
    if table.note:
        lines += ["", f"*{table.note}*"]
    return "\n".join(lines) + "\n"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "Δ": r"$\Delta$", "→": r"$\rightarrow$",
          "—": "--", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    spec = "".join("r" if i and _numeric(table, i) else "l" for i in range(len(table.columns)))
    lines = [f"% {latex_escape(table.title)}" + (f" -- {latex_escape(table.note)}" if table.note else ""),
             f"\\begin{{tabular}}{{{spec}}}", "\\hline",
             " & ".join(latex_escape(c) for c in table.columns) + " \\\\", "\\hline"]
    for row in table.rows:
        lines.append(" & ".join(latex_escape(cell_text(table, i, v)) for i, v in enumerate(row)) + " \\\\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.columns)
    for row in table.rows:
        w.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def to_json(table: Table) -> str:
    return json.dumps([dict(zip(table.columns, row, strict=True)) for row in table.rows], indent=2) + "\n"


# Dropped first, in this order, when a table is wider than the terminal.
DROP_ORDER = ("failed", "metric", "p", "win rate", "std", "median", "paired Δ", "mean w/o degenerate", "mean 95% CI",
              "best 95% CI", "Δ best", "min")


def to_terminal(table: Table, columns: list[str] | None = None, width: int = 120) -> str:
    """An aligned plain-text table (fast at any size, readable in logs and on 16-colour terminals),
    narrowed to `width` by leaving out the least important columns."""
    keep = [i for i, c in enumerate(table.columns) if columns is None or c in columns]
    cells_of = {i: [table.columns[i], *[cell_text(table, i, row[i]) for row in table.rows]] for i in keep}
    col_width = {i: max(len(x) for x in cells_of[i]) for i in keep}
    for name in DROP_ORDER:
        if sum(col_width[i] for i in keep) + 2 * (len(keep) - 1) <= width:
            break
        keep = [i for i in keep if table.columns[i] != name]
    if sum(col_width[i] for i in keep) + 2 * (len(keep) - 1) > width and _can_turn(table, keep):
        # many score columns over few rows (Table 3 at 80 columns): turned, each column a row
        return to_terminal(_turned(table), None, width)
    cells = [[cells_of[i][k] for i in keep] for k in range(len(table.rows) + 1)]
    widths = [col_width[i] for i in keep]
    right = [_numeric(table, i) and j > 0 for j, i in enumerate(keep)]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)).rstrip()

    title = table.title + (" (×100)" if table.scores else "")
    rule = "─" * min(width, sum(widths) + 2 * (len(widths) - 1))
    out = [title, rule, line(cells[0]), rule, *[line(r) for r in cells[1:]], rule]
    if table.note:
        out.append(table.note)
    return "\n".join(out) + "\n"


def _can_turn(table: Table, keep: list[int]) -> bool:
    return len(keep) == len(table.columns) and table.scores == set(range(1, len(table.columns))) and \
        len(table.rows) + 1 < len(table.columns)


def _turned(table: Table) -> Table:
    """Rows become columns: the first column's values head the new columns."""
    heads = [str(r[0]) for r in table.rows]
    rows = [[table.columns[i], *[r[i] for r in table.rows]] for i in range(1, len(table.columns))]
    signed = all(table.is_signed(i) for i in range(1, len(table.columns)))  # Table 3: every cell a Δ
    return Table(table.title + " (turned to fit)", [table.columns[0] + " →", *heads], rows,
                 set(range(1, len(heads) + 1)), table.note, set(range(1, len(heads) + 1)) if signed else set())


def _numeric(table: Table, i: int) -> bool:
    return any(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in table.rows)


def render(table: Table, fmt: str, columns: list[str] | None = None, width: int = 120) -> str:
    if fmt == "markdown":
        return to_markdown(table)
    if fmt == "latex":
        return to_latex(table)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "json":
        return to_json(table)
    return to_terminal(table, columns, width)
