"""Faults a lab meets every month, injected rather than waited for: a full disk at each of the
sweep's write paths (then space freed and the sweep resumed: every run exactly once, the results
of an uninterrupted sweep), a real full tmpfs, and a run that hangs (caught by its stall limit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from runner_helpers import stilts

from stilts_tui import diskspace
from stilts_tui.domain.events import read_events
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.files import RunnerFiles
from stilts_tui.runner.loop import Runner
from stilts_tui.runner.slots import plan_slots
from stilts_tui.runner.stall import FLOOR_S, LOADING_FACTOR, StallWatch
from stilts_tui.runner.status import render_status, sweep_status
from stilts_tui.store import Store
from stilts_tui.sweep.expand import expand
from stilts_tui.sweep.spec import parse_spec


def fault_spec(tiny_models, train_data) -> dict:
    return {"name": "faults", "model": str(tiny_models["roberta"]), "data_dir": str(train_data),
            "intermediates": ["none", "hellaswag"], "targets": ["rte"],
            "grid": {"lr": [1e-3], "batch_size": [8], "seed": [1]},
            "intermediate": {"lr": 1e-3, "batch_size": 2},
            "tasks": {"rte": {"epochs": 1, "max_length": 32}, "hellaswag": {"epochs": 1, "max_length": 32}}}


def write_spec(path: Path, raw: dict) -> Path:
    import tomli_w

    path.write_bytes(tomli_w.dumps(raw).encode())
    return path


def scores(db: Path) -> dict[str, float]:
    with Store(db) as store:
        return {r["run_id"]: r["score"] for r in store.runs() if r.get("status") == "finished"}


def one_finished_event_each(runs: list[RunConfig]) -> None:
    for cfg in runs:
        finished = [e for e in read_events(cfg.events_path) if e["event"] == "finished"]
        assert len(finished) == 1, (cfg.run_id, len(finished))


@pytest.fixture(scope="module")
def uninterrupted(tiny_models, train_data, tmp_path_factory) -> dict[str, float]:
    """The sweep's results when nothing goes wrong: what every faulty sweep must end with."""
    root = tmp_path_factory.mktemp("clean")
    runs = expand(parse_spec(fault_spec(tiny_models, train_data)), root)
    Runner(root / "results.json", runs, plan_slots(gpus=[], cpu_slots=1, threads=1)).run()
    out = scores(root / "results.json")
    assert len(out) == len(runs) == 3  # an intermediate, a target from it, the target from the pretrained model
    return out


@pytest.fixture
def no_injection(monkeypatch):
    diskspace.reset_injection()
    yield monkeypatch
    diskspace.reset_injection()


# ------------------------------------------------------------------ ENOSPC at each write path


@pytest.mark.parametrize("point", ["checkpoint", "events:3", "cache:2", "run_file:2", "store:5", "state:3"])
def test_a_full_disk_pauses_the_sweep_and_resume_gives_the_uninterrupted_results(
        point, tiny_models, train_data, tmp_path, uninterrupted, no_injection):
    """The disk fills at one write path (the worker's checkpoint, event log or tokenised cache; the
    runner's run file, store or state file); then space is freed and `stilts resume` ends it."""
    freed = tmp_path / "space-freed"
    no_injection.setenv("STILTS_FAULT_ENOSPC", point)
    no_injection.setenv("STILTS_FAULT_ENOSPC_FREED", str(freed))
    runs = expand(parse_spec(fault_spec(tiny_models, train_data)), tmp_path)
    db = tmp_path / "results.json"
    notices: list[str] = []
    runner = Runner(db, runs, plan_slots(gpus=[], cpu_slots=1, threads=1), on_notice=notices.append)
    counts = runner.run()  # no traceback: the runner stops by itself

    assert runner.disk_full is not None, counts
    assert any("the disk is full" in n and "stilts resume" in n for n in notices), notices
    json.loads(db.read_text())  # the store is whole
    with Store(db) as store:
        records = store.runs()
    assert len(records) == 3 and all(r.get("retries", 0) == 0 for r in records)  # a full disk costs no retry
    assert any(r["status"] != "finished" for r in records)
    failed_for_space = [f for r in records for f in r.get("failures", []) if f["reason"] == "disk_full"]
    if point.split(":")[0] in ("checkpoint", "events", "cache"):  # the run said why it failed
        assert failed_for_space and all(r["status"] != "failed" for r in records)
    state = RunnerFiles(db).read_state()
    assert state["status"] == "stopped" and state["stop_reason"] == "disk_full" and state["disk_full"]["path"]
    st = sweep_status(db)
    text = render_status(st)
    assert "stopped" in text and "the disk is full" in text and f"stilts resume --db {db}" in text
    assert not (RunnerFiles(db).control / ".ballast").exists()

    freed.touch()  # space freed
    diskspace.reset_injection()
    Runner(db, runs, plan_slots(gpus=[], cpu_slots=1, threads=1), resume=True).run()
    assert scores(db) == uninterrupted
    one_finished_event_each(runs)


