"""`stilts bench`: worker, sweep, results and tui benchmarks against the obvious alternative."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stilts_tui.cli.common import REPO, Commands, quiet_transformers
from stilts_tui.errors import StiltsError
from stilts_tui.runner.options import add_slot_arguments


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
    task_file = REPO / "experiments" / "tasks" / "demo_acceptability.toml"
    register_task_file(task_file)
    return task, data_dir, [str(task_file)]


def cmd_bench_results(args: argparse.Namespace) -> int:
    from stilts_tui.bench.results import render, run_bench

    try:
        sizes = [int(x) for x in str(args.runs).split(",") if x.strip()]
    except ValueError:
        raise StiltsError(f"--runs {args.runs!r}: give run counts, e.g. --runs 10000,100000") from None
    if not sizes or min(sizes) < 1 or args.repeat < 1:
        raise StiltsError("--runs and --repeat must be at least 1")
    for n in sizes:
        result = run_bench(n, args.repeat)
        print(json.dumps(result) if args.json else render(result), end="\n" if args.json else "")
    return 0


def cmd_bench_store(args: argparse.Namespace) -> int:
    from stilts_tui.bench.store import render, run_bench

    if args.runs < 1 or args.changes < 2 or args.rewrites < 0:
        raise StiltsError("--runs must be at least 1, --changes at least 2, --rewrites at least 0")
    result = run_bench(args.runs, min(args.changes, 2 * args.runs), args.rewrites, args.fold_mb)
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
    quiet_transformers()
    from stilts_tui.bench.sweep import render, run_bench
    from stilts_tui.runner.options import options_from_args
    from stilts_tui.tasks import get_task

    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    bad = [w for w in ways if w not in ("trainer", "one-by-one", "runner", "fused")]
    if bad or "runner" not in ways:
        raise StiltsError(f"--ways {args.ways!r}: ways are trainer, one-by-one, runner and fused (runner required)",
                          "e.g. --ways one-by-one,runner")
    if args.fuse is not None and args.fuse < 2:
        raise StiltsError(f"--fuse {args.fuse}: fusing needs at least 2 trials per group", "e.g. --fuse 4")
    if args.fuse and "fused" not in ways:
        ways.append("fused")  # --fuse N: the same runs fused, against the unfused runner
    if "fused" in ways and not args.fuse:
        raise StiltsError("--ways fused needs --fuse N (trials per group)", "e.g. --fuse 4 --ways runner")
    task, data_dir, task_files = _bench_data(args.task, args.data_dir, Path(args.workdir))
    if get_task(task).head != "classification":
        raise StiltsError(f"bench sweep's Trainer baseline needs a classification task; {task} is multiple choice",
                          "use --task rte, rte-shaped, cola, wic or demo_acceptability")
    result = run_bench(args.model, task, data_dir, args.runs, args.train_size, args.epochs, args.batch_size,
                       args.max_length, options_from_args(args), ways, task_files, args.peak_tflops, args.grid,
                       fuse=args.fuse)
    print(json.dumps(result) if args.json else render(result), end="" if not args.json else "\n")
    return 0


def cmd_bench_gpu(args: argparse.Namespace) -> int:
    import os

    if args.budget_s <= 0:
        raise StiltsError("--budget-s must be a positive number of seconds", "e.g. --budget-s 480")
    if args.device == "cpu":  # before torch first asks for CUDA: every run of the call, and the runner's workers
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    quiet_transformers()
    import datasets
    import torch

    datasets.disable_progress_bars()
    from stilts_tui.bench.gpu import JSON_NAME, MARKDOWN_NAME, run_gpu_bench

    if args.device == "cuda" and not torch.cuda.is_available():
        raise StiltsError("--device cuda, but torch sees no CUDA device here",
                          "run it on the GPU machine, or check it first here with --device cpu --quick")
    out = Path(args.out)
    report = run_gpu_bench(out, args.budget_s, args.device, args.quick, args.grid_runs,
                           step=lambda name: print(f"bench gpu: {name}", flush=True))
    failed = [s["path"] for s in report.smoke if not s["ok"]]
    failed += [part["path"] for part in (report.profile, report.grid, report.science) if part and part.get("error")]
    print(f"wrote {out / JSON_NAME} and {out / MARKDOWN_NAME}: {len(report.smoke) - len(failed)} of "
          f"{len(report.smoke)} smoke paths passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    quiet_transformers()
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


def register(sub: Commands) -> None:
    """Add this module's commands to `stilts`."""
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
    bs.add_argument("--fuse", type=int, default=None, help="also run the same runs with [train] fuse = N (the way "
                    "`fused`: runs that share model, data and device batch train as one model per worker)")
    bs.add_argument("--peak-tflops", type=float, default=989.0, help="per-GPU peak for MFU (default: H100 dense bf16)")
    bs.add_argument("--workdir", default="stilts-runs/bench", help="where generated data goes")
    bs.add_argument("--json", action="store_true")
    add_slot_arguments(bs, executor=False)
    bs.set_defaults(func=cmd_bench_sweep)
    br = be_sub.add_parser("results", help="stilts results / plot, and the matrix, correlation and ranking views, on synthetic results files of N runs")
    br.add_argument("--runs", default="10000", help="run counts, comma-separated (e.g. 10000,100000)")
    br.add_argument("--repeat", type=int, default=3)
    br.add_argument("--json", action="store_true")
    br.set_defaults(func=cmd_bench_results)
    bg = be_sub.add_parser("gpu", help="the GPU session's one call: every training path, a profile, and the paper's grid "
                           "against Trainer, within a budget, its report written after every step")
    bg.add_argument("--out", required=True, help="folder for bench-gpu.json and bench-gpu.md")
    bg.add_argument("--budget-s", type=float, default=480.0, help="stop starting new steps after this many seconds")
    bg.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    bg.add_argument("--quick", action="store_true", help="the tiny model and a few rows: the CPU check before the GPU call")
    bg.add_argument("--grid-runs", type=int, default=None, help="runs of the paper grid (default: 36; 2 with --quick)")
    bg.set_defaults(func=cmd_bench_gpu)
    bst = be_sub.add_parser("store", help="a runner's writes (runs starting and finishing) on a results file of N runs: "
                            "the journal against a rewrite of the whole file")
    bst.add_argument("--runs", type=int, default=100000)
    bst.add_argument("--changes", type=int, default=4000, help="status changes (two per run started and finished)")
    bst.add_argument("--rewrites", type=int, default=5, help="changes timed the old way (the whole file rewritten)")
    bst.add_argument("--fold-mb", type=float, default=None,
                     help="fold every this many MB of journal (default: the store's rule, 2 MB or 1/16 of the file)")
    bst.add_argument("--json", action="store_true")
    bst.set_defaults(func=cmd_bench_store)
    bt = be_sub.add_parser("tui", help="the app on N runs while 16 runs stream events: open time and key latency")
    bt.add_argument("--runs", type=int, default=5000)
    bt.add_argument("--streams", type=int, default=16)
    bt.add_argument("--rate", type=float, default=20.0, help="events per second per streaming run")
    bt.add_argument("--presses", type=int, default=100)
    bt.add_argument("--json", action="store_true")
    bt.set_defaults(func=cmd_bench_tui)
