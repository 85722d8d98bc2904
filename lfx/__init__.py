"""lfx: learning algorithms that are themselves learned or evolved, in JAX.

Several processes (multi-host): set `LFX_DISTRIBUTED=1` in every process's environment. `import lfx`
then calls `lfx.parallel.initialize_distributed()` before anything else of lfx can create a jax
array (importing gymnax does); docs/SCALING.md has the launch lines. Unset, importing lfx does
nothing but define `__version__`.
"""

import os as _os

__version__ = "0.1.0"

_flag = _os.environ.get("LFX_DISTRIBUTED", "").strip().lower()
if _flag in ("1", "true", "yes"):
    from lfx import parallel as _parallel

    _parallel.initialize_distributed()
elif _flag not in ("", "0", "false", "no"):
    raise ValueError(f"LFX_DISTRIBUTED={_flag!r}: use 1 (several processes) or 0 / unset.")
