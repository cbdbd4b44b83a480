"""The runner: concurrency on slots, warm workers, retries, detaching, stop, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from conftest import wait_for
from runner_helpers import run_runs, stilts

from stilts_tui.domain.events import read_events
from stilts_tui.errors import StiltsError
from stilts_tui.runner.files import Requests, RunnerFiles, process_alive
from stilts_tui.runner.slots import Gpu, model_shape, plan_slots, runs_per_gpu
from stilts_tui.store import Store
from stilts_tui.sweep.expand import expand
from stilts_tui.sweep.placement import runs_for
from stilts_tui.sweep.spec import parse_spec


def sweep_spec(tiny_models, train_data, seeds=(1, 2), intermediates=("none", "hellaswag"), epochs=1) -> dict:
    return {"name": "runner-test", "model": str(tiny_models["roberta"]), "data_dir": str(train_data),
            "intermediates": list(intermediates), "targets": ["rte"],
            "grid": {"lr": [1e-3], "batch_size": [8], "seed": list(seeds)},
            "intermediate": {"lr": 1e-3, "batch_size": 2},
            "tasks": {"rte": {"epochs": epochs, "max_length": 32}, "hellaswag": {"epochs": 1, "max_length": 32}}}


def write_toml(path: Path, raw: dict) -> Path:
    import tomli_w

    path.write_bytes(tomli_w.dumps(raw).encode())
    return path


def runs_by_status(db: Path) -> dict[str, str]:
    return {r["run_id"]: r["status"] for r in Store(db).runs()}


def intervals(runs) -> list[tuple[float, float, str]]:
    out = []
    for cfg in runs:
        evs = read_events(cfg.events_path)
        start = next(e["t"] for e in evs if e["event"] == "started")
        end = next(e["t"] for e in evs if e["event"] == "finished")
        out.append((start, end, cfg.run_id))
    return out


# ------------------------------------------------------------------ slots


def test_slots_cpu_and_gpu_planning():
    cpu = plan_slots(gpus=[], cpu_slots=2, threads=1)
    assert [s.id for s in cpu] == ["cpu0", "cpu1"] and all(s.env()["OMP_NUM_THREADS"] == "1" for s in cpu)
    assert all(s.env()["CUDA_VISIBLE_DEVICES"] == "" for s in cpu)
    large = {"hidden": 1024, "layers": 24, "heads": 16, "params": 355_000_000}
    h100 = [Gpu(0, "H100", 81559, 80000), Gpu(1, "H100", 81559, 80000)]
    assert runs_per_gpu(80000, large, batch=16, seq=128) >= 8  # RoBERTa-large: 8+ trials on an 80 GB GPU
    slots = plan_slots(gpus=h100, shape=large, batch=16, seq=128)
    per_gpu = {g.index: [s for s in slots if s.gpu == g.index] for g in h100}
    assert len(per_gpu[0]) == len(per_gpu[1]) >= 8
    assert {s.env()["CUDA_VISIBLE_DEVICES"] for s in per_gpu[1]} == {"1"}
    assert len({s.id for s in slots}) == len(slots)
    assert len(plan_slots(gpus=h100, gpu_ids=[1], per_gpu=3)) == 3
    with pytest.raises(StiltsError, match="GPU 7 is not visible"):
        plan_slots(gpus=h100, gpu_ids=[7])
    small = runs_per_gpu(24000, large, batch=32, seq=128)
    assert 1 <= small < runs_per_gpu(80000, large, batch=32, seq=128)


def test_model_shape_from_config(tiny_models):
    shape = model_shape(str(tiny_models["roberta"]))
    cfg = json.loads((Path(tiny_models["roberta"]) / "config.json").read_text())
    assert shape["hidden"] == cfg["hidden_size"] and shape["layers"] == cfg["num_hidden_layers"]


# ------------------------------------------------------------------ scheduling


def test_two_slots_run_two_workers_at_once_on_distinct_slots(tiny_models, train_data, tmp_path, monkeypatch):
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2, 3, 4), intermediates=("none",), epochs=3)
    runs = expand(parse_spec(raw), tmp_path)
    db = tmp_path / "results.json"
    # Every run waits at step 2 until two runs have trained a step: the overlap is observed, not raced
    # (a tiny run can end before the other slot's worker has started).
    gate = tmp_path / "gate"
    monkeypatch.setenv("STILTS_FAULT_GATE", str(gate))

    def open_gate() -> None:
        wait_for(lambda: sum(any(e["event"] == "step" for e in read_events(r.events_path)) for r in runs) >= 2,
                 timeout=300, what="two runs training")
        gate.touch()

    opener = threading.Thread(target=open_gate, daemon=True)
    opener.start()
    counts = run_runs(runs, db, slots=2, fault="gate:2")
    opener.join()
    assert counts["finished"] == 4
    spans = intervals(runs)
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, f"no two runs trained at the same time: {spans}"
    records = {r["run_id"]: r for r in Store(db).runs()}
    assert all(records[a[2]]["slot"] != records[b[2]]["slot"] for a, b in overlapping)
    assert {r["slot"] for r in records.values()} == {"cpu0", "cpu1"}
    # Warm workers: the second run on a slot starts with no import cost.
    warm = [r["overhead_s"] for r in records.values() if r["warm_start"]]
    assert warm and max(warm) < 2.0

    # plan: the same spec is done; two more seeds are estimated from the measured throughput.
    plan = json.loads(stilts("plan", str(write_toml(tmp_path / "s.toml", raw)), "--db", str(db), "--json").stdout)
    assert (plan["runs"], plan["done"], plan["to_run"]) == (4, 4, 0)
    raw["grid"]["seed"] = [1, 2, 3, 4, 5, 6]
    plan = json.loads(stilts("plan", str(write_toml(tmp_path / "s6.toml", raw)), "--db", str(db), "--json").stdout)
    assert (plan["runs"], plan["done"], plan["to_run"]) == (6, 4, 2)
    assert plan["estimate_basis_runs"] == 4 and 0 < plan["estimate_device_hours"] * 3600 < 600
    assert plan["estimate_runs"] == 2 and plan["estimate_device"] == "cpu" and plan["slots_assumed"] >= 1
    assert plan["estimate_wall_hours"] == pytest.approx(plan["estimate_device_hours"] / plan["slots_assumed"])
    text = stilts("plan", str(tmp_path / "s6.toml"), "--db", str(db)).stdout
    assert f"on {plan['slots_assumed']} slot(s) at once" in text and "same model, task and device: cpu" in text


def test_plan_of_the_paper_spec_without_results(tmp_path):
    out = json.loads(stilts("plan", "experiments/figure2.toml", "--db", str(tmp_path / "r.json"), "--json").stdout)
    assert out["runs"] == 1155 and out["by_kind"] == {"intermediate": 3, "target": 1152}
    assert out["done"] == 0 and out["estimate_device_hours"] is None
    text = stilts("plan", "experiments/figure2.toml", "--db", str(tmp_path / "r.json")).stdout
    assert "estimate: none yet: no finished run of the same model and task on" in text
    assert "roberta-large / hellaswag" in text
    usage = stilts("plan", "--help").stdout  # every option says what it does
    assert "the experiment spec (TOML)" in usage and "release files" in usage and "the results file" in usage


def test_estimates_use_only_runs_of_the_same_model_task_and_device():
    from dataclasses import asdict

    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.estimate import estimate_seconds

    def rec(task: str, device: str, name: str | None, wall: float) -> dict:
        cfg = RunConfig(run_id=f"{task}-{device}", kind="target", model="m", task=task, epochs=1, max_length=64)
        return {"status": "finished", "wall_s": wall, "config": asdict(cfg), "device": device, "device_name": name}

    records = [rec("rte", "cpu", "cpu", 100.0), rec("rte", "cuda:0", "NVIDIA H100 80GB HBM3", 5.0)]
    todo = [RunConfig(run_id="a", kind="target", model="m", task="rte", epochs=1, max_length=64),
            RunConfig(run_id="b", kind="target", model="m", task="wic", epochs=1, max_length=64)]
    cpu = estimate_seconds(todo, records, device="cpu", slots=2)
    gpu = estimate_seconds(todo, records, device="NVIDIA H100 80GB HBM3")
    assert cpu.seconds == pytest.approx(100.0) and gpu.seconds == pytest.approx(5.0)  # each from its own device
    assert (cpu.measured, cpu.total, cpu.basis, cpu.missing) == (1, 2, 1, ["m / wic"])  # no rte rate for wic
    assert "≈ 50 s wall on 2 slot(s)" in cpu.describe() and "1 run(s) not estimated" in cpu.describe()
    assert estimate_seconds(todo, records, device="NVIDIA A100").measured == 0  # another GPU: no guess
    # a task whose size is not known here (a user task): a run like the measured ones takes as long
    user = [rec("my_task", "cpu", "cpu", 12.0) for _ in range(3)]
    same = RunConfig(run_id="c", kind="target", model="m", task="my_task", epochs=1, max_length=64)
    assert estimate_seconds([same], user, device="cpu").seconds == pytest.approx(12.0)
    old = [{**records[1], "device_name": None}]  # an older record names no GPU: any GPU matches
    assert estimate_seconds(todo[:1], old, device="NVIDIA A100").seconds == pytest.approx(5.0)


def test_estimates_weigh_by_work_and_prefer_runs_with_the_same_train_settings():
    from dataclasses import asdict

    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.runner.estimate import cost, estimate_seconds

    def cfg(epochs: int, precision: str = "auto", max_device_batch: int = 32) -> RunConfig:
        return RunConfig(run_id=f"r{epochs}{precision}{max_device_batch}", kind="target", model="m", task="rte",
                         epochs=epochs, max_length=64, precision=precision, max_device_batch=max_device_batch)

    def rec(c: RunConfig, wall: float) -> dict:
        return {"status": "finished", "wall_s": wall, "config": asdict(c), "device": "cuda:0", "device_name": "H100"}

    # a 1-epoch run at 10 s and a 9-epoch run at 900 s: pooled by work, the long run dominates
    # (averaging the two runs' rates, run by run, would say about half as much)
    pooled = estimate_seconds([cfg(1)], [rec(cfg(1), 10.0), rec(cfg(9), 900.0)], device="H100")
    by_work = 910.0 / (cost(cfg(1)) + cost(cfg(9))) * cost(cfg(1))
    by_runs = (10.0 / cost(cfg(1)) + 900.0 / cost(cfg(9))) / 2 * cost(cfg(1))
    assert pooled.seconds == pytest.approx(by_work) and pooled.basis == 2 and by_work > 1.5 * by_runs
    # fp32 and bf16 runs of the same task: a bf16 plan is estimated from the bf16 runs only
    mixed = [rec(cfg(1, "bf16"), 10.0), rec(cfg(1, "fp32"), 40.0)]
    bf16 = estimate_seconds([cfg(1, "bf16")], mixed, device="H100")
    assert bf16.seconds == pytest.approx(10.0) and bf16.basis == 1 and bf16.other_settings == 0
    assert "other train settings" not in bf16.describe()
    # nothing measured with a plan's settings: the other settings' runs, said so
    other = estimate_seconds([cfg(1, "auto", 8)], mixed, device="H100")
    assert other.seconds == pytest.approx(25.0) and other.other_settings == 1 and other.measured == 1
    assert "1 run(s) from runs with other train settings" in other.describe()


def test_oom_is_retried_with_the_same_effective_batch(tiny_nodrop, train_data, tmp_path):
    # Without dropout, splitting a step into micro-batches changes nothing but float rounding.
    raw = sweep_spec({"roberta": tiny_nodrop}, train_data, seeds=(1,), intermediates=("none",))
    (cfg,) = expand(parse_spec(raw), tmp_path / "a")
    run_runs([cfg], tmp_path / "a.json")
    (again,) = expand(parse_spec(raw), tmp_path / "b")
    counts = run_runs([again], tmp_path / "b.json", fault="oom_above:4")
    assert counts["finished"] == 1 and counts["retried"] == 1
    rec = Store(tmp_path / "b.json").get(again.run_id)
    assert rec["attempts"] == 2 and rec["failures"][0]["reason"] == "oom"
    assert rec["micro_batch"] == 4 and rec["accumulation"] == 2 and rec["config"]["batch_size"] == 8
    ref = Store(tmp_path / "a.json").get(cfg.run_id)
    assert rec["run_id"] == ref["run_id"]  # same identity: the device batch is not part of it
    assert rec["metrics"]["final_loss"] == pytest.approx(ref["metrics"]["final_loss"], rel=1e-4, abs=1e-5)


def test_a_warm_worker_gives_the_cold_result(tiny_models, train_data, tmp_path):
    runs = expand(parse_spec(sweep_spec(tiny_models, train_data, seeds=(1, 2))), tmp_path / "warm")
    run_runs(runs, tmp_path / "warm.json", slots=1)  # one worker serves all five runs
    warm = {r["run_id"]: r for r in Store(tmp_path / "warm.json").runs()}
    last_target = max((r for r in warm.values() if r["kind"] == "target"), key=lambda r: r["started_at"])
    cfg = replace(runs[[c.run_id for c in runs].index(last_target["run_id"])], threads=1,
                  output_dir=str(tmp_path / "cold"), events_path=str(tmp_path / "cold" / "events.jsonl"))
    (tmp_path / "cold").mkdir()
    (tmp_path / "cold" / "run.json").write_text(cfg.to_json())
    env = os.environ | {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-m", "stilts_tui.train", str(tmp_path / "cold" / "run.json")], check=True,
                   capture_output=True, env=env, timeout=300)
    cold = next(e for e in read_events(cfg.events_path) if e["event"] == "finished")["metrics"]
    assert cold["final_loss"] == last_target["metrics"]["final_loss"]
    assert cold["score"] == last_target["metrics"]["score"]


# ------------------------------------------------------------------ detached runner, stop, resume


def test_detached_runner_survives_its_launcher_and_listens_on_nothing(tiny_models, train_data, tmp_path):
    spec = write_toml(tmp_path / "s.toml", sweep_spec(tiny_models, train_data))
    db = tmp_path / "sweep" / "results.json"
    # The "terminal": a shell in its own session that launches the sweep, then is killed outright.
    shell = subprocess.Popen(["bash", "-c", f"{sys.executable} -m stilts_tui run {spec} --db {db} --slots 2; sleep 600"],
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = RunnerFiles(db)
    state = wait_for(lambda: (s := files.read_state()) and s.get("status") == "running" and s, what="runner start")
    os.killpg(shell.pid, signal.SIGHUP)
    os.killpg(shell.pid, signal.SIGKILL)
    shell.wait()
    assert process_alive(state["pid"], state["create_time"])
    runner = psutil.Process(state["pid"])
    procs = [runner, *runner.children(recursive=True)]
    assert not any(p.net_connections(kind="inet") for p in procs)  # nothing reachable from the network
    assert stat.S_IMODE(files.state.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.control.stat().st_mode) == 0o700
    wait_for(lambda: (files.read_state() or {}).get("status") == "finished", timeout=300, what="sweep end")
    assert set(runs_by_status(db).values()) == {"finished"}
    out = stilts("status", "--db", str(db)).stdout
    assert "runner: finished" in out and "finished 5" in out


def test_stop_all_leaves_no_process_and_resume_finishes(tiny_models, train_data, tmp_path):
    spec = write_toml(tmp_path / "s.toml", sweep_spec(tiny_models, train_data, intermediates=("none",)))
    db = tmp_path / "results.json"
    env = os.environ | {"STILTS_FAULT_INJECT": "hang:2"}  # every run hangs at its second step
    stilts("run", str(spec), "--db", str(db), "--slots", "2", env=env)
    files = RunnerFiles(db)
    wait_for(lambda: list(runs_by_status(db).values()).count("running") == 2, what="two runs in flight")
    state = files.read_state()
    root = psutil.Process(state["pid"])
    procs = [root, *root.children(recursive=True)]
    assert len(procs) >= 3  # the runner and two workers
    status = json.loads(stilts("status", "--db", str(db), "--json").stdout)
    assert status["runner"] == "running" and status["counts"]["running"] == 2
    assert {r["slot"] for r in status["running"]} == {"cpu0", "cpu1"}
    stilts("stop", "--all", "--db", str(db))
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    recs = Store(db).runs()
    assert all(r["status"] == "queued" for r in recs) and {r["reason"] for r in recs} == {"stopped"}
    stilts("resume", "--db", str(db), "--foreground")  # no fault this time
    assert set(runs_by_status(db).values()) == {"finished"}


def test_second_sweep_on_the_same_results_file_is_refused(tiny_models, train_data, tmp_path):
    spec = write_toml(tmp_path / "s.toml", sweep_spec(tiny_models, train_data, intermediates=("none",)))
    db = tmp_path / "results.json"
    env = os.environ | {"STILTS_FAULT_INJECT": "hang:2"}
    stilts("run", str(spec), "--db", str(db), env=env)
    second = stilts("run", str(spec), "--db", str(db), check=False)
    assert second.returncode == 2 and "already running" in second.stderr and "Traceback" not in second.stderr
    with pytest.raises(StiltsError, match="another stilts process is writing"):
        Store(db, writer=True)
    stilts("stop", "--all", "--db", str(db))
    json.loads(db.read_text())


def test_sigkill_of_the_runner_then_resume_gives_every_result_exactly_once(tiny_models, train_data, tmp_path):
    """Killed just after the intermediate finished, with targets training from its checkpoint (a
    'gate' fault holds one at a step until the test has killed the runner, so the sweep cannot
    end first). How a resume treats each kind of run a killed runner leaves (running with or
    without its result in its log, finished, queued) is the scheduler's: tests/test_scheduler.py."""
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2, 3), epochs=4)
    spec = write_toml(tmp_path / "s.toml", raw)
    db = tmp_path / "results.json"
    runs = runs_for(parse_spec(raw), db)
    [inter] = [r for r in runs if r.kind == "intermediate"]
    gate = tmp_path / "gate"

    def status() -> dict[str, str]:
        return runs_by_status(db) if db.exists() else {}

    phase = "just after the intermediate"
    fault = f"gate:1@init_from={inter.run_id}"

    def reached() -> bool:
        return status().get(inter.run_id) == "finished" and any(status().get(r.run_id) == "running"
                                                                for r in runs if r.init_from)

    env = os.environ | {"STILTS_FAULT_INJECT": fault, "STILTS_FAULT_GATE": str(gate)}
    stilts("run", str(spec), "--db", str(db), "--slots", "2", env=env)
    files = RunnerFiles(db)
    wait_for(reached, what=phase)
    state = files.read_state()
    root = psutil.Process(state["pid"])
    workers = root.children(recursive=True)
    before = {r["run_id"]: r for r in Store(db).runs()}
    os.kill(state["pid"], signal.SIGKILL)
    gate.touch()  # the resumed sweep is not held
    # Workers die with their runner (no orphan keeps training or holds a GPU).
    psutil.wait_procs(workers, timeout=10)
    assert not [p for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    json.loads(db.read_text())  # the store is intact
    if state.get("status") != "finished":
        assert "runner: died" in stilts("status", "--db", str(db)).stdout or files.read_state()["status"] == "finished"
    stilts("resume", "--db", str(db), "--foreground")
    after = {r["run_id"]: r for r in Store(db).runs()}
    assert len(after) == len(runs) == 7 and set(after) == {r.run_id for r in runs}
    assert {r["status"] for r in after.values()} == {"finished"}
    for run_id, old in before.items():  # nothing finished before the kill was lost or redone
        if old["status"] == "finished":
            assert after[run_id]["score"] == old["score"] and after[run_id]["finished_at"] == old["finished_at"]
    for cfg in runs:  # exactly one result per run, also in the event logs
        finished = [e for e in read_events(cfg.events_path) if e["event"] == "finished"]
        assert len(finished) == 1, (cfg.run_id, len(finished))


def test_two_results_files_in_one_folder_share_no_run_files(tiny_models, train_data, tmp_path):
    """The same spec run into r.json and r2.json: the same run ids, but each file's runs write
    their own logs (r.runs/, r2.runs/): one `started` per log, nothing mixed."""
    spec = write_toml(tmp_path / "s.toml", sweep_spec(tiny_models, train_data, seeds=(1,), intermediates=("none",)))
    paths = {}
    for name in ("r", "r2"):
        db = tmp_path / f"{name}.json"
        stilts("run", str(spec), "--db", str(db), "--foreground")
        [rec] = Store(db).runs()
        paths[name] = (rec["run_id"], Path(rec["events_path"]))
    (id1, log1), (id2, log2) = paths["r"], paths["r2"]
    assert id1 == id2 and log1 != log2
    assert log1.parent.parent == tmp_path / "r.runs" and log2.parent.parent == tmp_path / "r2.runs"
    for log in (log1, log2):
        assert [e["event"] for e in read_events(log)].count("started") == 1
        # --foreground writes as privately as a detached runner does
        assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700 and stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "r.runs").stat().st_mode) == 0o700
    assert not (tmp_path / "runs").exists()


