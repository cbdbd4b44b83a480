"""The operations a user asks for, each written once: the CLI (`stilts plan / run / resume / stop /
retry`) and the app (Plan screen, Runs screen, palette) both call these and only add how they
show the answer. They sit above the sweep and the runner and below the CLI and the app:

    finished.py   what is finished (the one definition every count uses)
    plan.py       a spec's runs, what is left, the estimate and the disk a sweep needs
    launch.py     the checks before launch, "nothing to run", and starting a detached runner
    resume.py     the sweep `stilts resume` continues, with new runner options if asked
    control.py    stop one run or the sweep, retry a run (runner/control.py does the work)
    recover.py    a damaged results file rebuilt, into a new one, from its sweep files and run logs"""
