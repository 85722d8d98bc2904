"""The bad inputs and faults `scripts/audit_bad_inputs.py` drives (one table; add a family's cases here)."""

from audit_bad_inputs import (
    TINY_PPO,
    Case,
    api,
    crafted_pickle,
    damage_latest_checkpoint,
    earlier_run,
    garbage_line,
    script,
)

PPO = "ppo.py"
C: list[Case] = []


def add(category, name, argv, expect, **kw):
    C.append(Case(category, name, argv, expect, **kw))


# --- config: unknown fields, wrong types, out-of-range values (PPO, the reference script) ---------
for flag, expect in {
    "--config.num_env=4": "num_envs",
    "--config.hparams.learning_rate=1e-3": "learning_rate",
    "--config.num_minibatches=3": "does not divide the batch",
    "--config.num_seeds=0": "num_seeds must be positive",
    "--config.chunk_size=0": "chunk_size must be positive",
    "--config.checkpoint_every=-1": "checkpoint_every must be >= 0",
    "--config.hidden_sizes=()": "hidden_sizes",
    "--config.hparams.lr=inf": "must be finite",
    "--config.hparams.lr=-1": "HParams.lr",
    "--config.hparams.gamma=1.5": "HParams.gamma",
    "--config.env_name=NoSuchEnv-v0": "NoSuchEnv",
    "--config.network=transformer": "Unknown network",
    "--config.objective=foo": "Unknown objective",
    "--config.env_kwargs.foo=1": "foo",
}.items():
    add("config", f"ppo {flag}", script(PPO, *TINY_PPO, flag), expect)  # the last value wins
for spec, expect in {"lr=": "comma-separated", "lr=1e-3;lr=1e-4": "twice",
                     "learning_rate=1e-3": "not a traced HParams field", "lr=abc": "numbers"}.items():
    add("config", f"ppo --sweep={spec}", script(PPO, *TINY_PPO, f"--sweep={spec}"), expect)
add("config", "ppo unknown variant", script(PPO, "--config=ppo.py:cartpol", *TINY_PPO), "cartpole")

# --- data loss: a refused run leaves an earlier run's files as they were ---------------------------
done = earlier_run(PPO, *TINY_PPO)
add("data-loss", "ppo rerun without --resume", script(PPO, *TINY_PPO), "--resume", prepare=done)
add("data-loss", "ppo other config, same workdir",
    script(PPO, *TINY_PPO, "--config.hparams.lr=1e-3"), "different configuration", prepare=done)
add("data-loss", "ppo bad value, same workdir", script(PPO, *TINY_PPO, "--config.num_seeds=0"),
    "num_seeds", prepare=done)

# --- corruption: damaged files are found before compiling, or recovered from -----------------------
add("corruption", "ppo newest checkpoint missing _METADATA",
    script(PPO, *TINY_PPO, "--resume"), "unusable", prepare=damage_latest_checkpoint(PPO, *TINY_PPO),
    recover=True)
add("corruption", "ppo garbage line in metrics.jsonl", script(PPO, *TINY_PPO, "--resume"),
    "Resumed from update", prepare=garbage_line("metrics.jsonl", PPO, *TINY_PPO), recover=True)


def _bad_run_json(workdir):
    done(workdir)
    with open(f"{workdir}/run.json", "w") as f:
        f.write("{not json")


add("corruption", "ppo run.json not JSON", script(PPO, *TINY_PPO, "--resume"), "run.json",
    prepare=_bad_run_json)

# --- the Python API -------------------------------------------------------------------------------
for code, expect in {
    "from lfx import envs; envs.make(None)": "must be a string",
    "from lfx import envs; envs.make('CartPole-v1', max_steps_in_episode='abc')": "must be a number",
    "from lfx import envs; envs.make('CartPole-v1', foo=1)": "unknown keyword",
    "from lfx import envs; envs.make('NoSuchEnv-v0')": "Unknown environment",
    "from lfx.rl import ppo; ppo.make_train(ppo.PPOConfig(num_envs=0))": "num_envs",
}.items():
    add("api", code.split(";")[-1].strip()[:45], api(code), expect)

# --- es / EvoLLM --------------------------------------------------------------------------------
ES = "es_bbob.py"
TINY_ES = ("--config=es_bbob.py:smoke", "--config.strategies=random_search,hill_climbing",
           "--config.num_generations=3", "--noprogress")
for flag, expect in {
    "--config.strategies=cmaes": "cma_es",
    "--config.strategies=random_search,cmaes": "cma_es",
    "--config.num_generations=0": "num_generations",
    "--config.population_size=0": "population_size",
    "--config.ablation=sigma": "field=v1,v2",
    "--config.ablation=no_such_field=1,2": "no_such_field",
    "--config.dims=two": "dims",
    "--config.fns=spherex": "sphere",
}.items():
    add("config", f"es_bbob {flag}", script(ES, *TINY_ES, flag), expect)
es_done = earlier_run(ES, *TINY_ES)
add("data-loss", "es_bbob unknown strategy over earlier results",
    script(ES, *TINY_ES, "--config.strategies=cmaes"), "cma_es", prepare=es_done)
