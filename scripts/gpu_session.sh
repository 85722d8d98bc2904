#!/usr/bin/env bash
# Everything one lent-GPU session measures, in one call (the device tool's 15-minute budget).
# On the device machine, from the repo root, with the wheels of gymnax/evosax/ml_collections/torchgfn
# (and their pure-Python deps) carried in .whl/ (see docs/BENCHMARKS.md, "GPU runs"):
#     bash scripts/gpu_session.sh
# Writes JSON and logs to $OUT. Sizes can be shrunk for a dry run on CPU:
#     META_T=16384 META_POP=4 GFN_BATCHES=16 PEER_DEVICE=cpu PY=python bash scripts/gpu_session.sh
set -u
OUT=${OUT:-/tmp/gpu_session}; mkdir -p "$OUT"
PY=${PY:-python3}
if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c "import jax, flax, optax, evosax, gymnax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices()); import lfx.meta.es, lfx.gfn.train" || exit 1
# 1. Issue 3: one TA-LPO ES generation, MinAtar SpaceInvaders, population 64, 1e6 steps per member,
#    against the same lifetimes run one member at a time.
timeout "${META_TIMEOUT:-300}" $PY scripts/bench_meta.py --env=SpaceInvaders-MinAtar --network=minatar_conv \
  --num_envs=64 --timesteps="${META_T:-1000000}" --population="${META_POP:-64}" --loop_members=2 \
  --repeats=2 --out="$OUT/meta_spaceinvaders.json" 2>&1 | grep -v "^W0\|^I0" | tee "$OUT/meta.log"
# 2. Issue 5: hypergrid TB, lfx vs torchgfn (torch on the same GPU), interleaved pairs.
XLA_PYTHON_CLIENT_MEM_FRACTION=0.4 timeout "${GFN_TIMEOUT:-240}" $PY scripts/bench_gfn.py --peer_python="${PEER_PY:-$PY}" \
  --peer_device="${PEER_DEVICE:-cuda}" --grids=2x8,4x16 --batches="${GFN_BATCHES:-16,512}" --repeats=3 \
  --seconds=1 --min_iters=20 --lfx_rollout=padded,packed --out="$OUT/gfn.json" 2>&1 | grep -v "^W0\|^I0" | tee "$OUT/gfn.log"
