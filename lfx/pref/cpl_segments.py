"""Segment-pair preference data from an lfx offline dataset, labelled by an oracle (CPL's synthetic feedback).

Hejna et al. 2023, "Contrastive Preference Learning: Learning from Human Feedback without RL",
arXiv:2310.13639, Sec. 5.1: segments of L steps are cut from the episodes of an offline dataset and
pairs are labelled by an oracle's "dense" preference: the segment whose summed advantage
Σ_t A(s_t, a_t) is larger is preferred, A = Q - V of a trained SAC agent. In the authors' code
(github jhejna/cpl) `scripts/create_comparison_dataset.py` samples the segments (64 steps, uniform
over timesteps), `scripts/add_pref_labels.py` scores them with the SAC checkpoint (Q the critic
ensemble's mean, V(s) the mean of Q(s, a') over 64 actions a' ~ pi(.|s)) and
`research/datasets/feedback_buffer.py` turns two scores into a label (the larger is preferred).

    oracle = sac_advantages(data, restore_generation_sac(workdir, meta), key)   # [N] A(s_t, a_t)
    oracle = reward_oracle(data)                                                 # [N] r_t (the fallback)
    prefs = make_preferences(data, oracle, num_pairs=P, segment_length=L, seed=0)

`make_preferences` draws 2P segment start rows uniformly among the rows that begin L steps inside
one episode, pairs segment 2i with 2i + 1, scores each segment by the sum of the oracle's per-row
values over its L rows and stores each pair as (chosen, rejected): the higher score is chosen
(equal scores, which a continuous oracle gives with probability 0, keep the first segment as
chosen). Everything is a function of (dataset, oracle, P, L, seed).

Two per-row oracles:
  `sac_advantages`: A(s, a) = mean_j Q_j(s, a) - mean_m mean_j Q_j(s, a'_m), a'_m = tanh(u_m),
    u_m ~ pi(.|s), the SAC agent that generated the lfx Pendulum datasets (`lfx.offline.generate`;
    its last checkpoint, under `<dataset dir>/checkpoints/`, holds critics and actor). This is the
    authors' "direct" advantage (`add_pref_labels.py` `direct_adv`); their MetaWorld configs label by
    the telescoped variant `rl_sum` = Σ r + V(s_L) - V(s_1), the same quantity up to the critic's
    Bellman error.
  `reward_oracle`: r(s, a), so a segment's score is its undiscounted reward sum (a cheaper, less
    informative label: it ranks where the segment is, not how good its actions are there).

Shapes: N dataset rows, P pairs, L = segment_length, D observation size, A action dimension.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lfx.envs import wrappers
from lfx.experiment.checkpoint import Checkpoints
from lfx.offline import dataset as ds
from lfx.offline import generate
from lfx.rl import sac

ORACLES = ("sac", "reward")


@dataclasses.dataclass(frozen=True)
class PreferenceConfig:
    """How the preference pairs of a run are made (static; the experiment scripts read it).

    dataset: the offline dataset `<dir>/<env>-<level>` the segments are cut from; the SAC oracle is
      the checkpoint of the generation run in `<dir>` (`experiments/offline_datasets.py`).
    num_pairs: P labelled segment pairs (the authors' MetaWorld dense sets: 2500 segments).
    oracle: "sac" (SAC advantage, the paper's) or "reward" (segment reward sums).
    oracle_samples: actions a' ~ pi(.|s) averaged for V(s) (authors: 64).
    label_seed: seed of the segment draw and of the oracle's action samples.
    """

    dataset: str = "datasets/pendulum/pendulum-v1-medium"
    num_pairs: int = 2500
    oracle: str = "sac"
    oracle_samples: int = 64
    label_seed: int = 0

    def validate(self) -> None:
        if self.oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {ORACLES}, got {self.oracle!r}.")
        for name in ("num_pairs", "oracle_samples"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PreferenceConfig.{name} must be positive, got {getattr(self, name)}.")


@struct.dataclass
class Preferences:
    """P labelled segment pairs, the chosen (preferred) segment first. A pytree: pass it to jitted code.

    chosen_obs, rejected_obs: [P, L, D] float32. chosen_actions, rejected_actions: [P, L, A] float32
    in [-1, 1]. chosen_score, rejected_score: [P] float32, the oracle's segment sums
    (chosen_score >= rejected_score). chosen_start, rejected_start: [P] int32, the dataset row each
    segment starts at.
    """

    chosen_obs: jax.Array
    chosen_actions: jax.Array
    rejected_obs: jax.Array
    rejected_actions: jax.Array
    chosen_score: jax.Array
    rejected_score: jax.Array
    chosen_start: jax.Array
    rejected_start: jax.Array

    @property
    def num_pairs(self) -> int:
        return int(self.chosen_score.shape[-1])

    @property
    def segment_length(self) -> int:
        return int(self.chosen_obs.shape[-2])


def segment_starts(data: ds.Dataset, segment_length: int) -> np.ndarray:
    """Every row that starts `segment_length` consecutive rows of one episode, ascending.

    Raises ValueError when no episode is that long (naming the longest)."""
    if segment_length <= 0:
        raise ValueError(f"segment_length must be positive, got {segment_length}.")
    ends = np.flatnonzero(ds.episode_ends(data))
    if ends.size == 0 or ends[-1] != data.size - 1:  # rows after the last end form an open episode
        ends = np.append(ends, data.size - 1)
    firsts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - firsts + 1
    if lengths.max() < segment_length:
        raise ValueError(f"segment_length={segment_length} is longer than every episode of the dataset "
                         f"(the longest has {int(lengths.max())} steps); choose at most that.")
    return np.concatenate([np.arange(f, e - segment_length + 2) for f, e in zip(firsts, ends)
                           if e - f + 1 >= segment_length])


def segment_sums(values: np.ndarray, starts: np.ndarray, segment_length: int) -> np.ndarray:
    """Σ_{t<L} values[start + t] for each start: [N], [K] -> [K] (float64)."""
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(values, np.float64))])
    return csum[starts + segment_length] - csum[starts]


def make_preferences(data: ds.Dataset, oracle: np.ndarray | jax.Array, *, num_pairs: int, segment_length: int,
                     seed: int) -> Preferences:
    """`num_pairs` segment pairs of `data` labelled by the per-row `oracle` [N] (module docstring)."""
    if num_pairs <= 0:
        raise ValueError(f"num_pairs must be positive, got {num_pairs}.")
    oracle = np.asarray(oracle, np.float64)
    if oracle.shape != (data.size,):
        raise ValueError(f"oracle must hold one value per dataset row [{data.size}], got shape {oracle.shape}.")
    valid = segment_starts(data, segment_length)
    starts = np.random.default_rng(seed).choice(valid, size=(num_pairs, 2), replace=True)
    scores = segment_sums(oracle, starts.reshape(-1), segment_length).reshape(num_pairs, 2)
    first_chosen = scores[:, 0] >= scores[:, 1]
    chosen = np.where(first_chosen, starts[:, 0], starts[:, 1])
    rejected = np.where(first_chosen, starts[:, 1], starts[:, 0])
    rows = lambda s: s[:, None] + np.arange(segment_length)  # noqa: E731  [P, L] row indices
    obs, actions = np.asarray(data.observations, np.float32), np.asarray(data.actions, np.float32)
    return Preferences(
        chosen_obs=jnp.asarray(obs[rows(chosen)]), chosen_actions=jnp.asarray(actions[rows(chosen)]),
        rejected_obs=jnp.asarray(obs[rows(rejected)]), rejected_actions=jnp.asarray(actions[rows(rejected)]),
        chosen_score=jnp.asarray(np.maximum(scores[:, 0], scores[:, 1]), jnp.float32),
        rejected_score=jnp.asarray(np.minimum(scores[:, 0], scores[:, 1]), jnp.float32),
        chosen_start=jnp.asarray(chosen, jnp.int32), rejected_start=jnp.asarray(rejected, jnp.int32))


def reward_oracle(data: ds.Dataset) -> np.ndarray:
    """[N] the rewards: segments ranked by their undiscounted reward sums."""
    return np.asarray(data.rewards, np.float64)


def restore_generation_sac(dataset_path: str) -> tuple[sac.TrainState, sac.Networks, bool]:
    """The final SAC state of the run that generated `dataset_path` (`lfx.offline.generate`), its
    networks, and whether they see normalised observations.

    Reads the generation workdir beside the dataset (`run.json`, `checkpoints/`); raises
    FileNotFoundError naming the command that writes them."""
    folder = os.path.dirname(os.path.abspath(ds.paths(dataset_path)[0]))
    _, meta = ds.load(dataset_path)
    hint = f"python experiments/offline_datasets.py --workdir={folder}"
    run_json = os.path.join(folder, "run.json")
    if not os.path.exists(run_json) or not os.path.isdir(os.path.join(folder, "checkpoints")):
        raise FileNotFoundError(f"No dataset-generation run (run.json, checkpoints/) in {folder}: the SAC "
                                f"oracle is its last checkpoint. Generate it with: {hint}")
    with open(run_json) as f:
        snapshot_every = int(json.load(f)["generate"]["snapshot_every"])
    sac_fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["sac_config"].items()}
    sac_fields["env_kwargs"] = tuple(sorted(dict(sac_fields["env_kwargs"]).items()))
    gen = generate.make_generator(generate.GenerateConfig(
        sac_config=sac.SACConfig(**sac_fields), sac_hparams=sac.HParams(**meta["sac_hparams"]),
        snapshot_every=snapshot_every, size=meta["size"], num_envs=1))
    like = jax.eval_shape(lambda: gen.init(generate.train_key(meta["seed"])))
    restored = Checkpoints(os.path.join(folder, "checkpoints")).restore_latest(like)
    if restored is None or restored[0] != gen.num_updates:
        raise FileNotFoundError(f"{folder}/checkpoints holds no finished SAC run ({gen.num_updates} updates); "
                                f"regenerate it with: {hint}")
    return restored[1].sac, gen.recipe.networks, gen.config.sac_config.normalize_obs


def sac_advantages(data: ds.Dataset, state: sac.TrainState, networks: sac.Networks, normalize: bool,
                   key: jax.Array, *, num_samples: int = 64, chunk: int = 2048) -> np.ndarray:
    """[N] A(s_t, a_t) = Q(s_t, a_t) - V(s_t) of a SAC agent (module docstring), in chunks of rows."""
    obs = jnp.asarray(data.observations, jnp.float32)
    if normalize:
        obs = wrappers.normalize(state.obs_stats, obs)
    actions = jnp.asarray(data.actions, jnp.float32)

    def advantage(args: tuple[Any, ...]) -> jax.Array:
        o, a, k = args  # [C, D], [C, A], key
        q = jnp.mean(networks.critic.apply(state.critic_params, o, a), axis=0)  # [C]
        o_m = jnp.broadcast_to(o, (num_samples,) + o.shape)  # [M, C, D]
        u = networks.actor.apply(state.actor_params, o_m).sample(k)  # [M, C, A]
        v = jnp.mean(networks.critic.apply(state.critic_params, o_m, jnp.tanh(u)), axis=(0, 1))  # [C]
        return q - v

    n = obs.shape[0]
    pad = (-n) % chunk
    split = lambda x: jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, chunk, x.shape[-1])  # noqa: E731
    keys = jax.random.split(key, (n + pad) // chunk)
    adv = jax.jit(lambda o, a, k: jax.lax.map(advantage, (o, a, k)))(split(obs), split(actions), keys)
    return np.asarray(adv, np.float64).reshape(-1)[:n]