def test_stilts_run_on_a_full_disk_is_one_message(tiny_models, train_data, tmp_path):
    spec = write_spec(tmp_path / "s.toml", fault_spec(tiny_models, train_data))
    env = os.environ | {"STILTS_FAULT_ENOSPC": "state", "STILTS_FAULT_ENOSPC_FREED": str(tmp_path / "never")}
    proc = stilts("run", str(spec), "--db", str(tmp_path / "results.json"), check=False, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: the disk is full: could not write" in proc.stderr and "free space on" in proc.stderr


def test_a_disk_full_error_names_the_path_the_free_space_and_the_fix(tmp_path):
    import errno

    exc = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.bin"))
    assert diskspace.is_disk_full(exc)
    wrapped = RuntimeError("could not save")
    wrapped.__cause__ = exc
    assert diskspace.is_disk_full(wrapped) and diskspace.failed_path(wrapped) == str(tmp_path / "x.bin")
    assert diskspace.is_disk_full(RuntimeError("safetensors: No space left on device (os error 28)"))
    assert not diskspace.is_disk_full(OSError(errno.EACCES, "Permission denied"))
    err = diskspace.DiskFullError.from_os_error(wrapped, tmp_path)
    assert str(tmp_path / "x.bin") in err.problem and "free on" in err.problem and "stilts resume" in err.fix
    assert diskspace.fmt_bytes(0) == "0 B" and diskspace.fmt_bytes(3 * 2**30) == "3.0 GB"


# ------------------------------------------------------------------ told before launch


def test_the_disk_a_sweep_needs_counts_checkpoints_states_and_caches(tiny_models, train_data, tmp_path):
    from stilts_tui.runner.disk_need import ADAM_COPIES, TOKENIZER_BYTES, disk_need, model_params

    runs = expand(parse_spec(fault_spec(tiny_models, train_data) | {"intermediates": ["none", "hellaswag", "cola"]}),
                  tmp_path)
    inters = [r for r in runs if r.kind == "intermediate"]
    params = model_params(str(tiny_models["roberta"]))
    need = disk_need(runs, tmp_path, finished=set(), concurrent=2)
    assert need.checkpoints == 2 and need.checkpoint_bytes == params * 4 + TOKENIZER_BYTES
    # every run in flight saves a resumable state (every 10 min by default): two at once
    assert need.resume_states == 2 and need.cache_bytes > 0
    off = expand(parse_spec(fault_spec(tiny_models, train_data) | {"train": {"resume_every_s": 0}}), tmp_path)
    assert disk_need(off, tmp_path, finished=set(), concurrent=2).resume_states == 0  # turned off: none
    # a finished intermediate's checkpoint is already on disk; Slurm runs save resumable states
    later = disk_need(runs, tmp_path, finished={inters[0].run_id}, concurrent=2, saves_state=True)
    assert later.checkpoints == 1 and later.resume_states == 2 and later.resume_bytes == params * 4 * ADAM_COPIES
    assert later.total == 1 * later.checkpoint_bytes + 2 * later.resume_bytes + later.cache_bytes
    assert not need.short and need.warning() is None  # this machine has room for a tiny model


def test_stilts_plan_warns_when_the_disk_is_too_small(tmp_path, capsys, monkeypatch):
    from stilts_tui.cli import main

    monkeypatch.setattr("stilts_tui.runner.disk_need.free_bytes", lambda _path: 2 * 2**30)
    assert main(["plan", str(REPO / "experiments/figure2.toml"), "--db", str(tmp_path / "results.json")]) == 0
    out = capsys.readouterr().out
    assert "disk: ≈ " in out and "3 checkpoint(s) x 1.3 GB" in out and "2.0 GB free on" in out
    assert "warning: not enough disk" in out and "stilts resume" in out
    assert main(["plan", str(REPO / "experiments/figure2.toml"), "--db", str(tmp_path / "results.json"), "--json"]) == 0
    disk = json.loads(capsys.readouterr().out)["disk"]
    assert disk["short"] and disk["checkpoints"] == 3 and disk["free_bytes"] == 2 * 2**30


# ------------------------------------------------------------------ a real full filesystem


def _mount_namespace() -> list[str] | None:
    """A private mount namespace for this test's tmpfs: `unshare -m` as root, `-Urm` otherwise."""
    if shutil.which("unshare") is None:
        return None
    for cmd in (["unshare", "-m"] if os.geteuid() == 0 else [], ["unshare", "-Urm"]):
        if cmd and subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    return None


def test_a_real_full_tmpfs_then_space_freed_then_resume(tiny_models, train_data, tmp_path, uninterrupted):
    """The sweep's folder on a 4 MB tmpfs, filled up to 8 KB of free space before it starts: the
    runner pauses with one message and no traceback; deleting the filler and `stilts resume`
    give every run once, with the uninterrupted results."""
    ns = _mount_namespace()
    if ns is None:
        pytest.skip("cannot mount a tmpfs here (needs root or unprivileged user namespaces: unshare -Urm)")
    spec = write_spec(tmp_path / "s.toml", fault_spec(tiny_models, train_data))
    out = tmp_path / "out"
    out.mkdir()
    stilts_cmd = f"{sys.executable} -m stilts_tui"
    script = f"""
set -u
mnt={tmp_path}/mnt; mkdir -p $mnt
mount -t tmpfs -o size=4m tmpfs $mnt || exit 77
db=$mnt/runs/results.json  # --no-preflight below: the checks would refuse a sweep this disk cannot hold
mkdir -p $mnt/runs
python3 - <<'EOF'
import os, shutil
free = shutil.disk_usage("{tmp_path}/mnt").free
with open("{tmp_path}/mnt/filler", "wb") as fh:
    fh.write(bytes(max(0, free - 300 * 1024)))  # the store and a few small files fit; a checkpoint does not
EOF
{stilts_cmd} run {spec} --db $db --foreground --slots 1 --no-preflight > {out}/run.out 2> {out}/run.err; echo $? > {out}/run.rc
{stilts_cmd} status --db $db > {out}/status.out 2>&1
rm $mnt/filler
{stilts_cmd} resume --db $db --foreground > {out}/resume.out 2> {out}/resume.err; echo $? > {out}/resume.rc
cp $db {out}/results.json
"""
    proc = subprocess.run([*ns, "bash", "-c", script], capture_output=True, text=True, timeout=600)
    if proc.returncode == 77:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()[:200]}")
    run_err = (out / "run.err").read_text()
    assert (out / "run.rc").read_text().strip() == "2", run_err[-2000:]
    assert "Traceback" not in run_err and "error: the disk is full" in run_err, run_err[-2000:]
    assert "stilts resume" in run_err
    status = (out / "status.out").read_text()
    assert "the disk is full" in status and "continue it with: stilts resume" in status, status
    assert (out / "resume.rc").read_text().strip() == "0", (out / "resume.err").read_text()[-2000:]
    with Store(out / "results.json") as store:
        records = store.runs()
    assert {r["run_id"]: r["score"] for r in records} == uninterrupted
    assert all(r["status"] == "finished" and r.get("retries", 0) == 0 for r in records)


