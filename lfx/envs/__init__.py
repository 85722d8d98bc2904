"""One functional environment API (gymnax 1.0 semantics), a registry and wrappers."""

from lfx.envs import registry, wrappers
from lfx.envs.registry import make, register, registered_envs

__all__ = ["make", "register", "registered_envs", "registry", "wrappers"]
