"""`stilts tasks` (list, show) and `stilts build-data` (HellaSwag-p, Hella-sh, Synthesis_GPT2, subsample, demo)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from stilts_tui.cli.common import Commands, quiet_transformers
from stilts_tui.cli.output import output_console
from stilts_tui.errors import StiltsError
from stilts_tui.tasks.base import example_labels


def cmd_tasks(args: argparse.Namespace) -> int:
    from stilts_tui.tasks import all_tasks, get_task

    for f in args.task_file or []:
        from stilts_tui.tasks import register_task_file

        register_task_file(f)
    if args.action == "show":
        if not args.name:
            raise StiltsError("`stilts tasks show` needs a task name", "e.g. stilts tasks show rte --data-dir DIR")
        return _show_task(get_task(args.name), args)
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="tasks", show_lines=False)
    for col in ("name", "head", "metric", "epochs", "max tokens", "description"):
        table.add_column(col, no_wrap=col != "description")  # a task's name is what users type: never cut
    for t in all_tasks():
        head = f"mc ({t.num_choices})" if t.head == "multiple_choice" else \
            t.head.replace("classification", "cls").replace("_", " ") + (f" ({t.num_labels})" if t.num_labels > 1 else "")
        # Cells are read as markup: a task file's description holding "[/x]" raised MarkupError.
        table.add_row(*(escape(str(cell)) for cell in (t.name, head, t.metric, t.epochs, t.max_length, t.description)))
    output_console().print(table)  # piped: every column at its full width
    return 0


def _show_task(task, args: argparse.Namespace) -> int:
    from stilts_tui.tasks import load_examples
    from stilts_tui.tasks.metrics import (
        baseline_score,
        degenerate_threshold,
        majority_baseline,
        random_baseline,
    )

    splits = {s: load_examples(task, s, args.data_dir) for s in task.splits}
    dev = splits["dev"]
    label_names = (task.labels or tuple(str(i) for i in range(task.num_labels))) if task.head == "classification" \
        else tuple(str(i) for i in range(task.num_choices))
    dist = {s: {label_names[k]: v for k, v in sorted(Counter(example_labels(exs)).items())} for s, exs in splits.items()}
    info = {
        "task": task.name, "head": task.head, "metric": task.metric,
        "num_labels": task.num_labels if task.head == "classification" else None,
        "num_choices": task.num_choices or None, "epochs": task.epochs, "max_length": task.max_length,
        "splits": {s: len(exs) for s, exs in splits.items()}, "label_distribution": dist,
        "majority_baseline": majority_baseline(task, dev), "random_baseline": random_baseline(task),
        "baselines_in_metric": {k: baseline_score(task, dev, k) for k in ("majority", "random")},
        "degenerate_threshold": degenerate_threshold(task, dev),
    }
    encoded = None
    if args.model:
        quiet_transformers()
        from transformers import AutoTokenizer

        from stilts_tui.models import resolve_model
        from stilts_tui.tasks.encode import decode_example, encode

        tok = AutoTokenizer.from_pretrained(resolve_model(args.model))
        feats = encode(task, splits["train"][:1], tok, task.max_length)
        encoded = decode_example(tok, feats, 0)
        info["example"] = {"model": args.model, "decoded": encoded, "label": next(iter(example_labels(splits["train"][:1])), None)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.markup import escape

    # The name, description and label names come from task files: literal text, never markup.
    c = output_console()  # piped: each line whole, not wrapped at 80 columns
    c.print(f"[bold]{escape(task.name)}[/] — {escape(task.description)}")
    c.print(f"head {task.head}, metric {task.metric}, defaults {task.epochs} epochs / {task.max_length} tokens")
    for s, n in info["splits"].items():
        c.print(f"  {s:<6} {n:>7,} examples   labels {dist[s]}", markup=False)
    c.print(f"dev majority class {info['majority_baseline']:.4f}, random guess {info['random_baseline']:.4f} "
            f"(as {task.metric}: {info['baselines_in_metric']['majority']:.4f} / {info['baselines_in_metric']['random']:.4f}); "
            f"a run is degenerate at or below {info['degenerate_threshold']:.4f}")
    if encoded:
        c.print(f"first training example as {args.model} sees it (label {info['example']['label']}):", markup=False)
        for line in encoded:
            c.print("  " + line, markup=False)
    return 0


def cmd_build_data(args: argparse.Namespace) -> int:
    kind = args.kind
    if kind in ("hellaswag-p", "hella-sh"):
        from stilts_tui.data.hellaswag import build

        counts: dict = build(kind, Path(args.hellaswag_dir), Path(args.out), seed=args.seed)
    elif kind == "synthesis-gpt2":
        quiet_transformers()
        from stilts_tui.data.synthesis import build as build_synthesis
        from stilts_tui.models import resolve_model

        counts = build_synthesis(Path(args.source), Path(args.out), dev_source=Path(args.dev_source),
                                 model_name=resolve_model(args.model), n=args.n, dev_n=args.dev_n,
                                 batch_size=args.batch_size, seed=args.seed, device=args.device)
    elif kind == "demo":
        from stilts_tui.data.demo import build as build_demo

        counts = build_demo(Path(args.out), seed=args.seed)
    elif kind == "subsample":
        from stilts_tui.data.subsample import subsample_file

        labels = (Path(args.labels[0]), Path(args.labels[1])) if args.labels else None
        counts = {"kept": subsample_file(Path(args.src), Path(args.dst), args.n, args.seed, args.header, labels)}
    else:  # argparse restricts the choices
        raise StiltsError(f"unknown builder {kind}")
    print(json.dumps({"built": kind, "rows": counts}))
    return 0


def register(sub: Commands) -> None:
    """Add this module's commands to `stilts`."""
    t = sub.add_parser("tasks", help="list tasks, or show one task's data (stilts tasks show NAME)")
    t.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    t.add_argument("name", nargs="?")
    t.add_argument("--data-dir", help="folder with the official release files (default: the Hugging Face hub)")
    t.add_argument("--model", default=None, help="tokenizer used to show an encoded example (e.g. minilm)")
    t.add_argument("--task-file", action="append", help="a TOML task definition to register (repeatable)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=cmd_tasks)

    b = sub.add_parser("build-data", help="build HellaSwag-p, Hella-sh, Synthesis_GPT2 or a subsample")
    bsub = b.add_subparsers(dest="kind", metavar="BUILDER", required=True)
    for kind in ("hellaswag-p", "hella-sh"):
        x = bsub.add_parser(kind, help=f"{kind} from the HellaSwag release files")
        x.add_argument("--hellaswag-dir", required=True, help="folder with hellaswag_train.jsonl and hellaswag_val.jsonl")
        x.add_argument("--out", required=True)
        x.add_argument("--seed", type=int, default=42)
    s = bsub.add_parser("synthesis-gpt2", help="real vs LM-generated sentence endings (resumable)")
    s.add_argument("--source", required=True, help="SQuAD v1.1 train-v1.1.json (or a jsonl / text file of paragraphs)")
    s.add_argument("--dev-source", required=True, help="SQuAD v1.1 dev-v1.1.json: the dev set, built the same way")
    s.add_argument("--out", required=True)
    s.add_argument("--model", default="gpt2-medium", help="causal LM: hub id or local folder")
    s.add_argument("--n", type=int, default=30000, help="train examples kept after the seed-42 shuffle (reference: 30,000)")
    s.add_argument("--dev-n", type=int, default=30000, help="dev examples kept (default: every qualifying sentence)")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--device", default=None)
    u = bsub.add_parser("subsample", help="N rows of a training file, reproducible for a seed")
    u.add_argument("src")
    u.add_argument("dst")
    u.add_argument("--n", type=int, required=True)
    u.add_argument("--seed", type=int, default=42)
    u.add_argument("--header", action="store_true", help="the first line is a header (RTE tsv)")
    u.add_argument("--labels", nargs=2, metavar=("SRC_LST", "DST_LST"), help="a separate label file to subsample alike")
    d = bsub.add_parser("demo", help="the offline demo's generated tasks (demo_acceptability, demo_realfake)")
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_build_data)