def test_a_results_file_of_the_shared_layout_keeps_its_runs_folders(tiny_models, train_data, tmp_path):
    """A results file written before each file had its own runs folder: its recorded runs keep
    their folders, and a target starting from a recorded intermediate finds its checkpoint there."""
    from stilts_tui.runner.loop import run_record
    from stilts_tui.sweep.placement import runs_for

    spec = parse_spec(sweep_spec(tiny_models, train_data, seeds=(1, 2)))
    db = tmp_path / "results.json"
    legacy = expand(spec, tmp_path)  # every run under tmp_path/runs, as earlier versions placed them
    [inter] = [r for r in legacy if r.kind == "intermediate"]
    with Store(db, writer=True) as store:
        store.add_runs([run_record(inter) | {"status": "finished"}])
    runs = {r.run_id: r for r in runs_for(spec, db)}
    assert runs[inter.run_id].output_dir == str(tmp_path / "runs" / inter.run_id)
    assert runs[inter.run_id].events_path == inter.events_path
    children = [r for r in runs.values() if r.init_from == inter.run_id]
    assert children and all(r.init_checkpoint == str(tmp_path / "runs" / inter.run_id / "checkpoint") for r in children)
    assert all(Path(r.output_dir).parent == tmp_path / "results.runs" for r in children)  # new runs: the file's own


