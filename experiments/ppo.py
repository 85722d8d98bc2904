"""Train PPO over several seeds (and optionally a hyperparameter grid) in one vmapped call.

    python experiments/ppo.py                                   # CartPole-v1, 8 seeds
    python experiments/ppo.py --config=experiments/configs/ppo.py:breakout
    python experiments/ppo.py --config.total_timesteps=100000 --num_seeds=4
    python experiments/ppo.py --sweep="lr=1e-4,2.5e-4,1e-3;ent_coef=0.0,0.01"
    python experiments/ppo.py --workdir=runs/ppo_cartpole --resume   # continue a killed run

Writes `<workdir>/metrics.jsonl|csv` (mean/std over runs per update), `summary.json`,
`learning_curve.png`, and orbax checkpoints every `config.checkpoint_every` updates.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lfx import parallel  # noqa: E402
from lfx.rl import ppo  # noqa: E402
from lfx.utils.checkpoint import Checkpointer  # noqa: E402
from lfx.utils.loop import run_chunked  # noqa: E402
from lfx.utils.metrics import MetricWriter  # noqa: E402
from lfx.utils.plotting import plot_learning_curves  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "ppo.py:cartpole")
)
_NUM_SEEDS = flags.DEFINE_integer("num_seeds", None, "Seeds trained together (overrides config).")
_SWEEP = flags.DEFINE_string(
    "sweep", "", 'Grid over HParams, e.g. "lr=1e-4,2.5e-4;ent_coef=0.0,0.01" (one vmapped call).'
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "", "Where metrics, plots, checkpoints go (default: a new runs/ppo_<env>_<time>)."
)
_RESUME = flags.DEFINE_bool("resume", False, "Continue from the newest checkpoint in --workdir.")
_NAN_CHECK = flags.DEFINE_bool("nan_check", True, "Stop when a metric becomes non-finite.")
_TENSORBOARD = flags.DEFINE_bool("tensorboard", False, "Also write TensorBoard summaries.")
_SHARD = flags.DEFINE_bool("shard", False, "Shard the seed axis over all devices.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host)."
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")


def parse_sweep(spec: str) -> dict[str, list[float]]:
    """'lr=1e-4,2e-4;ent_coef=0,0.01' -> {'lr': [1e-4, 2e-4], 'ent_coef': [0.0, 0.01]}."""
    grid: dict[str, list[float]] = {}
    fields = set(ppo.HParams.__dataclass_fields__)
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        if "=" not in part:
            raise ValueError(f"--sweep entry {part!r} must look like name=v1,v2.")
        name, values = part.split("=", 1)
        name = name.strip()
        if name not in fields:
            raise ValueError(f"--sweep: {name!r} is not a traced HParams field; use one of {sorted(fields)}.")
        try:
            grid[name] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError as err:
            raise ValueError(f"--sweep: values of {name!r} must be numbers, got {values!r}.") from err
    return grid


def build(config, sweep: str):
    """Config -> (PPOConfig, HParams batch [H], list of H setting dicts); validates everything."""
    static = ppo.PPOConfig(
        env_name=config.env_name,
        env_kwargs=tuple(sorted(config.env_kwargs.to_dict().items())),
        num_envs=config.num_envs,
        num_steps=config.num_steps,
        total_timesteps=int(config.total_timesteps),
        update_epochs=config.update_epochs,
        num_minibatches=config.num_minibatches,
        network=config.network,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        anneal_lr=config.anneal_lr,
        normalize_obs=config.normalize_obs,
        normalize_reward=config.normalize_reward,
    )
    static.validate()
    base = config.hparams.to_dict()
    grid = parse_sweep(sweep)
    settings = [
        {**base, **dict(zip(grid, combo))} for combo in itertools.product(*grid.values())
    ] or [base]
    hparams = jax.tree.map(
        lambda *xs: jnp.asarray(xs, jnp.float32), *[ppo.HParams(**s) for s in settings]
    )
    hparams.validate()
    return static, hparams, settings


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if _DISTRIBUTED.value:
        parallel.initialize_distributed()
    config = _CONFIG.value
    num_seeds = _NUM_SEEDS.value or config.num_seeds
    if num_seeds <= 0:
        raise ValueError("--num_seeds must be positive.")
    static, hparams, settings = build(config, _SWEEP.value)
    recipe = ppo.make_ppo(static)
    num_updates = static.num_updates

    keys = jax.random.split(jax.random.key(config.seed), num_seeds)
    run_config = {
        "ppo": {k: getattr(static, k) for k in static.__dataclass_fields__},
        "hparams": settings,
        "num_seeds": num_seeds,
        "seed": config.seed,
        "chunk_size": config.chunk_size,
    }
    if _RESUME.value and not _WORKDIR.value:
        raise ValueError("--resume needs the --workdir of the run to continue.")
    workdir = _WORKDIR.value or os.path.join(
        "runs", f"ppo_{static.env_name.replace('/', '_')}_{time.strftime('%Y%m%d-%H%M%S')}"
    )
    ckpt = Checkpointer.open(workdir, run_config, resume=_RESUME.value)
    writer = MetricWriter(workdir, tensorboard=_TENSORBOARD.value)

    over_seeds = lambda f, *ax: jax.vmap(f, in_axes=ax)  # noqa: E731
    init = jax.jit(over_seeds(over_seeds(recipe.init, 0, None), None, 0))

    @functools.partial(jax.jit, static_argnums=1)
    def run(state, n):
        chunk = functools.partial(recipe.run, num_updates=n)
        return jax.vmap(jax.vmap(chunk, in_axes=(0, None)), in_axes=(0, 0))(state, hparams)

    def init_state():
        state = init(keys, hparams)
        if _SHARD.value:
            state = parallel.shard_population(state, parallel.make_mesh(), axis=1)
        return state

    print(
        f"PPO on {static.env_name}: {len(settings)} setting(s) x {num_seeds} seeds, "
        f"{num_updates} updates x {static.batch_size} steps = {num_updates * static.batch_size:,} "
        f"steps per run, on {jax.device_count()} {jax.devices()[0].platform} device(s)."
    )
    state, metrics = run_chunked(
        init_state,
        run,
        total_updates=num_updates,
        chunk_size=config.chunk_size,
        batch_ndim=2,
        checkpointer=ckpt,
        checkpoint_every=config.checkpoint_every,
        writer=writer,
        nan_check=_NAN_CHECK.value,
        progress=_PROGRESS.value,
        steps_per_update=static.batch_size,
    )
    returns = metrics["train/episode_return"]  # [H, S, T]
    steps = np.arange(1, num_updates + 1) * static.batch_size
    summary = []
    curves = {}
    for h, s in enumerate(settings):
        final = returns[h, :, -1]
        label = ", ".join(f"{k}={s[k]:g}" for k in parse_sweep(_SWEEP.value)) or "PPO"
        summary.append(
            {
                "setting": s,
                "final_return_mean": float(final.mean()),
                "final_return_std": float(final.std()),
                "final_return_median": float(np.median(final)),
                "final_returns": final.tolist(),
            }
        )
        curves[label] = (steps, returns[h])
        print(
            f"[{label}] final episodic return over {num_seeds} seeds: "
            f"mean {final.mean():.1f} +- {final.std():.1f}, median {np.median(final):.1f}"
        )
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump({"env": static.env_name, "env_steps": int(steps[-1]), "runs": summary}, f, indent=1)
    png = plot_learning_curves(
        curves,
        os.path.join(workdir, "learning_curve.png"),
        title=f"PPO on {static.env_name} (mean +- std over seeds)",
    )
    print(f"Wrote {png} and {writer.jsonl_path}")


if __name__ == "__main__":
    app.run(main)
