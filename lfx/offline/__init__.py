"""Offline RL: generated D4RL-style datasets, model-free algorithms as pure losses, one recipe."""
