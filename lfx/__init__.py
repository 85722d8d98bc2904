"""lfx: learning algorithms that are themselves learned or evolved, in JAX."""

__version__ = "0.1.0"
