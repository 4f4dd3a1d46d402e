#!/usr/bin/env bash
# The study of docs/results.md: four questions, each one sweep
# (tools/analysis/sweep.py) of the study-size configs in configs/study/,
# then plots and markdown tables (tools/analysis/plot.py).
#
#   bash tools/analysis/run_study.sh [q1 q2 q3 q4 plots ...] [--estimate]
#
# Without question names: all of them, then the plots. --estimate prints
# the planned runs and the estimated time, and runs nothing. Re-running
# skips finished points (results files are appended, never rewritten), so
# an interrupted study continues where it stopped.
#
# Environment (defaults in brackets):
#   PY                python [.venv/bin/python]
#   OUT               output folder [work_dirs/study]
#   SEEDS             seeds of every point [0,1,2]
#   Q1_PARTITIONS     Q1 client partitions
#                     [iid,dir1,dir0.1,dir0.02,skew0.5,skew0]
#   Q2_TOTAL          Q2 total local epochs per client [50]
#   Q2_LOCAL          Q2 local epochs per round [1,5,25,all]
#   Q3_PARTICIPATION  Q3 fractions of 20 clients per round [1,0.5,0.2,0.1]
#   Q4_PARTITION      Q4 partition [dir0.02]
#   SEC_PER_EPOCH     seconds per pass over the pretraining images (2,000)
#                     on the target machine, for the estimate [4: one
#                     SimCLR run, OMP_NUM_THREADS=1, on one of 2 cores
#                     while a second sweep used the other; SimSiam about
#                     the same, Dec-SL about half]
#   SEC_PER_RUN       fixed seconds per run (start-up + evaluation) [15]
#   SWEEP_ARGS        extra sweep arguments for every sweep, e.g.
#                     "--launcher pytorch --gpus 2" or "--device cuda"
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY=${PY:-.venv/bin/python}
[[ -x "$PY" ]] || PY=python
OUT=${OUT:-work_dirs/study}
SEEDS=${SEEDS:-0,1,2}
Q1_PARTITIONS=${Q1_PARTITIONS:-iid,dir1,dir0.1,dir0.02,skew0.5,skew0}
Q2_TOTAL=${Q2_TOTAL:-50}
Q2_LOCAL=${Q2_LOCAL:-1,5,25,all}
Q3_PARTICIPATION=${Q3_PARTICIPATION:-1,0.5,0.2,0.1}
Q4_PARTITION=${Q4_PARTITION:-dir0.02}
SEC_PER_EPOCH=${SEC_PER_EPOCH:-4}
SEC_PER_RUN=${SEC_PER_RUN:-15}
SWEEP_ARGS=${SWEEP_ARGS:-}
S=configs/study
SWEEP=("$PY" tools/analysis/sweep.py)
# shellcheck disable=SC2206
EXTRA=($SWEEP_ARGS)

ESTIMATE=0
WANT=()
for a in "$@"; do
    case "$a" in
        --estimate) ESTIMATE=1 ;;
        q1|q2|q3|q4|plots) WANT+=("$a") ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "run_study.sh: unknown argument '$a' (q1 q2 q3 q4 plots" \
                "--estimate)" >&2; exit 2 ;;
    esac