# ------------------------------------------------------------------ the sweep benchmark


def test_mfu_counts_real_tokens_against_the_peak_of_each_gpu():
    from stilts_tui.bench.sweep import _mfu, model_flops_per_token

    shape = {"layers": 24, "hidden": 1024}
    rec = {"device": "cuda:0", "metrics": {"train_tokens": 1_000_000, "train_sequences": 10_000, "params": 355_000_000}}
    per_token = 6 * 355_000_000 + 12 * 24 * 1024 * 100
    assert model_flops_per_token(355_000_000, shape, 100) == per_token
    assert _mfu([rec], shape, 10.0, 989.0) == pytest.approx(1_000_000 * per_token / 10.0 / 989e12)
    two = [rec, rec | {"device": "cuda:1"}]
    assert _mfu(two, shape, 10.0, 989.0) == pytest.approx(_mfu([rec], shape, 10.0, 989.0))
    assert _mfu([rec | {"device": "cpu"}], shape, 10.0, 989.0) is None


def test_the_paper_grid_for_the_sweep_benchmark():
    from stilts_tui.bench.sweep import grid, paper_grid_points

    points = paper_grid_points(36)
    assert len({tuple(p.values()) for p in points}) == 36  # lr x batch x warmup x seed, each once
    first = paper_grid_points(12)
    assert {p["batch_size"] for p in first} == {8, 16, 32} and {p["lr"] for p in first} == {5e-6, 1e-5, 2e-5}
    runs = grid("m", "rte", None, 9, None, 1, 16, 100, Path("/tmp/w"), which="paper")
    assert [(r.lr, r.batch_size, r.max_device_batch) for r in runs[:3]] == [(5e-6, 8, 8), (1e-5, 16, 16), (2e-5, 32, 32)]
    with pytest.raises(ValueError, match="36 points"):
        paper_grid_points(37)