add("data-loss", "es_bbob rerun without --resume", script(ES, *TINY_ES), "--resume", prepare=es_done)
add("pickle", "es_bbob teacher lm_path is a crafted pickle (.npz name)",
    script(ES, *TINY_ES, "--config.strategies=evollm", "--config.evollm.lm=teacher",
           "--config.evollm.lm_path={W}/lm.npz"), "lm.npz", prepare=crafted_pickle)
add("pickle", "es_bbob teacher lm_path is a crafted pickle (.pkl name)",
    script(ES, *TINY_ES, "--config.strategies=evollm", "--config.evollm.lm=teacher",
           "--config.evollm.lm_path={W}/lm.pkl"), "lm.pkl", prepare=crafted_pickle)
for code, expect in {
    "from lfx.lm.char_tokenizer import CharTokenizer; CharTokenizer('ab').decode([-1])": "decode",
    "open('/tmp/empty.gguf','w').close(); from lfx.lm.gguf_loader import load_gguf; "
    "load_gguf('/tmp/empty.gguf')": "empty.gguf",
    "open('/tmp/garbage.npz','w').write('garbage'); from lfx.lm.io import load_npz; "
    "load_npz('/tmp/garbage.npz')": "garbage.npz",
}.items():
    add("api", code.split(";")[-1].strip()[:45], api(code), expect)

# --- gfn ------------------------------------------------------------------------------------------
GFN = "gfn_hypergrid.py"
TINY_GFN = ("--config.losses=tb", "--config.num_iterations=20", "--config.eval_every=10",
            "--config.num_seeds=1", "--config.chunk_size=10", "--config.checkpoint_every=10",
            "--config.hidden=(16,)", "--noprogress")
for flag, expect in {
    "--config.losses=foo": "foo",
    "--config.losses=tb,foo": "foo",
    "--config.hparams.lr=0": "lr",
    "--config.hparams.lr=nan": "lr",
    "--config.hparams.epsilon=1.5": "epsilon",
    "--config.hparams.temperature=0": "temperature",
    "--config.num_seeds=0": "num_seeds",
    "--config.chunk_size=0": "chunk_size",
}.items():
    add("config", f"gfn_hypergrid {flag}", script(GFN, *TINY_GFN, flag), expect)
gfn_done = earlier_run(GFN, *TINY_GFN)
add("data-loss", "gfn_hypergrid unknown loss over earlier results",
    script(GFN, *TINY_GFN, "--config.losses=foo"), "foo", prepare=gfn_done)
add("data-loss", "gfn_hypergrid losses=tb,foo over earlier results",
    script(GFN, *TINY_GFN, "--config.losses=tb,foo"), "foo", prepare=gfn_done)

# --- qd -------------------------------------------------------------------------------------------
QD = "qd_sparse.py"
TINY_QD = ("--config=qd_sparse.py:smoke", "--noprogress")
for flag, expect in {
    "--config.budget=0": "budget",
    "--config.population_size=0": "population_size",
    "--config.hparams.sigma=-1": "sigma",
    "--config.num_seeds=0": "num_seeds",
    "--config.algorithms=()": "algorithms",
    "--config.algorithms=('nsx',)": "nsx",
    "--config.env=NoSuchTask": "NoSuchTask",
}.items():
    add("config", f"qd_sparse {flag}", script(QD, *TINY_QD, flag), expect)
add("data-loss", "qd_sparse budget=0 over earlier results",
    script(QD, *TINY_QD, "--config.budget=0"), "budget", prepare=earlier_run(QD, *TINY_QD))

# --- meta -----------------------------------------------------------------------------------------
META = "meta_train.py"
TINY_META = ("--config=meta_train.py:tiny", "--noprogress")
for flag, expect in {
    "--config.hparams.lr=-1": "lr",
    "--config.window_fraction=0": "window_fraction",
    "--config.env_names=('Acrobot-v1',)": "Acrobot-v1",
    "--config.drift=ta_lpo_ppo_int": "ta_lpo_ppo_init",
    "--config.num_generations=0": "num_generations",
}.items():
    add("config", f"meta_train {flag}", script(META, *TINY_META, flag), expect)
EVAL = "eval_objective.py"
for flag, expect in {
    "--config.num_seeds=0": "num_seeds",
    "--config.objectives=()": "objectives",
    "--config.objectives=('ppo','lpo/no_such')": "no_such",
    "--cells=99": "99",
}.items():
    add("config", f"eval_objective {flag}", script(EVAL, "--noprogress", flag), expect)
add("pickle", "load_pretrained outside the package",
    api("from lfx.meta import load_pretrained; load_pretrained('../../etc/passwd')"), "..")
add("pickle", "load_pretrained absolute path",
    api("from lfx.meta import load_pretrained; load_pretrained('/tmp/x')"), "/tmp/x")

# --- concurrency: a second run on a held workdir is refused naming the holder ---------------------


def _held(workdir):
    import subprocess
    import sys
    import time

    code = ("import sys, time; from lfx.experiment import Workdir; "
            f"w = Workdir.open({workdir!r}, {{'held': 1}}); print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    _HOLDERS.append(proc)
    time.sleep(0.2)


_HOLDERS: list = []
add("concurrency", "ppo on a workdir another run holds", script(PPO, *TINY_PPO), "in use by another run",
    prepare=_held)

CASES = C
