"""How long runs take: the relative cost that orders the queue (longest first), and GPU-hours
from the throughput measured on runs already finished."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.tasks import get_task

UNKNOWN_ROWS = 2000


def train_rows(cfg: RunConfig) -> int:
    try:
        task = get_task(cfg.task)
    except Exception:  # noqa: BLE001 - a user task not registered in this process
        return cfg.train_size or UNKNOWN_ROWS
    rows = task.train_rows or UNKNOWN_ROWS
    return min(rows, cfg.train_size) if cfg.train_size else rows


def work_units(cfg: RunConfig) -> float:
    """Sequences processed: epochs × train rows × choices (dev evaluation counted as one pass).
    A run that validates every ``val_interval`` steps and stops after ``max_vals`` validations
    trains at most that many steps (early stopping can end it sooner: this is the most it can
    take)."""
    k = _choices(cfg)
    epochs = 0 if cfg.kind == "zero_shot" else cfg.epochs
    trained = epochs * train_rows(cfg)
    if cfg.val_interval and cfg.max_vals:
        trained = min(trained, cfg.val_interval * cfg.max_vals * cfg.batch_size)
    return float(k * (trained + max(1, train_rows(cfg) // 10)))


def _choices(cfg: RunConfig) -> int:
    try:
        return get_task(cfg.task).num_choices or 1
    except Exception:  # noqa: BLE001 - a user task not registered in this process
        return 1


def cost(cfg: RunConfig) -> float:
    """Relative expected duration: sequences × tokens per sequence."""
    return work_units(cfg) * cfg.max_length


Key = tuple[str, str, str]  # (model, task, device)
# The train settings that change throughput without changing the work planned: precision, the
# micro-batch cap, attention kernel, fused optimizer, length grouping.
Settings = tuple[str, int, bool, bool, bool]


def throughput_settings(cfg: RunConfig) -> Settings:
    return (cfg.precision, cfg.max_device_batch, cfg.sdpa, cfg.fused_adamw, cfg.group_by_length)


def record_device(rec: dict) -> str:
    """What a run ran on, as estimates match it: the GPU's name where the runner recorded it,
    else "gpu" (an older record), else "cpu"."""
    if rec.get("device_name"):
        return str(rec["device_name"])
    return "gpu" if str(rec.get("device") or "").startswith("cuda") else "cpu"


def this_device() -> str:
    """What runs started here would run on: the first visible GPU's name, or "cpu"."""
    from stilts_tui.runner.slots import visible_gpus

    gpus = visible_gpus()
    return gpus[0].name if gpus else "cpu"


@dataclass
class Measured:
    """Finished runs of one model, task, device and set of train settings: their wall seconds and
    planned work summed, so a rate pooled over several is weighted by work, not by run count."""

    seconds: float = 0.0
    units: float = 0.0
    runs: int = 0


def measured_rates(records: list[dict]) -> dict[tuple[Key, Settings], Measured]:
    """What finished runs measured, for each model, task, device and train settings (a rate measured
    on one task or device says little about another, and fp32 on a GPU is several times bf16)."""
    out: dict[tuple[Key, Settings], Measured] = defaultdict(Measured)
    for r in records:
        if r.get("status") != "finished" or not r.get("wall_s") or not r.get("config"):
            continue
        try:
            cfg = RunConfig.from_dict(r["config"])
        except (TypeError, ValueError):
            continue
        m = out[((cfg.model, cfg.task, record_device(r)), throughput_settings(cfg))]
        # Planned cost on both sides: a task whose size is not known here (a user task: UNKNOWN_ROWS)
        # or whose runs stop early is measured in the same units it is planned in, so that cancels.
        m.units += cost(cfg)
        m.seconds += float(r["wall_s"])
        m.runs += 1
    return {k: m for k, m in out.items() if m.units > 0}


@dataclass
class Estimate:
    """Device-seconds of the runs with a measurement of the same model, task and device; the runs
    without one are counted and named, never guessed."""

    seconds: float
    measured: int                # runs estimated
    total: int                   # runs asked about
    basis: int                   # finished runs the rates come from
    device: str                  # "any" when the device is not known here (Slurm)
    missing: list[str] = field(default_factory=list)   # "model / task" with no measurement
    slots: int | None = None     # runs at once assumed for the wall time; None: not known (Slurm)
    other_settings: int = 0      # runs estimated from runs with other train settings (none had theirs)

    def describe(self) -> str:
        if not self.total:
            return "nothing to run"
        on = "any device" if self.device == "any" else self.device
        if not self.measured:
            return (f"none yet: no finished run of the same model and task on {on} "
                    f"({', '.join(self.missing[:3])}{', …' if len(self.missing) > 3 else ''}); run a few, then plan again")
        text = f"≈ {self.seconds / 3600:.2f} device-hours"
        if self.slots:
            text += f", ≈ {_duration(self.seconds / self.slots)} wall on {self.slots} slot(s) at once"
        text += f" (from {self.basis} finished run(s) of the same model, task and device: {on})"
        if self.other_settings:
            text += (f"; {self.other_settings} run(s) from runs with other train settings (precision, "
                     "max_device_batch, sdpa, fused_adamw, group_by_length), none measured with theirs")
        if self.measured < self.total:
            text += (f"; {self.total - self.measured} run(s) not estimated, nothing measured for "
                     f"{', '.join(self.missing[:3])}{', …' if len(self.missing) > 3 else ''}")
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def estimate_seconds(runs: list[RunConfig], records: list[dict], device: str | None = None,
                     slots: int | None = None) -> Estimate:
    """The runs' device time from the throughput of finished runs of the same model, task and
    ``device`` (default: this machine's; "any": every device, for a cluster not known here), with
    the same train settings where any was measured with them."""
    device = device or this_device()
    rates = measured_rates(records)
    total, measured, other = 0.0, 0, 0
    used: set[tuple[Key, Settings]] = set()
    missing: list[str] = []
    for cfg in runs:
        same = [k for k in rates if k[0][:2] == (cfg.model, cfg.task) and _same_device(k[0][2], device)]
        settings = throughput_settings(cfg)
        exact = [k for k in same if k[1] == settings]
        if not same:
            label = f"{cfg.model} / {cfg.task}"
            if label not in missing:
                missing.append(label)
            continue
        keys = exact or same
        other += not exact
        total += sum(rates[k].seconds for k in keys) / sum(rates[k].units for k in keys) * cost(cfg)
        measured += 1
        used.update(keys)
    basis = sum(rates[k].runs for k in used)
    return Estimate(total, measured, len(runs), basis, device, missing, slots, other)


def _same_device(recorded: str, wanted: str) -> bool:
    # An older record says only "gpu": it matches any GPU, never the CPU.
    return wanted == "any" or recorded == wanted or (recorded == "gpu" and wanted != "cpu")


def plan_estimate(todo: list[RunConfig], records: list[dict], options) -> Estimate:
    """What `stilts plan` and the Plan screen say: measured throughput of the same model, task and
    device, and the slots this machine would run at once (a cluster's are not known here)."""
    from stilts_tui.errors import StiltsError
    from stilts_tui.runner.options import slots_from_options

    if options.executor == "slurm":
        return estimate_seconds(todo, records, device="any")
    try:
        slots: int | None = len(slots_from_options(options, todo))
    except StiltsError:
        slots = None
    return estimate_seconds(todo, records, slots=slots)
