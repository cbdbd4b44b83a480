"""`stilts`: the command line. Every user error is one message and a fix, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from stilts_tui.errors import StiltsError
from stilts_tui.records import RunStatus
from stilts_tui.runner.options import RunnerOptions, add_slot_arguments


def _quiet_transformers() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# --------------------------------------------------------------------------- tasks


def cmd_tasks(args: argparse.Namespace) -> int:
    from stilts_tui.tasks import all_tasks, get_task

    for f in args.task_file or []:
        from stilts_tui.tasks import register_task_file

        register_task_file(f)
    if args.action == "show":
        if not args.name:
            raise StiltsError("`stilts tasks show` needs a task name", "e.g. stilts tasks show rte --data-dir DIR")
        return _show_task(get_task(args.name), args)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tasks", show_lines=False)
    for col in ("name", "head", "metric", "epochs", "max tokens", "description"):
        table.add_column(col)
    for t in all_tasks():
        head = f"cls ({len(t.labels)})" if t.head == "classification" else f"mc ({t.num_choices})"
        table.add_row(t.name, head, t.metric, str(t.epochs), str(t.max_length), t.description)
    Console().print(table)
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
    label_names = task.labels if task.head == "classification" else tuple(str(i) for i in range(task.num_choices))
    dist = {s: {label_names[k]: v for k, v in sorted(Counter(ex.label for ex in exs).items())} for s, exs in splits.items()}
    info = {
        "task": task.name, "head": task.head, "metric": task.metric,
        "num_labels": len(task.labels) if task.head == "classification" else None,
        "num_choices": task.num_choices or None, "epochs": task.epochs, "max_length": task.max_length,
        "splits": {s: len(exs) for s, exs in splits.items()}, "label_distribution": dist,
        "majority_baseline": majority_baseline(task, dev), "random_baseline": random_baseline(task),
        "baselines_in_metric": {k: baseline_score(task, dev, k) for k in ("majority", "random")},
        "degenerate_threshold": degenerate_threshold(task, dev),
    }
    encoded = None
    if args.model:
        _quiet_transformers()
        from transformers import AutoTokenizer

        from stilts_tui.models import resolve_model
        from stilts_tui.tasks.encode import decode_example, encode

        tok = AutoTokenizer.from_pretrained(resolve_model(args.model))
        feats = encode(task, splits["train"][:1], tok, task.max_length)
        encoded = decode_example(tok, feats, 0)
        info["example"] = {"model": args.model, "decoded": encoded, "label": splits["train"][0].label}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.console import Console

    c = Console()
    c.print(f"[bold]{task.name}[/] — {task.description}")
    c.print(f"head {task.head}, metric {task.metric}, defaults {task.epochs} epochs / {task.max_length} tokens")
    for s, n in info["splits"].items():
        c.print(f"  {s:<6} {n:>7,} examples   labels {dist[s]}")
    c.print(f"dev majority class {info['majority_baseline']:.4f}, random guess {info['random_baseline']:.4f} "
            f"(as {task.metric}: {info['baselines_in_metric']['majority']:.4f} / {info['baselines_in_metric']['random']:.4f}); "
            f"a run is degenerate at or below {info['degenerate_threshold']:.4f}")
    if encoded:
        c.print(f"first training example as {args.model} sees it (label {info['example']['label']}):")
        for line in encoded:
            c.print("  " + line, markup=False)
    return 0


# --------------------------------------------------------------------------- build-data


def cmd_build_data(args: argparse.Namespace) -> int:
    kind = args.kind
    if kind in ("hellaswag-p", "hella-sh"):
        from stilts_tui.data.hellaswag import build

        counts: dict = build(kind, Path(args.hellaswag_dir), Path(args.out), seed=args.seed)
    elif kind == "synthesis-gpt2":
        _quiet_transformers()
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


# --------------------------------------------------------------------------- run / results / demo

DEFAULT_DB = "stilts-runs/results.json"


def _foreground(db: Path, name: str, runs: list, options: RunnerOptions, resume: bool = False,
                sweep_file: str | None = None) -> dict[str, int]:
    """The runner in this process, with a progress display; Ctrl-C stops it cleanly."""
    from stilts_tui.runner.control import ensure_no_runner
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.loop import Runner
    from stilts_tui.runner.options import slots_from_options
    from stilts_tui.runner.slurm import slurm_lane
    from stilts_tui.sweep.progress import SweepProgress

    ensure_no_runner(RunnerFiles(db))
    lane = slurm_lane(db, options)
    slots = [] if lane else slots_from_options(options, runs)
    where = f"Slurm ({lane.settings.describe()})" if lane else \
        f"{len(slots)} slot(s) ({', '.join(s.device for s in slots[:4])}{', …' if len(slots) > 4 else ''})"
    print(f"{name}: {len(runs)} runs on {where}; results in {db}", file=sys.stderr)
    with SweepProgress(len(runs)) as progress:
        runner = Runner(db, runs, slots, max_retries=options.max_retries, resume=resume, name=name,
                        sweep_file=sweep_file, on_event=progress.on_event, on_run=progress.on_run, lane=lane)
        progress.progress.update(progress.sweep, completed=0)
        counts = runner.run()
    if runner.stop_flag:
        raise KeyboardInterrupt
    return counts


def _sweep_summary(db: Path, runs: list) -> str:
    from stilts_tui.store import Store

    done = set()
    if db.is_file():
        with Store(db) as store:
            done = {r["run_id"] for r in store.runs() if r.get("status") == RunStatus.FINISHED}
    n_int = sum(r.kind == "intermediate" for r in runs)
    left = sum(r.run_id not in done for r in runs)
    return f"{len(runs)} runs ({n_int} intermediate), {len(runs) - left} already finished, {left} to run"


def cmd_run(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import launch
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.options import options_from_args, with_executor
    from stilts_tui.sweep.spec import expand, load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir)
    db = Path(args.db)
    options = with_executor(options_from_args(args), spec)
    runs = expand(spec, db.parent)
    summary = _sweep_summary(db, runs)
    if args.foreground:
        print(f"{spec.name}: {summary}", file=sys.stderr)
        counts = _foreground(db, spec.name, runs, options)
        _print_results(db, "table", runs=False, spec=spec.name)
        return 0 if counts["failed"] == 0 and counts["blocked"] == 0 else 1
    pid = launch(db, spec.name, runs, options, str(Path(args.spec).resolve()))
    print(f"{spec.name}: {summary}\n"
          f"runner started in the background (pid {pid}); it keeps going if this terminal closes.\n"
          f"  watch:   stilts status --db {db}\n"
          f"  stop:    stilts stop --all --db {db}\n"
          f"  results: stilts results --db {db}\n"
          f"  log:     {RunnerFiles(db).log}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import last_sweep, start_detached
    from stilts_tui.runner.sweepfile import read_sweep

    db = Path(args.db)
    sweep_file = last_sweep(db)
    name, runs, options = read_sweep(sweep_file)
    if args.foreground:
        counts = _foreground(db, name, runs, options, resume=True, sweep_file=sweep_file)
        _print_results(db, "table", runs=False, spec=name)
        return 0 if counts["failed"] == 0 and counts["blocked"] == 0 else 1
    pid = start_detached(db, Path(sweep_file), resume=True)
    print(f"{name}: {_sweep_summary(db, runs)}; runner resumed in the background (pid {pid})\n"
          f"  watch: stilts status --db {db}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from stilts_tui.runner.status import render_status, sweep_status

    db = Path(args.db)
    if not db.is_file():
        raise StiltsError(f"results file {db} not found", "start a sweep with stilts run SPEC, or pass --db PATH")
    st = sweep_status(db)
    if args.json:
        print(json.dumps(st, default=str))
    else:
        sys.stdout.write(render_status(st))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import stop_all, stop_run

    db = Path(args.db)
    if bool(args.run) == bool(args.all):
        raise StiltsError("say what to stop: a run id, or --all", "stilts stop RUN_ID  or  stilts stop --all")
    if args.all:
        out = stop_all(db, timeout=args.timeout)
        if out["runner"] is None and out.get("cancelled"):
            print(f"no runner on {db}; cancelled the Slurm jobs of {out['cancelled']} run(s), queued again: "
                  f"stilts resume --db {db} continues")
        elif out["runner"] is None:
            print(f"no sweep is running on {db}")
        else:
            print(f"stopped the sweep on {db} (runner pid {out['runner']}); runs in flight are queued again: "
                  f"stilts resume --db {db} continues")
        return 0
    status = stop_run(db, args.run, timeout=args.timeout)
    print(f"run {args.run}: {status}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from stilts_tui.runner.control import retry_run

    print(retry_run(Path(args.db), args.run))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from stilts_tui.runner.estimate import estimate_seconds
    from stilts_tui.store import Store
    from stilts_tui.sweep.spec import expand, load_spec, shadowed_settings

    spec = load_spec(args.spec, data_dir=args.data_dir)
    db = Path(args.db)
    runs = expand(spec, db.parent)
    records: list[dict] = []
    if db.is_file():
        with Store(db) as store:
            records = store.runs()
    finished = {r["run_id"] for r in records if r.get("status") == RunStatus.FINISHED}
    fmt = "json" if args.json else args.format
    if args.runs:
        return _print_resolved_runs(runs, finished, fmt)
    todo = [r for r in runs if r.run_id not in finished]
    kinds = Counter(r.kind for r in runs)
    seconds, basis = estimate_seconds(todo, records)
    notes = shadowed_settings(spec)
    out = {"spec": spec.name, "runs": len(runs), "by_kind": dict(kinds), "done": len(runs) - len(todo),
           "to_run": len(todo), "estimate_device_hours": None if seconds is None else seconds / 3600,
           "estimate_basis_runs": basis, "notes": notes}
    if fmt == "json":
        print(json.dumps(out))
        return 0
    print(f"{spec.name}: {len(runs)} runs (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
    print(f"  already finished: {out['done']}   to run: {len(todo)}")
    if seconds is None:
        print("  estimate: no run of this model has finished in the store yet; run a few, then plan again")
    else:
        print(f"  estimate: {seconds / 3600:.2f} device-hours (one slot), from the throughput of {basis} finished run(s)")
    for note in notes:
        print(f"  note: {note}")
    print(f"  every run's settings: stilts plan {args.spec} --runs")
    return 0


def _print_resolved_runs(runs: list, finished: set[str], fmt: str) -> int:
    from rich.console import Console
    from rich.table import Table

    from stilts_tui.sweep.resolved import resolve

    rows = resolve(runs, finished)
    if fmt == "json":
        print(json.dumps([r.as_dict() for r in rows]))
        return 0
    columns = [("run", "run_id"), ("kind", "kind"), ("task", "task"), ("from", "intermediate"), ("lr", "lr"),
               ("batch", "batch_size"), ("dev", "device_batch"), ("acc", "accumulation"), ("wu", "warmup_ratio"),
               ("wu steps", "warmup_steps"), ("steps", "total_steps"), ("ep", "epochs"), ("len", "max_length"),
               ("precision", "precision"), ("optimizer", "optimizer"), ("clip", "grad_clip"), ("size", "train_size"),
               ("seed", "seed"), ("done", "done")]
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for title, _ in columns:
        table.add_column(title, no_wrap=True, overflow="ellipsis")
    for r in rows:
        d = r.as_dict()
        table.add_row(*("—" if d[k] is None else ("✓" if d[k] is True else "" if d[k] is False else f"{d[k]:g}"
                        if isinstance(d[k], float) else str(d[k])) for _, k in columns))
    Console(width=max(Console().width, 400)).print(table)  # one line per run, however wide
    print("wu steps / steps: int(warmup_ratio x total) from the official train sizes (run.py l. 67, 79); "
          "dev x acc: device batch and accumulation")
    return 0


def _load_records(db: Path, spec: str | None = None, filters: list[str] | None = None) -> list[dict]:
    from stilts_tui.analysis.filters import apply_filters, parse_filters
    from stilts_tui.store import Store

    wanted = parse_filters(filters)
    with Store(db) as store:
        records = store.runs()
    if spec:
        records = [r for r in records if r.get("spec") == spec]
    return apply_filters(records, wanted)


def _print_results(db: Path, fmt: str, runs: bool, spec: str | None = None, **kw) -> None:
    from stilts_tui.analysis.report import render_results

    sys.stdout.write(render_results(_load_records(db, spec, kw.pop("filters", None)), fmt, runs, **kw))


def _by(text: str) -> tuple[str, ...]:
    fields = tuple(f.strip() for f in text.split(",") if f.strip())
    if not fields:
        raise StiltsError("--by needs at least one field", "e.g. --by intermediate,target or --by intermediate,target,lr")
    return fields


def cmd_results(args: argparse.Namespace) -> int:
    if args.resamples < 0:
        raise StiltsError("--resamples must be 0 or more")
    import shutil

    # On a terminal the table fits its width (least important columns left out); piped, 120.
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120
    _print_results(Path(args.db), args.format, args.runs, args.spec, filters=args.filter, by=_by(args.by),
                   baseline=args.baseline or None, resamples=args.resamples, seed=args.seed, view=args.view,
                   width=width)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from stilts_tui.analysis.report import violins_for

    records = _load_records(Path(args.db), args.spec, args.filter)
    targets = sorted({r["target"] for r in records if r.get("kind") == "target"})
    if args.target not in targets:
        raise StiltsError(f"no target runs for {args.target!r} in {args.db}",
                          "targets with runs: " + (", ".join(targets) or "none yet"))
    if args.width < 40 or args.height < 6:
        raise StiltsError("--width must be at least 40 and --height at least 6")
    sys.stdout.write(violins_for(records, args.target, args.baseline, args.width, args.height))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from stilts_tui.analysis.report import markdown_report

    source = Path(args.source)
    if not source.is_file():
        raise StiltsError(f"{source} not found", "give an experiment spec (.toml) or a results file (.json)")
    spec_text, spec_name, db = None, None, Path(args.db)
    if source.suffix == ".toml":
        from stilts_tui.sweep.spec import load_spec

        spec_name = load_spec(source).name
        spec_text = source.read_text(encoding="utf-8")
    else:
        db = source
    records = _load_records(db, spec_name, args.filter)
    title = args.title or (f"stilts report: {spec_name}" if spec_name else f"stilts report: {db}")
    text = markdown_report(records, title, spec_text, args.baseline, args.resamples, args.seed)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(records)} runs)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stilts_tui.data import demo
    from stilts_tui.sweep.spec import load_spec

    if args.data_dir:  # check before building anything
        from stilts_tui.tasks import get_task, load_examples

        try:
            load_examples(get_task("rte"), "train", args.data_dir)
        except StiltsError as exc:
            raise StiltsError(f"--data-dir {args.data_dir} has no readable RTE files: {exc.problem}",
                              "point it at a folder holding RTE/train.tsv and RTE/dev.tsv (GLUE format)") from None
    workdir = Path(args.workdir)
    generated = workdir / "data"
    demo.build(generated)
    spec_path = Path(__file__).resolve().parent.parent / "experiments" / "demo.toml"
    if not spec_path.is_file():
        raise StiltsError(f"demo spec {spec_path} not found", "run the demo from a clone of the repository (make demo)")
    spec = load_spec(spec_path, data_dir=str(generated))
    if args.data_dir:
        spec.targets = ["rte"]
        spec.tasks["rte"] = {"data_dir": str(Path(args.data_dir).resolve()), "train_size": 512, "epochs": 2}
        spec.name = "demo-rte"
    print(f"demo: {'real RTE' if args.data_dir else 'generated demo_acceptability'} as the target; "
          f"generated data in {generated}", file=sys.stderr)
    db = workdir / "results.json"
    from stilts_tui.sweep.spec import expand

    runs = expand(spec, db.parent)
    print(f"{spec.name}: {_sweep_summary(db, runs)}", file=sys.stderr)
    counts = _foreground(db, spec.name, runs, RunnerOptions(slots=args.slots, threads=args.threads))
    _print_results(db, "table", runs=False, spec=spec.name)
    from stilts_tui.analysis.report import violins_for

    target = "rte" if args.data_dir else "demo_acceptability"
    print()
    sys.stdout.write(violins_for(_load_records(db, spec.name), target))
    return 0 if counts["failed"] == 0 else 1


def _bench_data(task: str, data_dir: str | None, workdir: Path) -> tuple[str, str | None, list[str]]:
    """(task, data folder, task files) of a benchmark: the generated demo task when no data folder
    is given, and a shaped task (e.g. rte-shaped) generated in the official format of its model."""
    from stilts_tui.bench.shaped import SHAPED_TASKS, write_rte_shaped

    if task in SHAPED_TASKS:
        if data_dir:
            raise StiltsError(f"--task {task} is generated; it takes no --data-dir",
                              f"drop --data-dir, or use --task {SHAPED_TASKS[task]} with the real files")
        data_dir = str((workdir / "data").resolve())
        write_rte_shaped(Path(data_dir) / "rte")
        return SHAPED_TASKS[task], data_dir, []
    if task != "demo_acceptability" or data_dir:
        return task, data_dir, []
    from stilts_tui.data import demo
    from stilts_tui.tasks import register_task_file

    data_dir = str((workdir / "data").resolve())
    demo.build(Path(data_dir), target_train=512, target_dev=256)
    task_file = Path(__file__).resolve().parent.parent / "experiments" / "tasks" / "demo_acceptability.toml"
    register_task_file(task_file)
    return task, data_dir, [str(task_file)]


def cmd_bench_results(args: argparse.Namespace) -> int:
    from stilts_tui.bench.results import render, run_bench

    if args.runs < 1 or args.repeat < 1:
        raise StiltsError("--runs and --repeat must be at least 1")
    result = run_bench(args.runs, args.repeat)
    print(json.dumps(result) if args.json else render(result), end="\n" if args.json else "")
    return 0


def cmd_bench_tui(args: argparse.Namespace) -> int:
    from stilts_tui.bench.tui import render, run_bench

    if min(args.runs, args.streams, args.presses) < 1 or args.rate <= 0:
        raise StiltsError("--runs, --streams, --presses must be at least 1 and --rate positive")
    result = run_bench(args.runs, args.streams, args.rate, args.presses)
    print(json.dumps(result) if args.json else render(result), end="\n" if args.json else "")
    return 0


def cmd_bench_sweep(args: argparse.Namespace) -> int:
    _quiet_transformers()
    from stilts_tui.bench.sweep import render, run_bench
    from stilts_tui.runner.options import options_from_args
    from stilts_tui.tasks import get_task

    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    bad = [w for w in ways if w not in ("trainer", "one-by-one", "runner")]
    if bad or "runner" not in ways:
        raise StiltsError(f"--ways {args.ways!r}: ways are trainer, one-by-one and runner (runner required)",
                          "e.g. --ways one-by-one,runner")
    task, data_dir, task_files = _bench_data(args.task, args.data_dir, Path(args.workdir))
    if get_task(task).head != "classification":
        raise StiltsError(f"bench sweep's Trainer baseline needs a classification task; {task} is multiple choice",
                          "use --task rte, rte-shaped, cola, wic or demo_acceptability")
    result = run_bench(args.model, task, data_dir, args.runs, args.train_size, args.epochs, args.batch_size,
                       args.max_length, options_from_args(args), ways, task_files, args.peak_tflops, args.grid)
    print(json.dumps(result) if args.json else render(result), end="" if not args.json else "\n")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    _quiet_transformers()
    import datasets

    datasets.disable_progress_bars()
    from stilts_tui.bench.worker import run_bench

    task, data_dir, _ = _bench_data(args.task, args.data_dir, Path(args.workdir))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = run_bench(args.model, task, data_dir, args.train_size, args.epochs, args.batch_size, args.lr, args.seed,
                       args.max_length, repeat=args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"bench worker: {result['model']} on {task} ({args.train_size or 'all'} train examples, {args.epochs} epoch(s), "
          f"batch {args.batch_size}, lr {args.lr:g}, seed {args.seed}, max {args.max_length} tokens) on {result['device']}, "
          f"{result['torch_threads']} torch threads, median of {args.repeat} alternating run(s)")
    for name in ("stilts", "trainer"):
        r = result[name]
        each = ", ".join(f"{x:.1f}" for x in r["all_sequences_per_s"])
        print(f"  {name:<8} {r['sequences_per_s']:8.1f} sequences/s (runs: {each})   dev {r['metric']} {r['score']:.4f}")
    print(f"  ratio    {result['ratio']:.2f}x (stilts / Trainer)")
    return 0


# --------------------------------------------------------------------------- parser


def _bench_run_arguments(p: argparse.ArgumentParser, train_size: int, max_length_help: str | None = None) -> None:
    """The run a benchmark trains: shared by `bench worker` and `bench sweep`."""
    p.add_argument("--model", default="tiny", help="tiny (random 2-layer RoBERTa), roberta-large-random (RoBERTa-large's shape, random weights), "
                   "minilm, or a model path / hub id")
    p.add_argument("--task", default="demo_acceptability", help="a classification task (default: the generated demo task; rte-shaped: generated data "
                   "with RTE's size and lengths)")
    p.add_argument("--data-dir")
    p.add_argument("--train-size", type=int, default=train_size)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128, help=max_length_help)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stilts", description="Plan, run, watch and analyse STILTs sweeps.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

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

    tu = sub.add_parser("tui", help="the terminal app: plan, launch, watch and read a study (the default)")
    tu.add_argument("--db", default=DEFAULT_DB)
    tu.add_argument("--refresh", type=float, default=1.0, help="seconds between live updates (default 1)")
    tu.set_defaults(func=cmd_tui)

    r = sub.add_parser("run", help="run an experiment spec in the background (skips runs already finished)")
    r.add_argument("spec", help="experiment spec (TOML), e.g. experiments/demo.toml")
    r.add_argument("--data-dir", help="folder with the tasks' release files (overrides the spec's data_dir)")
    r.add_argument("--db", default=DEFAULT_DB, help=f"results file (default {DEFAULT_DB}); runs go beside it")
    r.add_argument("--foreground", action="store_true", help="run in this terminal with a progress display")
    add_slot_arguments(r)
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("resume", help="continue the sweep on a results file whose runner stopped or died")
    rs.add_argument("--db", default=DEFAULT_DB)
    rs.add_argument("--foreground", action="store_true")
    rs.set_defaults(func=cmd_resume)

    st = sub.add_parser("status", help="where the sweep stands: runs by status, what runs on each slot, ETA")
    st.add_argument("--db", default=DEFAULT_DB)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    sp = sub.add_parser("stop", help="stop one run (stilts stop RUN_ID) or the whole sweep (--all)")
    sp.add_argument("run", nargs="?")
    sp.add_argument("--all", action="store_true")
    sp.add_argument("--db", default=DEFAULT_DB)
    sp.add_argument("--timeout", type=float, default=30.0, help="seconds to wait before killing (default 30)")
    sp.set_defaults(func=cmd_stop)

    rt = sub.add_parser("retry", help="run a failed, stopped or blocked run again (in the running sweep, or a new runner)")
    rt.add_argument("run")
    rt.add_argument("--db", default=DEFAULT_DB)
    rt.set_defaults(func=cmd_retry)

    pl = sub.add_parser("plan", help="what a spec would run: runs, already done, estimated device-hours")
    pl.add_argument("spec")
    pl.add_argument("--data-dir")
    pl.add_argument("--db", default=DEFAULT_DB)
    pl.add_argument("--runs", action="store_true", help="one row per run with its fully resolved settings")
    pl.add_argument("--format", choices=["table", "json"], default="table")
    pl.add_argument("--json", action="store_true", help="the same as --format json")
    pl.set_defaults(func=cmd_plan)

    res = sub.add_parser("results", help="summary per (intermediate, target) with statistics, a paper table, or one row per run")
    res.add_argument("--db", default=DEFAULT_DB)
    res.add_argument("--format", choices=["table", "json", "csv", "markdown", "latex"], default="table")
    res.add_argument("--runs", action="store_true", help="one row per run instead of per pair")
    res.add_argument("--view", choices=["pairs", "table2", "table3", "table4", "figure3"], default="pairs",
                     help="pairs (default), table2 (best), table3 (Δ mean / Δ best), table4 (zero-shot), figure3 (size)")
    res.add_argument("--by", default="intermediate,target", help="fields to group by (default intermediate,target)")
    res.add_argument("--baseline", default="none", help="intermediate to compare against (default none; '' for no comparison)")
    res.add_argument("--filter", action="append", metavar="KEY=VALUE", help="only runs with this field value (repeatable)")
    res.add_argument("--resamples", type=int, default=1000, help="bootstrap / permutation resamples (default 1000)")
    res.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    res.add_argument("--spec", help="only runs of this spec name")
    res.set_defaults(func=cmd_results)

    pt = sub.add_parser("plot", help="violins of dev scores per intermediate for one target")
    pt.add_argument("target")
    pt.add_argument("--db", default=DEFAULT_DB)
    pt.add_argument("--filter", action="append", metavar="KEY=VALUE")
    pt.add_argument("--spec", help="only runs of this spec name")
    pt.add_argument("--baseline", default="none", help="the intermediate drawn first (default none)")
    pt.add_argument("--width", type=int, default=80)
    pt.add_argument("--height", type=int, default=14)
    pt.set_defaults(func=cmd_plot)

    rp = sub.add_parser("report", help="a Markdown report: every table, the violins, the spec and software versions")
    rp.add_argument("source", help="an experiment spec (.toml; its runs in --db) or a results file (.json)")
    rp.add_argument("-o", "--output", required=True)
    rp.add_argument("--db", default=DEFAULT_DB)
    rp.add_argument("--filter", action="append", metavar="KEY=VALUE")
    rp.add_argument("--baseline", default="none")
    rp.add_argument("--resamples", type=int, default=10000, help="resamples for intervals and tests (default 10000)")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--title")
    rp.set_defaults(func=cmd_report)

    dm = sub.add_parser("demo", help="the offline demo: a small real STILTs experiment on CPU")
    dm.add_argument("--data-dir", help="a folder with real RTE files: use RTE as the target")
    dm.add_argument("--workdir", default="stilts-runs/demo")
    dm.add_argument("--slots", type=int, help="runs at once (default: one per core)")
    dm.add_argument("--threads", type=int, help="threads per run (default 1)")
    dm.set_defaults(func=cmd_demo)

    be = sub.add_parser("bench", help="benchmarks against the obvious alternative (stilts bench worker)")
    be_sub = be.add_subparsers(dest="bench", metavar="BENCH", required=True)
    bw = be_sub.add_parser("worker", help="this worker vs Hugging Face Trainer on the same run")
    _bench_run_arguments(bw, train_size=512, max_length_help="truncation length; Trainer pads every input to it (run_glue)")
    bw.add_argument("--lr", type=float, default=2e-5)
    bw.add_argument("--seed", type=int, default=42)
    bw.add_argument("--threads", type=int, default=None)
    bw.add_argument("--repeat", type=int, default=1, help="alternate the two this many times; medians are reported")
    bw.add_argument("--workdir", default="stilts-runs/bench")
    bw.add_argument("--json", action="store_true")
    bw.set_defaults(func=cmd_bench)
    bs = be_sub.add_parser("sweep", help="the same grid one run at a time (Trainer, this worker) vs the runner")
    _bench_run_arguments(bs, train_size=256)
    bs.add_argument("--runs", type=int, default=8)
    bs.add_argument("--grid", choices=["small", "paper"], default="small",
                    help="small: 2 lrs x seeds at --batch-size; paper: the study's 36-point target grid (first --runs)")
    bs.add_argument("--ways", default="trainer,one-by-one,runner", help="which of trainer, one-by-one, runner")
    bs.add_argument("--peak-tflops", type=float, default=989.0, help="per-GPU peak for MFU (default: H100 dense bf16)")
    bs.add_argument("--workdir", default="stilts-runs/bench", help="where generated data goes")
    bs.add_argument("--json", action="store_true")
    add_slot_arguments(bs, executor=False)
    bs.set_defaults(func=cmd_bench_sweep)
    br = be_sub.add_parser("results", help="stilts results / plot on a synthetic results file of N runs")
    br.add_argument("--runs", type=int, default=10000)
    br.add_argument("--repeat", type=int, default=3)
    br.add_argument("--json", action="store_true")
    br.set_defaults(func=cmd_bench_results)
    bt = be_sub.add_parser("tui", help="the app on N runs while 16 runs stream events: open time and key latency")
    bt.add_argument("--runs", type=int, default=5000)
    bt.add_argument("--streams", type=int, default=16)
    bt.add_argument("--rate", type=float, default=20.0, help="events per second per streaming run")
    bt.add_argument("--presses", type=int, default=100)
    bt.add_argument("--json", action="store_true")
    bt.set_defaults(func=cmd_bench_tui)
    return p


def cmd_tui(args: argparse.Namespace) -> int:
    from stilts_tui.app.app import StiltsApp

    if args.refresh <= 0:
        raise StiltsError("--refresh must be positive", "e.g. --refresh 1")
    StiltsApp(args.db, refresh_s=args.refresh).run()
    print(f"stilts tui closed; any sweep on {args.db} keeps running (stilts status --db {args.db})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv  # main([]) is `stilts` alone, whatever the real command line
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["tui", *argv])
    try:
        return int(args.func(args) or 0)
    except StiltsError as exc:
        print(f"error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