def test_rte_shaped_data_loads_as_rte_with_its_size_and_lengths(tmp_path):
    from stilts_tui.bench.shaped import (
        HYPOTHESIS_WORDS,
        PIECES_PER_WORD,
        PREMISE_WORDS,
        write_rte_shaped,
    )
    from stilts_tui.tasks import get_task, load_examples

    write_rte_shaped(tmp_path / "rte")
    train = load_examples(get_task("rte"), "train", str(tmp_path))
    dev = load_examples(get_task("rte"), "dev", str(tmp_path))
    assert (len(train), len(dev)) == (2490, 277)
    premise = sorted(len(ex.a.split()) for ex in train)
    hypothesis = sorted(len(ex.b.split()) for ex in train)
    median = len(train) // 2
    assert abs(premise[median] - PREMISE_WORDS[10] * PIECES_PER_WORD) <= 3  # RTE's median, stretched
    assert abs(hypothesis[median] - HYPOTHESIS_WORDS[10] * PIECES_PER_WORD) <= 2
    assert premise[-1] <= PREMISE_WORDS[-1] * PIECES_PER_WORD + 1
    assert 0.4 < sum(ex.label == 0 for ex in train) / len(train) < 0.6


def test_bench_sweep_runs_both_ways_and_reports_the_ratio(tmp_path):
    out = stilts("bench", "sweep", "--runs", "2", "--train-size", "32", "--ways", "one-by-one,runner", "--json",
                 "--workdir", str(tmp_path / "bench"), env=os.environ | {"HF_HUB_OFFLINE": "1"})
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(r["ways"]) == {"one-by-one", "runner"} and r["ratios"]["one-by-one/runner"] > 0
    assert r["ways"]["one-by-one"]["max_score_diff"] <= 0.02  # same computation (thread counts aside)
    assert r["ways"]["runner"]["mfu"] is None  # CPU: no MFU


