"""QDax worker of scripts/bench_map_elites.py (runs in the peer venv: /opt/peers/qdax/bin/python).

    /opt/peers/qdax/bin/python scripts/peers/qdax_map_elites.py '<json config>'

QDax 0.5.0's `MAPElites` on QDax's own planar arm (`qdax.tasks.arm.arm_scoring_function`), with a
`MixingEmitter` doing iso-line variation (`isoline_variation`, variation_percentage 1.0) or Gaussian
mutation, `default_qd_metrics`, and `num_generations` generations of `MAPElites.scan_update` in one
`lax.scan` per call (vmapped over seeds for seeds > 1). The centroids come from the driver (a .npy
file), so both sides use the same repertoire. The protocol is scripts/bench_ppo.py's `serve`.
"""

from __future__ import annotations

import functools
import json
import sys

from scripts.bench_ppo import serve  # the shared worker protocol (the driver puts the repo on PYTHONPATH)


def main(cfg: dict) -> None:
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from qdax.core.emitters.mutation_operators import isoline_variation  # noqa: PLC0415
    from qdax.core.emitters.standard_emitters import MixingEmitter  # noqa: PLC0415
    from qdax.core.map_elites import MAPElites  # noqa: PLC0415
    from qdax.tasks.arm import arm_scoring_function  # noqa: PLC0415
    from qdax.utils.metrics import default_qd_metrics  # noqa: PLC0415

    centroids = jnp.asarray(np.load(cfg["centroids"]))
    n, dofs, gens = cfg["batch_size"], cfg["num_dofs"], cfg["num_generations"]
    if cfg["emitter"] == "iso_line":
        variation = functools.partial(isoline_variation, iso_sigma=cfg["sigma"], line_sigma=cfg["line_sigma"],
                                      minval=0.0, maxval=1.0)
        emitter = MixingEmitter(mutation_fn=None, variation_fn=variation, variation_percentage=1.0, batch_size=n)
    else:
        def mutate(x, key):
            return jnp.clip(x + cfg["sigma"] * jax.random.normal(key, x.shape), 0.0, 1.0)

        emitter = MixingEmitter(mutation_fn=mutate, variation_fn=None, variation_percentage=0.0, batch_size=n)
    me = MAPElites(scoring_function=arm_scoring_function, emitter=emitter,
                   metrics_function=functools.partial(default_qd_metrics, qd_offset=1.0))

    def init(key):
        k1, k2 = jax.random.split(key)
        genotypes = jax.random.uniform(k1, (n, dofs))
        repertoire, emitter_state, _ = me.init(genotypes, centroids, k2)
        return repertoire, emitter_state, key

    def run(carry):
        carry, metrics = jax.lax.scan(me.scan_update, carry, None, length=gens)
        return carry, metrics

    def train(seeds):
        keys = jax.random.split(jax.random.key(0), seeds)
        if seeds == 1:
            return run, (jax.jit(init)(keys[0]),)
        return jax.vmap(run), (jax.jit(jax.vmap(init))(keys),)

    serve("qdax", train, cfg["seed_counts"], n * gens, ("jax", "jaxlib", "qdax", "flax"))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
