"""Builders of derived datasets: HellaSwag-p, Hella-sh, Synthesis_GPT2, subsamples, demo data."""