def test_retry_a_stopped_run_in_the_running_sweep_and_a_failed_one_without_a_runner(tiny_models, train_data, tmp_path):
    raw = sweep_spec(tiny_models, train_data, seeds=(1, 2), intermediates=("none",))
    db = tmp_path / "results.json"
    runs = {r.run_id: r for r in runs_for(parse_spec(raw), db)}
    spec = write_toml(tmp_path / "s.toml", raw)
    # Every run hangs and there is one slot: while one hangs, the other waits queued, so the
    # runner is still there when the stopped run is retried.
    env = os.environ | {"STILTS_FAULT_INJECT": "hang:2"}
    stilts("run", str(spec), "--db", str(db), "--slots", "1", env=env)
    running = wait_for(lambda: [k for k, v in runs_by_status(db).items() if v == "running"
                                and read_events(runs[k].events_path)], what="hang")
    hung = runs[running[0]]
    stilts("stop", hung.run_id, "--db", str(db))
    assert runs_by_status(db)[hung.run_id] == "stopped"
    out = stilts("retry", hung.run_id, "--db", str(db)).stdout
    assert "queued again in the running sweep" in out  # it hangs again (same env): stop the sweep
    wait_for(lambda: runs_by_status(db).get(hung.run_id) == "running", what="retried run")
    stilts("stop", "--all", "--db", str(db))
    assert runs_by_status(db)[hung.run_id] == "queued"
    # No runner now: retry resumes the sweep with that run queued again, without the fault this time.
    with Store(db, writer=True) as store:
        store.update(hung.run_id, status="failed", reason="error")
    out = stilts("retry", hung.run_id, "--db", str(db)).stdout
    assert "runner started" in out
    wait_for(lambda: runs_by_status(db)[hung.run_id] == "finished", timeout=120, what="retried run finished")
    again = stilts("retry", hung.run_id, "--db", str(db), check=False)
    assert again.returncode == 2 and "nothing to retry" in again.stderr and "Traceback" not in again.stderr
    bad = stilts("retry", "nope", "--db", str(db), check=False)
    assert bad.returncode == 2 and "no run nope" in bad.stderr


