#!/usr/bin/env bash
# Pretrain CONFIG across N sites on this machine over Flower (one SuperLink,
# N SuperNodes on 127.0.0.1), each site holding its client's share of the
# config's partition; print the rounds and the kNN line of the global
# backbone beside the untrained references (the config's evaluation hook on
# the server; knn_eval.py when the config has none), then extract the
# backbone for the downstream configs (WORK_DIR/backbone.pth).
# Each site trains with OMP_NUM_THREADS = cores // N (override: SITE_THREADS).
#
#   bash tools/flower/run_local_federation.sh \
#       configs/decssl/simclr_r18_fmnist_dir0.1_demo.py 3 [WORK_DIR]
#
# SECURE=1: TLS (a CA and a server certificate made in WORK_DIR/flower/certs)
# and SuperNode authentication (a key pair per site in WORK_DIR/flower/keys,
# each registered with `flwr supernode register` before its node starts).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONFIG="$(realpath "${1:?usage: $0 CONFIG N [WORK_DIR]}")"
N="${2:?usage: $0 CONFIG N [WORK_DIR]}"
NAME="$(basename "$CONFIG" .py)"
WORK="$(realpath -m "${3:-$ROOT/work_dirs/flower_${NAME}_${N}sites}")"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
case "${SECURE:-0}" in
    0|1) ;;
    *) echo "SECURE must be 0 or 1, got '$SECURE'" >&2; exit 2 ;;
esac
export SECURE="${SECURE:-0}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$WORK"
"$PY" - "$CONFIG" "$N" "$WORK" <<'PYEOF'
import os, sys, time
from mmengine.config import Config
from decssl_mm.flower.loopback import LocalFederation
from decssl_mm.flower.site_split import split_fmnist_sites

config, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg = Config.fromfile(config)
cfg.train_dataloader.dataset.partition.num_clients = n
shared = f'{work}/shared_config.py'
cfg.dump(shared)
sites = split_fmnist_sites(cfg, f'{work}/sites')
nodes = [{'data-root': d, 'site-id': k, 'state-dir': f'{work}/site_state{k}'}
         for k, d in enumerate(sites)]
secure = os.environ['SECURE'] == '1'
print(f'{n} sites under {work}/sites; logs under {work}/flower'
      + (' (TLS, SuperNode authentication)' if secure else ''), flush=True)
threads = os.environ.get('SITE_THREADS') or max(1, (os.cpu_count() or 1) // n)
env = {'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads)}
with LocalFederation(f'{work}/flower', nodes, env, secure=secure) as fed:
    run = fed.run({'config': shared, 'work-dir': f'{work}/server',
                   'resume': False}, 0)
    while run.poll() is None:
        time.sleep(2)
    log = fed.log('run')
    lines = [x for x in log.splitlines()
             if 'Round ' in x or 'kNN top-1' in x or 'left out' in x]
    print('\n'.join(lines) if lines else log[-2000:])
    status = fed.run_status()  # flwr run --stream exits 0 even then
    if run.returncode or status != 'finished:completed':
        print(log[-2000:])
        sys.exit(f'flwr run failed ({run.returncode}, {status}); see '
                 f'{work}/flower')
PYEOF
CKPT="$WORK/server/$(basename "$(cat "$WORK/server/last_checkpoint")")"
echo "global model: $CKPT"
if ! grep -q "kNN top-1" "$WORK/flower/run.log"; then
    "$PY" "$ROOT/tools/analysis/knn_eval.py" "$WORK/shared_config.py" "$CKPT"
fi
"$PY" "$ROOT/tools/model_converters/extract_backbone.py" "$CKPT" \
    "$WORK/backbone.pth"
echo "downstream: add --cfg-options model.backbone.init_cfg.checkpoint=$WORK/backbone.pth"
echo "            to a config under configs/downstream/ of the same backbone"
