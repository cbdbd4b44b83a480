"""Loaders shared by the task modules: a release's rows (tsv, jsonl, the Hugging Face hub) turned
into examples by a per-task row converter, with errors that name the file and line."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from stilts_tui.tasks.base import Example
from stilts_tui.tasks.formats import find_file, read_jsonl, read_label_lines, read_tsv
from stilts_tui.tasks.hub import load_hub_rows

Row = dict
Convert = Callable[[Row, Path, int], Example]


def convert_rows(rows: Sequence[Row], path: Path, convert: Convert) -> list[Example]:
    return [convert(r, path, int(r.get("_line", i + 1))) for i, r in enumerate(rows)]


def jsonl_loader(files: Mapping[str, Sequence[str]], fields: Sequence[str], convert: Convert,
                 labels_files: Mapping[str, Sequence[str]] | None = None, label_field: str = "label"):
    """Loader for jsonl releases, optionally with labels in a separate one-per-line file."""

    def load(folder: Path, split: str) -> list[Example]:
        path = find_file(folder, files[split])
        need = [f for f in fields if not (labels_files and f == label_field)]
        rows = read_jsonl(path, need)
        if labels_files:
            has_inline = all(label_field in r for r in rows)
            if not has_inline:
                label_path = find_file(folder, labels_files[split])
                for r, lab in zip(rows, read_label_lines(label_path, len(rows)), strict=True):
                    r[label_field] = lab
        return convert_rows(rows, path, convert)

    load.files = lambda split: [files[split]]  # type: ignore[attr-defined]  # what `stilts run` checks first
    return load


def tsv_loader(files: Mapping[str, Sequence[str]], columns: Sequence[str], header: bool, convert: Convert,
               parts: Mapping[str, Sequence[Sequence[str]]] | None = None, non_empty: Sequence[str] = ()):
    """Loader for tsv releases. `parts`: a split the study made of several files, each given by
    its candidate names (MNLI dev = dev_matched.tsv + dev_mismatched.tsv, jiant tasks.py l. 1264).
    `non_empty`: columns whose empty rows are dropped, as jiant's load_tsv drops rows with an
    empty sentence (jiant/utils/data_loaders.py l. 152-158)."""

    def load(folder: Path, split: str) -> list[Example]:
        out: list[Example] = []
        for candidates in (parts or {}).get(split) or [files[split]]:
            path = find_file(folder, candidates)
            rows = [r for r in read_tsv(path, columns, header) if all(r[c] for c in non_empty)]
            out += convert_rows(rows, path, convert)
        return out

    load.files = lambda split: (parts or {}).get(split) or [files[split]]  # type: ignore[attr-defined]
    return load


def hub_loader(dataset: str, config: str | None, splits: Mapping[str, str | tuple[str, ...]], convert: Convert,
               remap: Callable[[Row], Row] = lambda r: r):
    def load(split: str) -> list[Example]:
        chosen = splits[split]
        names = chosen if isinstance(chosen, tuple) else (chosen,)
        out: list[Example] = []
        for name in names:  # a split the study made of several (MNLI dev: matched + mismatched)
            where = Path(f"hf://{dataset}" + (f"/{config}" if config else "") + f"/{name}")
            out += [convert(remap(dict(r)), where, i + 1) for i, r in enumerate(load_hub_rows(dataset, config, name))]
        return out

    return load


def label_names(names: Sequence[str]) -> Callable[[Row], Row]:
    """A hub row whose label is an index in `names` order, with the label name the release files use."""
    return lambda r: r | {"label": names[int(r["label"])]}
