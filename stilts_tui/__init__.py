"""stilts-tui: plan, run, watch and analyse intermediate-task fine-tuning (STILTs) sweeps."""

__version__ = "0.1.0"
