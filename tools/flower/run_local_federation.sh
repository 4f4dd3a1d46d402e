#!/usr/bin/env bash
# Pretrain CONFIG across N sites on this machine over Flower (one SuperLink,
# N SuperNodes on 127.0.0.1), each site holding its client's share of the
# config's partition, then print the kNN line of the global backbone beside
# the untrained references.
#
#   bash tools/flower/run_local_federation.sh \
#       configs/decssl/simclr_r18_fmnist_dir0.1_demo.py 3 [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONFIG="$(realpath "${1:?usage: $0 CONFIG N [WORK_DIR]}")"
N="${2:?usage: $0 CONFIG N [WORK_DIR]}"
NAME="$(basename "$CONFIG" .py)"
WORK="$(realpath -m "${3:-$ROOT/work_dirs/flower_${NAME}_${N}sites}")"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$WORK"
"$PY" - "$CONFIG" "$N" "$WORK" <<'PYEOF'
import sys, time
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
print(f'{n} sites under {work}/sites; logs under {work}/flower', flush=True)
with LocalFederation(f'{work}/flower', nodes) as fed:
    run = fed.run({'config': shared, 'work-dir': f'{work}/server',
                   'resume': False}, 0)
    while run.poll() is None:
        time.sleep(2)
    print(fed.log('run')[-2000:])
    status = fed.run_status()  # flwr run --stream exits 0 even then
    if run.returncode or status != 'finished:completed':
        sys.exit(f'flwr run failed ({run.returncode}, {status}); see '
                 f'{work}/flower')
PYEOF
CKPT="$WORK/server/$(basename "$(cat "$WORK/server/last_checkpoint")")"
echo "global model: $CKPT"
"$PY" "$ROOT/tools/analysis/knn_eval.py" "$WORK/shared_config.py" "$CKPT"
