"""Sparse-reward JAX environments for quality-diversity (Paolo et al.'s benchmark tasks).

Each environment is a gymnax 1.0 `Environment` with fixed-length episodes whose reward is paid only
at the last step inside a small reward area, and three extra methods used by lfx.qd:
`descriptor(state, params) -> [2]` (ground-truth behaviour descriptor), `reward_area(state,
params) -> int` (-1 when none) and `render(state, params, size) -> [size, size]` (TAXONS' image).

Registered: Curling-sparse, HardMaze-sparse, RedundantArm-sparse, PointMass-sparse (pure JAX) and
AntMaze-sparse (brax's ant in a walled maze; needs the brax extra).
"""
