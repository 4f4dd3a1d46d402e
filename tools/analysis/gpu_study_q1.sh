#!/usr/bin/env bash
# Q1 of the study (docs/results.md) for SimCLR at full Fashion-MNIST size on
# one GPU, in one call of at most ~9 minutes: Dec-SSL (SimCLR) vs Dec-SL /
# Dec-SLRep (one supervised run gives both) over IID and the paper's
# Dirichlet draw (alpha 0.1 and 0.02, size_range (0.5, 1.5)), with
# centralized SimCLR and centralized supervised learning; one seed; every
# record carries the untrained references (model init / PyTorch default
# init); kNN + linear probe on frozen features. Writes
#   $OUT/results.jsonl                 one line per run (tools/analysis/sweep.py)
#   $OUT/q1_linear_top1.md, q1_knn_top1.md   markdown tables (plot.py --table)
#   $OUT/q1_heterogeneity_*.png        the figures
#   $OUT/env.txt                       torch / device / sizes / times
# and the runs' logs under $OUT/<run>/. Nothing is downloaded: the data come
# from DATA_ROOT, every model starts from its own initialisation.
#
#   bash tools/analysis/gpu_study_q1.sh [--tiny]
#
# On the GPU machine (torch only; `bash ../shared/gpu/prepare.sh` here first
# puts the wheels and the Fashion-MNIST files in the git-ignored .gpu/, which
# the device call must carry):
#   python3 -m pip install -q --no-index --no-deps --no-compile \
#       --target /tmp/site .gpu/whl/*.whl && \
#   export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 && \
#   PY=python3 OUT=$OUT/gpu_q1 bash tools/analysis/gpu_study_q1.sh
#
# The runs are ordered by importance (IID pair, the centralized pair, then
# Dirichlet 0.02 and 0.1) and share a time budget (BUDGET_S): a sweep still
# running when it is spent is stopped, the rest is skipped, and the tables
# are made from what finished. Calling the script again resumes (finished
# runs are skipped). --tiny: a few hundred images, 4 clients, width 8,
# 1 round, on the CPU (a check of the script; tests/study/test_gpu_q1.py).
#
# Environment (GPU defaults; --tiny ones in brackets):
#   PY            python interpreter [python3]
#   OUT           output folder [work_dirs/gpu_q1 (work_dirs/gpu_q1_tiny)]
#   DATA_ROOT     Fashion-MNIST gz files [.gpu/data (/usr/share/datasets/
#                 fashion-mnist)]
#   IMAGES        pretraining images (first N of the train split) [60000 (200)]
#   CLIENTS       clients [10 (4)]
#   ROUNDS        rounds of 1 local epoch; the cosine schedule spans them
#                 [4 (1)]
#   WIDTH         ResNet-18 base channels [16 (8)]
#   BATCH         batch size [64 (32)]
#   WORKERS       training dataloader workers [8 (0)]
#   EVAL_TRAIN    kNN bank / probe training images [10000 (200)]
#   EVAL_TEST     test images [10000 (100)]
#   PROBE_EPOCHS  linear-probe epochs [100 (3)]
#   SEED          seed [0]
#   BUDGET_S      seconds for all the runs [540 (600)]
#   DEVICE        evaluation device [cuda (cpu)]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

TINY=0
for a in "$@"; do
    case "$a" in
        --tiny) TINY=1 ;;
        -h|--help) sed -n '2,50p' "$0"; exit 0 ;;
        *) echo "gpu_study_q1.sh: unknown argument '$a' (--tiny)" >&2
           exit 2 ;;
    esac
done

PY=${PY:-python3}
SEED=${SEED:-0}
if [[ $TINY == 1 ]]; then
    OUT=${OUT:-work_dirs/gpu_q1_tiny}
    DATA_ROOT=${DATA_ROOT:-/usr/share/datasets/fashion-mnist}
    IMAGES=${IMAGES:-200}; CLIENTS=${CLIENTS:-4}; ROUNDS=${ROUNDS:-1}
    WIDTH=${WIDTH:-8}; BATCH=${BATCH:-32}; WORKERS=${WORKERS:-0}
    EVAL_TRAIN=${EVAL_TRAIN:-200}; EVAL_TEST=${EVAL_TEST:-100}
    PROBE_EPOCHS=${PROBE_EPOCHS:-3}; BUDGET_S=${BUDGET_S:-600}
    DEVICE=${DEVICE:-cpu}; RUNNER=inprocess