done
[[ ${#WANT[@]} -gt 0 ]] || WANT=(q1 q2 q3 q4 plots)

# Q1 heterogeneity: Dec-SSL (SimCLR, SimSiam), Dec-SL (+ Dec-SLRep from the
# same runs) over the partitions; centralized SSL and SL (one client, same
# epochs); the untrained models as the floor.
q1a() {
    "${SWEEP[@]}" --work-dir "$OUT/q1" --seeds "$SEEDS" \
        --variants "Dec-SSL/SimCLR=$S/simclr_r18w16_fmnist_dec.py" \
                   "Dec-SSL/SimSiam=$S/simsiam_r18w16_fmnist_dec.py" \
                   "Dec-SL=$S/supervised_r18w16_fmnist_dec.py" \
        --grid "partition=$Q1_PARTITIONS" "${EXTRA[@]}" "$@"
}
q1b() {
    "${SWEEP[@]}" --work-dir "$OUT/q1" --seeds "$SEEDS" \
        --variants "Central/SimCLR=$S/simclr_r18w16_fmnist_central.py" \
                   "Central/SimSiam=$S/simsiam_r18w16_fmnist_central.py" \
                   "Central/SL=$S/supervised_r18w16_fmnist_central.py" \
        "${EXTRA[@]}" "$@"
}
# The floor: the same models at initialisation (no training), seeded.
q1c() {
    "${SWEEP[@]}" --work-dir "$OUT/q1" --seeds "$SEEDS" --no-train \
        --variants "Init/SimCLR=$S/simclr_r18w16_fmnist_dec.py" \
                   "Init/Dec-SL=$S/supervised_r18w16_fmnist_dec.py" \
        "${EXTRA[@]}" "$@"
}
# Q2 communication: fixed total local epochs, local epochs per round varies
# (rounds = Q2_TOTAL / local epochs; 'all' = one round), Dec-SSL and Dec-SL.
q2() {
    "${SWEEP[@]}" --work-dir "$OUT/q2" --seeds "$SEEDS" \
        --variants "Dec-SSL/SimCLR=$S/simclr_r18w16_fmnist_dec.py" \
                   "Dec-SL=$S/supervised_r18w16_fmnist_dec.py" \
        --grid "local_epochs=$Q2_LOCAL" --total-epochs "$Q2_TOTAL" \
        "${EXTRA[@]}" "$@"
}
# Q3 participation: 20 clients, a fraction of them per round, 20 rounds.
q3() {
    "${SWEEP[@]}" --work-dir "$OUT/q3" --seeds "$SEEDS" \
        --config "$S/simclr_r18w16_fmnist_dec.py" \
        --method-label Dec-SSL/SimCLR --cfg-options num_clients=20 \
        --grid "participation=$Q3_PARTICIPATION" "${EXTRA[@]}" "$@"
}
# Q4 FeatARC vs FedAvg on a highly skewed split.
q4() {
    "${SWEEP[@]}" --work-dir "$OUT/q4" --seeds "$SEEDS" \
        --variants "FedAvg/SimCLR=$S/simclr_r18w16_fmnist_dec.py" \
                   "FeatARC/SimCLR=$S/simclr_r18w16_fmnist_featarc.py" \
                   "FedAvg/SimSiam=$S/simsiam_r18w16_fmnist_dec.py" \
                   "FeatARC/SimSiam=$S/simsiam_r18w16_fmnist_featarc.py" \
        --grid "partition=$Q4_PARTITION" "${EXTRA[@]}" "$@"
}
plots() {
    local P=(tools/analysis/plot.py --out-dir "$OUT/plots")
    mkdir -p "$OUT/plots"
    local q plot m
    for q in "1 heterogeneity" "2 communication" "3 participation" \
             "4 featarc"; do
        set -- $q
        plot=$2
        [[ -f "$OUT/q$1/results.jsonl" ]] || continue
        for m in linear_top1 knn_top1; do
            "$PY" "${P[@]}" "$OUT/q$1/results.jsonl" --plot "$plot" \
                --metric "$m" --name "q$1_${plot}_$m.png" --table \
                --table-out "$OUT/plots/q$1_$m.md"
        done
    done
    return 0
}

steps=()
for q in "${WANT[@]}"; do
    case "$q" in
        q1) steps+=(q1a q1b q1c) ;;
        q2|q3|q4) steps+=("$q") ;;
    esac
done

# Estimate: the sweeps' dry runs give runs to do and the work in passes over
# the training set (rounds x local epochs x participation; x1.5 FeatARC).
total_runs=0
total_work=0
for s in "${steps[@]}"; do
    line=$("$s" --dry-run | grep '^Planned:')
    echo "$s: $line"
    runs=$(sed -E 's/.* ([0-9]+) to run.*/\1/' <<<"$line")
    work=$(sed -E 's/.*work to run: ([0-9.e+]+) epochs.*/\1/' <<<"$line")
    total_runs=$((total_runs + runs))
    total_work=$("$PY" -c "print($total_work + $work)")
done
secs=$("$PY" -c "print(int($total_work * $SEC_PER_EPOCH + \
$total_runs * $SEC_PER_RUN))")
printf 'Estimated: %d runs, %s passes over the training set, about %dh%02dm ' \
    "$total_runs" "$total_work" $((secs / 3600)) $((secs % 3600 / 60))
echo "(SEC_PER_EPOCH=$SEC_PER_EPOCH, SEC_PER_RUN=$SEC_PER_RUN)"
[[ $ESTIMATE == 1 ]] && exit 0

for s in "${steps[@]}"; do
    echo "=== $s"
    "$s"
done
for q in "${WANT[@]}"; do
    [[ $q == plots ]] && plots
done
echo "Done. Results: $OUT/q*/results.jsonl; plots and tables: $OUT/plots"
