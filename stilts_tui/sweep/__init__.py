"""Experiment specs, their expansion into runs, and executing those runs."""