else
    OUT=${OUT:-work_dirs/gpu_q1}
    DATA_ROOT=${DATA_ROOT:-.gpu/data}
    IMAGES=${IMAGES:-60000}; CLIENTS=${CLIENTS:-10}; ROUNDS=${ROUNDS:-4}
    WIDTH=${WIDTH:-16}; BATCH=${BATCH:-64}; WORKERS=${WORKERS:-8}
    EVAL_TRAIN=${EVAL_TRAIN:-10000}; EVAL_TEST=${EVAL_TEST:-10000}
    PROBE_EPOCHS=${PROBE_EPOCHS:-100}; BUDGET_S=${BUDGET_S:-540}
    DEVICE=${DEVICE:-cuda}; RUNNER=subprocess
fi
[[ -f "$DATA_ROOT/train-images-idx3-ubyte.gz" ]] || {
    echo "gpu_study_q1.sh: no Fashion-MNIST in DATA_ROOT=$DATA_ROOT" >&2
    exit 2; }
mkdir -p "$OUT"
PERSIST=False
[[ $WORKERS -gt 0 ]] && PERSIST=True
S=configs/study
SWEEP=("$PY" tools/analysis/sweep.py --seeds "$SEED" --work-dir "$OUT"
       --data-root "$DATA_ROOT" --device "$DEVICE" --runner "$RUNNER"
       --eval knn,linear --probe-epochs "$PROBE_EPOCHS"
       --eval-train-subset "$EVAL_TRAIN" --eval-test-subset "$EVAL_TEST"
       --cfg-options "study_train_subset=$IMAGES" "study_rounds=$ROUNDS"
       study_local_epochs=1 "study_width=$WIDTH" "study_batch_size=$BATCH"
       "study_num_clients=$CLIENTS" "train_dataloader.num_workers=$WORKERS"
       "train_dataloader.persistent_workers=$PERSIST" log_level=WARNING)
DEC=(--variants "Dec-SSL/SimCLR=$S/simclr_r18w16_fmnist_dec.py"
     "Dec-SL=$S/supervised_r18w16_fmnist_dec.py")
CENTRAL=(--variants "Central/SimCLR=$S/simclr_r18w16_fmnist_central.py"
         "Central/SL=$S/supervised_r18w16_fmnist_central.py")

# One sweep within what is left of the budget; its finished runs are in
# the results file whatever happens.
sweep() {
    local left=$((BUDGET_S - SECONDS))
    if [[ $left -lt 20 ]]; then
        echo "=== budget spent (${SECONDS} s): skipped: $*"
        return 0
    fi
    echo "=== $* (${SECONDS} s used, ${left} s left)"
    timeout "$left" "${SWEEP[@]}" "$@" || \
        echo "=== stopped or failed (exit $?): $*"
}

{
    echo "started: $(date -Is)"
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda",
torch.cuda.is_available(), torch.cuda.get_device_name(0)
if torch.cuda.is_available() else "cpu")'
    echo "images=$IMAGES clients=$CLIENTS rounds=$ROUNDS width=$WIDTH" \
         "batch=$BATCH workers=$WORKERS eval=$EVAL_TRAIN/$EVAL_TEST" \
         "probe_epochs=$PROBE_EPOCHS seed=$SEED device=$DEVICE"
} > "$OUT/env.txt"

# Dec-SSL and Dec-SL partition by partition (the method axis inside)
sweep "${DEC[@]}" --grid partition=iid method=Dec-SSL/SimCLR,Dec-SL
sweep "${CENTRAL[@]}"
sweep "${DEC[@]}" --grid partition=dir0.02,dir0.1 method=Dec-SSL/SimCLR,Dec-SL

echo "runs done: ${SECONDS} s" >> "$OUT/env.txt"
if [[ -f "$OUT/results.jsonl" ]]; then
    for m in linear_top1 knn_top1; do
        "$PY" tools/analysis/plot.py "$OUT/results.jsonl" \
            --plot heterogeneity --metric "$m" --out-dir "$OUT" \
            --name "q1_heterogeneity_$m.png" --table \
            --table-out "$OUT/q1_$m.md" || echo "=== table $m failed"
    done
fi
echo "finished: $(date -Is), ${SECONDS} s" >> "$OUT/env.txt"
cat "$OUT/env.txt"
echo "Results: $OUT/results.jsonl; tables: $OUT/q1_linear_top1.md," \
     "$OUT/q1_knn_top1.md"
