"""Whether Slurm can take a sweep's jobs, asked before anything is launched (the app and the CLI
call this; it needs no part of the runner or the trainer)."""

from __future__ import annotations

import shutil
import subprocess

from stilts_tui.errors import StiltsError
from stilts_tui.sweep.slurm_settings import SlurmSettings

__all__ = ["check_slurm", "slurm_command"]


def slurm_command(cmd: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)



def check_slurm(settings: SlurmSettings) -> list[str]:
    """Fail with one clear message when Slurm cannot take the sweep's jobs; returns the
    cluster's partitions."""
    missing = [c for c in ("sbatch", "sinfo", "sacct", "scancel") if shutil.which(c) is None]
    if missing:
        raise StiltsError(f"Slurm is not reachable from here: {', '.join(missing)} not found on PATH",
                          'run stilts on a node of the cluster (a login node), load its Slurm module, '
                          'or set executor = "local"')
    try:
        info = slurm_command(["sinfo", "--noheader", "--format=%P"])
    except subprocess.TimeoutExpired:
        raise StiltsError("Slurm does not answer: sinfo timed out after 30 s",
                          "check that the controller is up (scontrol ping) and try again") from None
    if info.returncode != 0:
        said = (info.stderr or info.stdout).strip().splitlines()[-1:] or [f"exit code {info.returncode}"]
        raise StiltsError(f"Slurm does not answer: sinfo said: {said[0]}",
                          "check that the controller is up (scontrol ping) and that munge runs on this machine")
    partitions = [p.strip() for p in info.stdout.split() if p.strip()]
    names = [p.rstrip("*") for p in partitions]
    if settings.partition and settings.partition not in names:
        raise StiltsError(f"Slurm partition {settings.partition!r} does not exist on this cluster "
                          f"(partitions: {', '.join(partitions) or 'none'})",
                          "set partition in the spec's [slurm] table to one of them (* marks the default)")
    acct = slurm_command(["sacct", "--noheader", "--allocations", "--format=JobID", "--starttime=now"])
    if acct.returncode != 0:
        said = (acct.stderr or acct.stdout).strip().splitlines()[-1:] or [f"exit code {acct.returncode}"]
        raise StiltsError(f"Slurm accounting does not answer: sacct said: {said[0]}",
                          "stilts reads job states through sacct; ask the cluster's admins to enable accounting "
                          "(slurmdbd), or use executor = \"local\"")
    return names
