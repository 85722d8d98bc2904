"""Quality-diversity for sparse rewards: archives, novelty, emitters, NS / TAXONS / SERENE / STAX.

Building blocks (jittable, fixed capacities): `archive`, `novelty`, `mutation`, `budget`, `policy`,
`evaluator`, `metrics`. Scan algorithms as recipes (`recipe`: `make_*(task, config, budget) ->
QDRecipe` with `init(key, hparams)`, `run(state, hparams, *, num_updates)`, `train`; traced
`HParams`): `ns.make_ns`, `baselines.make_map_elites`, `make_random_search`, `make_openai_es`.
Host-loop algorithms (`explore`: TAXONS / STAX's autoencoder, `serene`: emitters; compiled once by
`make_explorer` / `make_serene`). `comparison`: a comparison on one task through the harness
(experiments/qd_sparse.py); `reach`: how sparse a task is.
"""
