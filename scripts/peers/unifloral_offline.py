"""Peer-side worker for scripts/bench_offline.py: times Unifloral's TD3+BC and IQL (run with the
Unifloral venv's python).

    /opt/peers/unifloral/bin/python scripts/peers/unifloral_offline.py '<json config>'

The peer is Unifloral's single-file algorithms (github.com/EmptyJackson/unifloral, commit f2dc127,
`algorithms/td3_bc.py` and `algorithms/iql.py`), loaded unchanged from `cfg["unifloral_src"]`
(default /opt/peers/unifloral/src, a copy of the repo's algorithms/ folder). What runs is the
file's own code: its networks (`DeterministicTanhActor`/`TanhGaussianActor`, `DualQNetwork`,
`StateValueFunction`), its `create_train_state`, `AgentTrainState`, `Transition`, `Args` and
`make_train_step`, and the agent initialisation of its `__main__` block, line for line. Replaced:
the dataset (`d4rl.qlearning_dataset` -> the benchmark's .npz, same five fields), and the
`__main__` loop (scan of `eval_interval` steps, then evaluation and wandb logging) -> one
`lax.scan` of all `num_updates` steps with no evaluation. The files import d4rl, gym and wandb at
the top; none of them is used by the training step, so they are stubbed with empty modules (tyro
is installed). The files also set os.environ["XLA_FLAGS"] = "--xla_gpu_triton_gemm_any=True" on
import (a GPU flag); the driver's XLA_FLAGS are kept and that flag appended.

The timed function is `train(key, dataset)` = the agent initialisation of the file's `__main__`
(dataset mean/std, `create_train_state` of every network) + `lax.scan(make_train_step(...),
(rng, agent_state), None, num_updates)`, jitted, the dataset an argument (as lfx's recipe.train).

Counting gradient steps: bench_offline counts G = critic gradient steps per seed. IQL: one peer
step = one V, one Q and one actor step = one lfx step, so num_updates = G. TD3+BC: one peer step =
`num_critic_updates_per_step` (2) critic steps on the batch, then one actor step and one target
update; lfx's TD3+BC (policy_freq 2) takes one critic step per batch and an actor step + target
update every 2nd step. So peer num_updates = G / 2: both sides then do G critic steps, G / 2 actor
steps and G / 2 target updates (the peer samples G / 2 batches, lfx G).

Protocol (as scripts/peers/rejax_ppo.py): one JSON line {"ready": ...} after compiling every mode
and one untimed warm-up call each, then each stdin line "run <mode>" -> one JSON line with the
wall and CPU time (time.process_time, all threads) of that mode:

    1      one seed: the compiled train(key, data)
    8seq   8 seeds one after another: the compiled 1-seed function called 8 times (keys 0..7),
           each blocked on; what 8 separate peer processes do, less 8 startups and compiles
    8vmap  jax.vmap(train, (0, None)) over 8 keys in one call (an extension: Unifloral's scripts
           run one seed per process, but the training step is a pure function, so it vmaps)
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import types

import numpy as np

DEFAULT_SRC = "/opt/peers/unifloral/src"


# ---------------------------------------------------------------------------------------------
# Matmul FLOPs of a jaxpr (shared with bench_offline's lfx worker: works on jax 0.5 and 0.10).


def _sub_jaxprs(value):
    """The jaxprs inside an equation parameter (a ClosedJaxpr, a Jaxpr, or tuples of them)."""
    if hasattr(value, "jaxpr") and hasattr(value, "consts"):  # ClosedJaxpr
        return [value.jaxpr]
    if hasattr(value, "eqns"):  # Jaxpr
        return [value]
    if isinstance(value, (tuple, list)):
        return [j for v in value for j in _sub_jaxprs(v)]
    return []


def matmul_flops(jaxpr) -> dict:
    """{"flops": 2 M N K summed over every dot_general (scan bodies times their length; a cond
    counts none of its branches), "cond_branches": [[flops of each branch] per cond]}."""
    total, conds = 0.0, []
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (lc, _), _ = eqn.params["dimension_numbers"]  # (contracting lhs, rhs), (batch lhs, rhs)
            ls = eqn.invars[0].aval.shape
            out = float(np.prod(eqn.outvars[0].aval.shape))
            contract = float(np.prod([ls[i] for i in lc])) if lc else 1.0
            total += 2.0 * out * contract
            continue
        if name == "cond":
            branches = [matmul_flops(b) for b in _sub_jaxprs(eqn.params["branches"])]
            conds.append([b["flops"] for b in branches])
            conds.extend(c for b in branches for c in b["cond_branches"])
            continue
        mult = float(eqn.params.get("length", 1)) if name == "scan" else 1.0
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                inner = matmul_flops(sub)
                total += mult * inner["flops"]
                conds.extend(inner["cond_branches"])
    return {"flops": total, "cond_branches": conds}


# ---------------------------------------------------------------------------------------------
# Loading Unifloral's file.


def load_unifloral(src: str, algorithm: str):
    """Imports `<src>/algorithms/<algorithm>.py` unchanged (d4rl, gym, wandb stubbed)."""
    for name in ("d4rl", "gym", "wandb"):
        sys.modules.setdefault(name, types.ModuleType(name))
    path = os.path.join(src, "algorithms", f"{algorithm}.py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: copy Unifloral's algorithms/ folder (commit f2dc127) "
                                f"to {src}/algorithms or pass unifloral_src.")
    saved = os.environ.get("XLA_FLAGS", "")
    spec = importlib.util.spec_from_file_location(f"unifloral_{algorithm}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # sets XLA_FLAGS="--xla_gpu_triton_gemm_any=True"
    os.environ["XLA_FLAGS"] = (saved + " " + os.environ.get("XLA_FLAGS", "")).strip()
    return module, path


def peer_num_updates(cfg: dict) -> int:
    if cfg["algorithm"] == "td3_bc":
        k = cfg["policy_freq"]  # = Unifloral's num_critic_updates_per_step
        if cfg["gradient_steps"] % k:
            raise ValueError(f"gradient_steps {cfg['gradient_steps']} must be a multiple of {k}.")
        return cfg["gradient_steps"] // k
    return cfg["gradient_steps"]


def build(cfg: dict):
    """(train(key, dataset), dataset, the file's make_train_step closure for one step, module, path)."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    if list(cfg["hidden_sizes"]) != [256, 256]:
        raise ValueError("Unifloral's networks are (256, 256) (hard-coded in its files).")
    m, path = load_unifloral(cfg.get("unifloral_src") or DEFAULT_SRC, cfg["algorithm"])
    num_updates = peer_num_updates(cfg)
    common = dict(seed=0, num_updates=num_updates, eval_interval=num_updates, log=False, lr=cfg["lr"],
                  batch_size=cfg["batch_size"], gamma=cfg["gamma"], polyak_step_size=cfg["tau"])
    if cfg["algorithm"] == "td3_bc":
        args = m.Args(**common, td3_alpha=cfg["alpha"], noise_clip=cfg["noise_clip"],
                      policy_noise=cfg["policy_noise"], num_critic_updates_per_step=cfg["policy_freq"])
    else:
        args = m.Args(**common, beta=cfg["beta"], iql_tau=cfg["expectile"], exp_adv_clip=cfg["max_weight"])

    npz = cfg["dataset"] if cfg["dataset"].endswith(".npz") else cfg["dataset"] + ".npz"
    with np.load(npz) as z:  # in place of d4rl.qlearning_dataset(gym.make(args.dataset))
        raw = {k: z[k] for k in ("observations", "actions", "rewards", "next_observations", "terminals")}
    dataset = m.Transition(
        obs=jnp.array(raw["observations"]),
        action=jnp.array(raw["actions"]),
        reward=jnp.array(raw["rewards"]),
        next_obs=jnp.array(raw["next_observations"]),
        done=jnp.array(raw["terminals"]),
    )
    num_actions = raw["actions"].shape[1]
    obs_shape = raw["observations"].shape[1:]

    def init(rng, dataset):
        """The `__main__` block's "Initialize agent and value networks" and "Make train step"."""
        obs_mean = dataset.obs.mean(axis=0)
        obs_std = jnp.nan_to_num(dataset.obs.std(axis=0), nan=1.0)
        dummy_obs = jnp.zeros(obs_shape)
        dummy_action = jnp.zeros(num_actions)
        q_net = m.DualQNetwork(obs_mean, obs_std)
        if cfg["algorithm"] == "td3_bc":
            actor_net = m.DeterministicTanhActor(num_actions, obs_mean, obs_std)
            rng, rng_actor, rng_q = jax.random.split(rng, 3)
            agent_state = m.AgentTrainState(
                actor=m.create_train_state(args, rng_actor, actor_net, [dummy_obs]),
                actor_target=m.create_train_state(args, rng_actor, actor_net, [dummy_obs]),
                dual_q=m.create_train_state(args, rng_q, q_net, [dummy_obs, dummy_action]),
                dual_q_target=m.create_train_state(args, rng_q, q_net, [dummy_obs, dummy_action]),
            )
            step_fn = m.make_train_step(args, actor_net.apply, q_net.apply, dataset)
        else:
            actor_net = m.TanhGaussianActor(num_actions, obs_mean, obs_std)
            value_net = m.StateValueFunction(obs_mean, obs_std)
            rng, rng_actor, rng_q, rng_value = jax.random.split(rng, 4)
            agent_state = m.AgentTrainState(
                actor=m.create_train_state(args, rng_actor, actor_net, [dummy_obs]),
                dual_q=m.create_train_state(args, rng_q, q_net, [dummy_obs, dummy_action]),
                dual_q_target=m.create_train_state(args, rng_q, q_net, [dummy_obs, dummy_action]),
                value=m.create_train_state(args, rng_value, value_net, [dummy_obs]),
            )
            step_fn = m.make_train_step(args, actor_net.apply, q_net.apply, value_net.apply, dataset)
        return (rng, agent_state), step_fn

    def train(rng, dataset):
        runner_state, step_fn = init(rng, dataset)
        # the __main__ loop without evaluation: eval_interval = num_updates, one chunk
        return jax.lax.scan(step_fn, runner_state, None, args.num_updates)

    def one_step_jaxpr():
        runner_state, step_fn = init(jax.random.PRNGKey(0), dataset)
        return jax.make_jaxpr(lambda s: step_fn(s, None))(runner_state).jaxpr

    return train, dataset, one_step_jaxpr, num_updates, path


def main() -> None:
    import jax  # noqa: PLC0415

    cfg = json.loads(sys.argv[1])
    train, dataset, one_step_jaxpr, num_updates, path = build(cfg)
    seeds = cfg.get("num_seeds", 8)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)

    fns, compile_s = {}, {}
    t0 = time.perf_counter()
    one = jax.jit(train).lower(keys[0], dataset).compile()
    compile_s["1"] = time.perf_counter() - t0
    jax.block_until_ready(one(keys[0], dataset))  # warm-up
    fns["1"] = lambda: one(keys[0], dataset)

    def seq():
        out = None
        for i in range(seeds):
            out = jax.block_until_ready(one(keys[i], dataset))
        return out

    fns[f"{seeds}seq"] = seq
    compile_s[f"{seeds}seq"] = 0.0  # the 1-seed executable
    if f"{seeds}vmap" in cfg["modes"]:
        t0 = time.perf_counter()
        vm = jax.jit(jax.vmap(train, in_axes=(0, None))).lower(keys, dataset).compile()
        compile_s[f"{seeds}vmap"] = time.perf_counter() - t0
        jax.block_until_ready(vm(keys, dataset))  # warm-up
        fns[f"{seeds}vmap"] = lambda: vm(keys, dataset)

    step = matmul_flops(one_step_jaxpr())
    per = cfg["gradient_steps"] / num_updates  # critic gradient steps per peer step
    from importlib.metadata import version  # noqa: PLC0415

    print(json.dumps({
        "ready": True, "impl": "unifloral", "steps_per_seed": cfg["gradient_steps"],
        "peer_num_updates": num_updates, "compile_s": compile_s,
        "matmul_flops_per_gradient_step": step["flops"] / per, "flops_detail": step,
        "source": path, "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "versions": {p: version(p) for p in ("jax", "jaxlib", "flax", "optax", "distrax", "numpy")},
        "python": sys.version.split()[0], "device": str(jax.devices()[0]),
    }), flush=True)
    for line in sys.stdin:
        cmd, mode = line.split()
        if cmd != "run":
            break
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fns[mode]())
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"impl": "unifloral", "mode": mode, "seconds": dt, "cpu_seconds": cpu}), flush=True)


if __name__ == "__main__":
    main()