def test_a_request_still_being_written_is_not_taken(tmp_path):
    """The runner reads the control folder while `stilts retry` may be writing into it: a
    half-written request is neither taken (with a bogus run id) nor removed under its writer."""
    files = RunnerFiles(tmp_path / "results.json")
    files.request("retry", "abc123")
    half = files.control / ".stop-def456.x1y2.tmp"
    half.write_text("{")
    legacy = files.control / "retry-def456.q9.tmp"  # the name older versions gave temporary files
    legacy.write_text("{")
    assert files.take_requests() == Requests(retries=["abc123"])
    assert half.exists() and legacy.exists()
    assert files.take_requests() == Requests()
    written = files.request("stop", "def456")
    assert [p.name for p in files.control.iterdir() if not p.name.endswith(".tmp")] == [written.name]


def test_the_eta_credits_the_runs_in_flight_with_the_steps_they_did():
    from stilts_tui.runner.status import SweepCosts, sweep_eta

    # 100 s in, two runs of equal cost half done and two queued: a quarter of the work, 300 s left
    costs = SweepCosts(done=0.0, queued=20.0, running={"a": 10.0, "b": 10.0})
    state = {"started_at": 1000.0}
    assert sweep_eta(costs, state, 1100.0, {"a": 0.5, "b": 0.5}) == pytest.approx(300.0)
    # nothing measured yet: no ETA rather than a guess
    assert sweep_eta(costs, state, 1100.0) is None and sweep_eta(costs, state, 1100.0, {"a": 0.0}) is None
    # one run finished and one half done: 15 of 30 units in 100 s, 100 s left (not 200 s, as
    # counting the half-done run as not started would say)
    one_done = SweepCosts(done=10.0, queued=10.0, running={"b": 10.0})
    assert sweep_eta(one_done, state, 1100.0, {"b": 0.5}) == pytest.approx(100.0)
    assert sweep_eta(one_done, state, 1100.0) == pytest.approx(200.0)
    assert sweep_eta(one_done, state, 1100.0, {"b": 2.0}) == pytest.approx(100.0 * 10.0 / 20.0)  # clamped at done
