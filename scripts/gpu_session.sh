#!/usr/bin/env bash
# Everything one lent-GPU session measures, in one call (the device tool's 15-minute budget).
# On the device machine, from the repo root, with the wheels of gymnax/evosax/ml_collections/torchgfn
# (and their pure-Python deps) carried in .whl/ (see docs/BENCHMARKS.md, "GPU runs"):
#     bash scripts/gpu_session.sh                 # all sections
#     SECTIONS=diag,gfn bash scripts/gpu_session.sh
# Sections: meta (issue 3's goal measurement: a TA-LPO generation, SpaceInvaders, population 64 x 1e6
# steps, and the same lifetimes one member at a time), diag (where that generation's time goes, at a
# quarter of the lifetime: population 8 vs 64, rollout scan unrolled x8, XLA command buffers over while
# loops), gfn (issue 5: hypergrid TB, lfx vs torchgfn on the same GPU). Writes JSON and logs to $OUT.
# Sizes can be shrunk for a dry run on CPU:
#     META_T=16384 META_POP=4 DIAG_T=8192 GFN_GRIDS=2x8 GFN_BATCHES=16 PEER_DEVICE=cpu PY=python \
#         NO_WHEELS=1 XLA_CMDBUF= bash scripts/gpu_session.sh
set -u
OUT=${OUT:-/tmp/gpu_session}; mkdir -p "$OUT"
PY=${PY:-python3}
SECTIONS=${SECTIONS:-meta,diag,gfn}
if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c "import jax, flax, optax, evosax, gymnax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices()); import lfx.meta.es, lfx.gfn.train" || exit 1
META="scripts/bench_meta.py --env=SpaceInvaders-MinAtar --network=minatar_conv --num_envs=64"
quiet() { grep -v "^W0\|^I0"; }
if [[ $SECTIONS == *meta* ]]; then
  timeout "${META_TIMEOUT:-300}" $PY $META --timesteps="${META_T:-1000000}" --population="${META_POP:-64}" \
    --loop_members=2 --repeats=2 --out="$OUT/meta_spaceinvaders.json" 2>&1 | quiet | tee "$OUT/meta.log"
fi
if [[ $SECTIONS == *diag* ]]; then
  T=${DIAG_T:-262144}
  # XLA command buffers (CUDA graphs) including while loops and conditionals; a flag this jaxlib does not
  # know makes that one run fail, nothing else.
  CMDBUF=${XLA_CMDBUF-"--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,CONDITIONAL,WHILE --xla_gpu_graph_min_graph_size=1"}
  for v in "pop64 --population=64" "pop8 --population=8" "unroll8 --population=64 --unroll=8" \
           "cmdbuf --population=64" "cmdbuf_unroll8 --population=64 --unroll=8"; do
    name=${v%% *}; args=${v#* }
    flags=""; [[ $name == cmdbuf* ]] && flags=$CMDBUF
    [[ $name == cmdbuf* && -z $flags ]] && continue
    echo "== diag $name: $args ${flags}"
    xf=$(echo "${XLA_FLAGS:-} $flags" | xargs)
    env ${xf:+XLA_FLAGS="$xf"} timeout "${DIAG_TIMEOUT:-150}" $PY $META --timesteps="$T" $args \
      --notime_loop --repeats=2 --out="$OUT/diag_$name.json" 2>&1 | quiet | tail -4 | tee -a "$OUT/diag.log"
  done
fi
if [[ $SECTIONS == *gfn* ]]; then
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.4 timeout "${GFN_TIMEOUT:-300}" $PY scripts/bench_gfn.py --peer_python="${PEER_PY:-$PY}" \
    --peer_device="${PEER_DEVICE:-cuda}" --grids="${GFN_GRIDS:-4x16}" --batches="${GFN_BATCHES:-512}" --repeats=3 \
    --seconds=1 --min_iters=20 --lfx_rollout=padded,packed --out="$OUT/gfn.json" 2>&1 | quiet | tee "$OUT/gfn.log"
fi
