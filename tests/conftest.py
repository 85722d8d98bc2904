"""Shared pytest set-up: CPU only, a headless matplotlib. Tests import the installed `lfx` only."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
