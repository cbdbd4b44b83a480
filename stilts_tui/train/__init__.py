"""The training worker, run as a subprocess (`python -m stilts_tui.train RUN.json`).

It knows nothing of the UI: it reads one run's config and writes JSON-line events."""
