"""Where a sweep's runs execute: `local` (slots on this machine's GPUs or cores) or `slurm`
(one Slurm job per run, or several runs per job, submitted through submitit). The spec says
which, with a `[slurm]` table for the cluster's resources:

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

from dataclasses import asdict, dataclass, field

from stilts_tui.errors import SpecError

EXECUTORS = ("local", "slurm")

_TYPES: dict[str, type | tuple] = {
    "partition": str, "gpus_per_run": int, "cpus_per_run": int, "mem_gb": (int, float), "time_min": int,
    "account": str, "qos": str, "sbatch": dict, "runs_per_job": int, "max_jobs": int,
    "checkpoint_every_min": (int, float), "setup": list, "poll_s": (int, float), "max_timeouts": int,
    "use_srun": bool, "python": str,
}


@dataclass(frozen=True)
class SlurmSettings:
    partition: str | None = None       # None: the cluster's default partition
    gpus_per_run: int = 1
    cpus_per_run: int = 4
    mem_gb: float | None = None        # None: the partition's default
    time_min: int = 240
    account: str | None = None
    qos: str | None = None
    sbatch: dict = field(default_factory=dict)
    runs_per_job: int = 1
    max_jobs: int = 64
    checkpoint_every_min: float = 10.0
    setup: list = field(default_factory=list)
    poll_s: float = 5.0                # how often job states are read (sacct)
    max_timeouts: int = 3              # requeues after hitting the time limit before giving up
    use_srun: bool = True
    python: str | None = None          # the job's interpreter (default: the runner's own)

    @classmethod
    def from_dict(cls, raw: dict, where: str = "[slurm]") -> SlurmSettings:
        if not isinstance(raw, dict):
            raise SpecError(f"{where} must be a table", "e.g. [slurm] then partition = \"gpu\"")
        unknown = set(raw) - set(_TYPES)
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", f"keys: {', '.join(_TYPES)}")
        for key, value in raw.items():
            kinds = _TYPES[key] if isinstance(_TYPES[key], tuple) else (_TYPES[key],)
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                names = " or ".join(k.__name__ for k in kinds)
                raise SpecError(f"{where}: {key} = {value!r} is not {names}", f"give {key} as {names}")
        for key in ("gpus_per_run",):
            if key in raw and raw[key] < 0:
                raise SpecError(f"{where}: {key} must be 0 or more (got {raw[key]})", "0 runs on CPUs only")
        for key in ("cpus_per_run", "time_min", "runs_per_job", "max_jobs", "mem_gb", "poll_s"):
            if key in raw and raw[key] <= 0:
                raise SpecError(f"{where}: {key} must be positive (got {raw[key]})", f"give a positive {key}")
        if raw.get("checkpoint_every_min", 0) < 0 or raw.get("max_timeouts", 0) < 0:
            raise SpecError(f"{where}: checkpoint_every_min and max_timeouts must be 0 or more", "0 turns them off")
        if any(not isinstance(line, str) for line in raw.get("setup", [])):
            raise SpecError(f"{where}: setup must be a list of shell lines", 'e.g. setup = ["module load cuda"]')
        if any(isinstance(v, (dict, list)) for v in raw.get("sbatch", {}).values()):
            raise SpecError(f"{where}.sbatch: values must be strings, numbers or true", 'e.g. constraint = "a100"')
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


def executor_options(executor: str | None, slurm: dict | None) -> dict:
    """The sweep options that choose the executor, checked."""
    executor = executor or "local"
    if executor not in EXECUTORS:
        raise SpecError(f"executor = {executor!r} is not known", f"use one of: {', '.join(EXECUTORS)}")
    if executor == "slurm":
        return {"executor": "slurm", "slurm": SlurmSettings.from_dict(slurm or {}).to_dict()}
    return {"executor": "local"}
