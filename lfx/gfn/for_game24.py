"""Flow of Reasoning on Game24: solvable puzzle sets and the recipe over puzzles.

`make_game24_train(config, puzzles)` is `lfx.gfn.for_train.make_train` on the Game24 environment
whose object carries the puzzle; its `evaluate` takes puzzles ([P, 4]) instead of objects.
"""

from __future__ import annotations

import numpy as np

from lfx.gfn.for_train import FoRConfig, FoRRecipe, make_train
from lfx.gfn.game24 import make_game24, puzzle_obj, solvable


def make_puzzles(seed: int, n: int, exclude=()) -> np.ndarray:
    """[n, 4] distinct solvable puzzles (numbers 1..13, sorted), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    seen = {tuple(sorted(p)) for p in exclude}
    out = []
    while len(out) < n:
        p = tuple(sorted(int(x) for x in rng.integers(1, 14, size=4)))
        if p not in seen and solvable(p):
            seen.add(p)
            out.append(p)
    return np.asarray(out, np.int32)


def puzzles_to_objs(puzzles) -> np.ndarray:
    """[P, 4] puzzles -> [P, L] Game24 start objects."""
    return np.stack([puzzle_obj(p) for p in puzzles])


def make_game24_train(config: FoRConfig, train_puzzles: np.ndarray, **rewards) -> FoRRecipe:
    """The FoR recipe over the Game24 puzzles ([P, 4]); `evaluate(key, params, puzzles, n_samples)`.
    `rewards`: `success_reward`, `failure_reward` (`lfx.gfn.game24.Game24Params`; defaults 100 and
    FoR's 0.001)."""
    config.validate()
    env, ep = make_game24(tuple(int(x) for x in train_puzzles[0]), **rewards)
    recipe = make_train(config, env, ep, puzzles_to_objs(train_puzzles))
    evaluate = recipe.evaluate

    def evaluate_puzzles(key, params, puzzles, n_samples=64):
        return evaluate(key, params, puzzles_to_objs(puzzles), n_samples)

    return recipe._replace(evaluate=evaluate_puzzles)
