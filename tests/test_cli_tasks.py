"""`stilts tasks` and `stilts build-data` through the real console entry point."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import shared_data_or_skip


def stilts(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "stilts_tui", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_clear_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    for f in fragments:
        assert f in proc.stderr, proc.stderr


def test_tasks_list_names_every_task():
    out = stilts("tasks").stdout
    for name in ("rte", "cola", "wic", "mednli", "socialiqa", "winogrande_xl", "hellaswag_p", "hella_sh",
                 "synthesis_gpt2", "cosmosqa"):
        assert name in out


def test_tasks_show_json(official_data):
    info = json.loads(stilts("tasks", "show", "socialiqa", "--data-dir", str(official_data), "--json").stdout)
    assert info["splits"] == {"train": 2, "dev": 2}
    assert info["random_baseline"] == 1 / 3
    assert info["majority_baseline"] == 0.5


def test_tasks_show_real_rte_with_an_encoded_example():
    data = shared_data_or_skip()
    info = json.loads(stilts("tasks", "show", "rte", "--data-dir", str(data), "--json", "--model", "minilm").stdout)
    assert info["splits"] == {"train": 2490, "dev": 277}
    assert info["majority_baseline"] == 146 / 277
    assert info["example"]["decoded"][0].startswith("[CLS] ")
    info = json.loads(stilts("tasks", "show", "cola", "--data-dir", str(data), "--json").stdout)
    assert info["splits"] == {"train": 8551, "dev": 527}
    assert info["label_distribution"]["dev"]["1"] == 365
    assert info["majority_baseline"] == 365 / 527


def test_bad_input_gives_one_clear_message(tmp_path, official_data):
    assert_clear_error(stilts("tasks", "show", "nope", "--data-dir", str(official_data), check=False), "unknown task 'nope'")
    assert_clear_error(stilts("tasks", "show", "rte", "--data-dir", str(tmp_path / "absent"), check=False), "does not exist")
    assert_clear_error(stilts("tasks", "show", "rte", check=False), "pass --data-dir")
    empty = tmp_path / "RTE"
    empty.mkdir()
    (empty / "train.tsv").write_text("")
    assert_clear_error(stilts("tasks", "show", "rte", "--data-dir", str(tmp_path), check=False), "train.tsv", "no data rows")
    assert_clear_error(stilts("build-data", "subsample", str(tmp_path / "x"), str(tmp_path / "y"), "--n", "3", check=False),
                       "file not found")


def test_build_data_cli(official_data, tmp_path):
    out = json.loads(stilts("build-data", "hella-sh", "--hellaswag-dir", str(official_data / "hellaswag"),
                            "--out", str(tmp_path / "sh")).stdout)
    assert out == {"built": "hella-sh", "rows": {"train": 2, "dev": 2}}


def test_main_reads_only_the_argv_it_is_given(monkeypatch):
    """`main([])` is `stilts` with no arguments (the app, on the default results file), not the
    test runner's own command line."""
    import sys

    from stilts_tui import cli
    from stilts_tui.cli import tui

    seen = []
    monkeypatch.setattr(tui, "cmd_tui", lambda args: seen.append(args.db) or 0)
    monkeypatch.setattr(sys, "argv", ["stilts", "--db", "/elsewhere/results.json"])
    assert cli.main([]) == 0 and seen == [cli.DEFAULT_DB]
    assert cli.main(["tui", "--db", "x.json"]) == 0 and seen[-1] == "x.json"


def test_each_command_is_handled_in_the_module_that_declares_its_parser():
    """The CLI package keeps a command's parser beside its handler: a command registered by
    one module and handled by another would be the old one-file CLI creeping back."""
    import argparse

    from stilts_tui.cli import GROUPS

    def leaves(parser: argparse.ArgumentParser, path: str, func=None):
        func = parser.get_default("func") or func  # a group's handler serves its sub-commands
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, func
        for action in subs:
            for name, child in action.choices.items():
                yield from leaves(child, f"{path} {name}".strip(), func)

    seen = {}
    for group in GROUPS:
        root = argparse.ArgumentParser()
        group.register(root.add_subparsers())
        for path, func in leaves(root, ""):
            assert func is not None, f"stilts {path} has no handler"
            assert func.__module__ == group.__name__, f"stilts {path} is handled in {func.__module__}"
            seen[path] = group.__name__
    assert {"run", "plan", "results", "tui", "demo", "bench worker", "build-data demo"} <= set(seen)