# ------------------------------------------------------------------ stalls


def test_the_learnt_stall_limit():
    cfg = RunConfig(run_id="r1", kind="target", task="rte", model="m")
    watch = StallWatch()
    assert watch.limit(cfg, None) == FLOOR_S * LOADING_FACTOR  # nothing said yet: loading
    base = {"v": 1, "run_id": "r1", "attempt": 1}
    step = base | {"event": "step", "total_steps": 100, "epoch": 0.1, "loss": 1.0, "lr": 1e-3, "tokens_per_s": 1.0,
                   "memory_mb": None}
    watch.progress(cfg, base | {"event": "started", "t": 0.0, "dev_examples": 9000}, now=0.0)
    watch.progress(cfg, step | {"t": 10.0, "step": 10, "sequences_per_s": 5.0}, now=10.0)
    watch.progress(cfg, step | {"t": 1010.0, "step": 20, "sequences_per_s": 5.0}, now=1010.0)  # 100 s a step
    w = watch.runs["r1"]
    # 20 x 100 s a step; the quiet spell of 1000 s x 3; the dev pass: 9000 / (5 x 3) = 600 s, x 2
    assert watch.limit(cfg, w) == max(FLOOR_S, 20 * 100.0, 3 * 1000.0, 2 * 600.0) == 3000.0
    assert [s.run_id for s in watch.due([(cfg, 1, 0.0)], now=1010.0 + 2999)] == []
    [late] = watch.due([(cfg, 1, 0.0)], now=1010.0 + 3001)
    assert "after step 20 of 100" in late.message() and "stall limit 50m00s" in late.message()
    assert StallWatch(fixed_s=90.0).limit(cfg, w) == 90.0  # the user's limit is taken as it is,
    assert StallWatch(fixed_s=90.0).limit(cfg, None) == 270.0  # three times as long while loading


