"""Running a sweep's runs as Slurm jobs: the behaviour, in one place.

    lane.py       submitting packs of runs through submitit, reading job states (sacct, squeue), cancelling
    executor.py   the runner's Slurm executor: jobs followed through their event logs, reported as outcomes
    check.py      whether Slurm can take a sweep's jobs, asked before anything is launched

What a spec may say of Slurm (its [slurm] table, `SlurmSettings`) is declared with the spec, in
sweep/slurm_settings.py: the spec's parser checks it, and the sweep layer may not import the
runner. The job's own side (the training process inside a job) is train/slurm_job.py."""
