"""The settings of where a sweep's runs execute, as a spec declares them: `local` (slots on this
machine's GPUs or cores) or `slurm` (one Slurm job per run, or several runs per job, submitted
through submitit; the behaviour is in runner/slurm/). The spec says which, with a `[slurm]`
table for the cluster's resources:

    executor = "slurm"
    [slurm]
    partition = "gpu"
    gpus_per_run = 1
    cpus_per_run = 8
    mem_gb = 64
    time_min = 240
    account = "nlp"
    qos = "normal"
    runs_per_job = 1            # >1 packs that many runs into one job, run one after another
    max_jobs = 64               # jobs in the queue at once (an array's parallelism included)
    checkpoint_every_min = 10   # resumable state saved this often; preempted runs continue from it
    setup = ["module load cuda/12.4"]
    [slurm.sbatch]              # any other sbatch option, passed as --key=value
    constraint = "a100"
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from stilts_tui.errors import SpecError
from stilts_tui.settings import check_table, ranged

EXECUTORS = ("local", "slurm")

@dataclass(frozen=True)
class SlurmSettings:
    """The [slurm] table; types and ranges are checked from these fields (settings.py)."""

    partition: str | None = None       # None: the cluster's default partition
    gpus_per_run: int = ranged(1, ge=0)           # 0 runs on CPUs only
    cpus_per_run: int = ranged(4, ge=1)
    mem_gb: float | None = ranged(None, gt=0)     # None: the partition's default
    time_min: int = ranged(240, ge=1)
    account: str | None = None
    qos: str | None = None
    sbatch: dict[str, str | int | float | bool] = field(default_factory=dict)
    runs_per_job: int = ranged(1, ge=1)
    max_jobs: int = ranged(64, ge=1)
    checkpoint_every_min: float = ranged(10.0, ge=0)   # 0 turns it off
    setup: list[str] = field(default_factory=list)
    poll_s: float = ranged(5.0, gt=0)             # how often job states are read (sacct)
    max_timeouts: int = ranged(3, ge=0)           # requeues after hitting the time limit before giving up
    use_srun: bool = True
    python: str | None = None          # the job's interpreter (default: the runner's own)

    @classmethod
    def from_dict(cls, raw: dict, where: str = "[slurm]") -> SlurmSettings:
        check_table(cls, raw, where)
        _check_one_line(raw, where)
        return cls(**raw)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        parts = [f"partition {self.partition or '(default)'}", f"{self.gpus_per_run} GPU", f"{self.cpus_per_run} CPU"]
        if self.mem_gb:
            parts.append(f"{self.mem_gb:g} GB")
        parts.append(f"{self.time_min} min")
        if self.runs_per_job > 1:
            parts.append(f"{self.runs_per_job} runs per job")
        return ", ".join(parts)


SBATCH_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _check_one_line(raw: dict, where: str) -> None:
    """Each value becomes one `#SBATCH --key=value` line (or one line of the job script): a line
    break or another control character in it would start a line of its own in the script."""
    values = [(k, v) for k, v in raw.items() if k not in ("sbatch", "setup")]
    values += [(f"sbatch.{k}", v) for k, v in (raw.get("sbatch") or {}).items()]
    values += [(f"setup[{i}]", v) for i, v in enumerate(raw.get("setup") or [])]
    for key, value in values:
        if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise SpecError(f"{where} {key} = {value!r} holds a line break or another control character",
                            "write the value on one line; several setup commands go in several setup entries")
    for key in raw.get("sbatch") or {}:
        if not SBATCH_KEY.fullmatch(key):
            raise SpecError(f"{where} sbatch option {key!r} is not an sbatch option name",
                            "use sbatch's long option names, e.g. constraint = \"a100\"")


def executor_options(executor: str | None, slurm: SlurmSettings | dict | None) -> dict:
    """The sweep options that choose the executor, checked (a parsed spec's [slurm] is already)."""
    executor = executor or "local"
    if executor not in EXECUTORS:
        raise SpecError(f"executor = {executor!r} is not known", f"use one of: {', '.join(EXECUTORS)}")
    if executor == "slurm":
        settings = slurm if isinstance(slurm, SlurmSettings) else SlurmSettings.from_dict(slurm or {})
        return {"executor": "slurm", "slurm": settings.to_dict()}
    return {"executor": "local"}