def test_a_hanging_run_is_killed_at_its_stall_limit_with_its_stacks_kept(tiny_models, train_data, tmp_path):
    """A real worker hangs: it is killed at its stall limit, after dumping every thread's stack
    into its log, whose tail is kept with the run. (That a stalled run is retried within its
    budget is the scheduler's: tests/test_scheduler.py.)"""
    raw = fault_spec(tiny_models, train_data) | {"intermediates": ["none"], "grid": {"lr": [1e-3], "batch_size": [8],
                                                                                    "seed": [1]}}
    runs = expand(parse_spec(raw), tmp_path)
    db = tmp_path / "results.json"
    env = os.environ | {"STILTS_FAULT_INJECT": "hang:2"}
    notices: list[str] = []
    counts = Runner(db, runs, plan_slots(gpus=[], cpu_slots=1, threads=1), env=env, max_retries=0,
                    stall_limit_s=4.0, on_notice=notices.append).run()
    [rec] = Store(db).runs()
    assert rec["status"] == "failed", rec
    [stall] = rec["failures"]
    assert stall["reason"] == "stalled" and "no progress for" in stall["message"] and "after step 1 of" in stall["message"]
    assert counts["stalled"] == 1
    assert any("_one_fault" in line or "sleep" in line for line in rec["stderr_tail"]), rec["stderr_tail"]
    assert notices and "stall limit 4s" in notices[0]
    assert rec["reason"] == "stalled" and "gave up after 0 retries" in rec["message"]
