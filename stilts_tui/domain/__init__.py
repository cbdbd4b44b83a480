"""The domain, at the bottom of every layer: what a run is (`run_config`: its settings, each
declared once in `setting.py`'s terms), the store's record of it and its statuses (`records`),
and the events its worker writes (`events`). Every layer may import it; it imports nothing of
stilts but the checker (`settings`) and the errors."""
