"""Quality-diversity for sparse rewards: archives, novelty, emitters, NS / TAXONS / SERENE / STAX.

Building blocks (jittable, fixed capacities): `archive`, `novelty`, `mutation`, `budget`, `policy`,
`evaluator`, `metrics`. Algorithms: `ns`, `taxons`, `serene` (STAX = SERENE on TAXONS' space),
`baselines`.
"""
