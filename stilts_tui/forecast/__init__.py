"""The model side of forecasting transfer (docs/forecast.md): features of a pretrained encoder or
of an intermediate's checkpoint on a seeded sample of a task's train inputs, cached on disk.

It needs torch and transformers, so nothing above it imports it: `stilts forecast` and the app
run it as `python -m stilts_tui.forecast REQUEST.json` (ops/forecast.py) and read the JSON it
writes. What the features are turned into (TextEmb similarities, LogME, ranking scores) is plain
numpy in stilts_tui/analysis/. The request and answer records are in jobs.py, which imports
neither torch nor numpy, so every layer can read them."""
