#!/usr/bin/env bash
# The study of docs/results.md: four questions, each a few sweeps
# (tools/analysis/sweep.py) of the study-size configs in configs/study/,
# then plots and markdown tables (tools/analysis/plot.py).
#
#   bash tools/analysis/run_study.sh [q1 q2 q3 q4 plots ...] [--estimate]
#
# Without question names: all of them, then the plots. --estimate prints
# the planned runs of every sweep and the estimated time, and runs nothing.
# Re-running skips finished points (results files are appended, never
# rewritten), so an interrupted study continues where it stopped.
#
#   q1  heterogeneity: Dec-SSL (Q1_ALGOS) vs Dec-SL (own head) and Dec-SLRep
#       (probe on its backbone, same runs) over Q1_PARTITIONS, each split
#       drawn PARTITION_SEEDS times (grid key partition_seed, independent
#       of the training seed); rows: centralized SSL and SL (one client,
#       same epochs), the untrained models (--no-train; every record also
#       carries its untrained references).
#   q2  communication: Q2_TOTAL local epochs per client in all, split into
#       rounds x Q2_LOCAL local epochs; one cosine schedule over the total
#       LOCAL epochs (train_cfg.schedule_unit='local_epoch' in the study
#       configs), so every split sees the same learning rate at the same
#       local progress and only communication differs.
#   q3  participation, Q3_CLIENTS clients, Q3_PARTITION: a fraction
#       Q3_PARTICIPATION of them per round, twice:
#         "equal rounds": Q3_ROUNDS rounds for every fraction (less total
#             client work at lower participation);
#         "equal client-epochs": Q3_ROUNDS / fraction rounds (the same
#             client-epochs in all as full participation).
#       Series "<algo> (equal rounds)" / "<algo> (equal client-epochs)".
#   q4  FeatARC (paper mode), FeatARC (our variant) and FedAvg for
#       Q4_ALGOS at Q4_PARTITIONS; extra rows at Q4_EXTRA_PARTITION: FedProx
#       (SimCLR) and FedEMA with its FedAvg twin (BYOL: FedEMA needs a
#       momentum network).
#
# Environment (defaults in brackets):
#   PY                python [.venv/bin/python]
#   OUT               output folder [work_dirs/study]
#   SEEDS             training seeds of every point [0,1,2]
#   PARTITION_SEEDS   partition draws of every split [0]
#   SIZE_OPTIONS      size knobs for every sweep (configs/study/_base_/
#                     study_fmnist.py) [the learning size of docs/results.md:
#                     "study_train_subset=5000 study_local_epochs=5", i.e.
#                     5,000 images, 10 clients, 10 rounds x 5 local epochs,
#                     width 16, bf16]; SIZE_OPTIONS= (empty) gives the
#                     configs' defaults (2,000 images, 10 rounds x 1 local
#                     epoch), a size where trained = untrained
#   Q1_ALGOS          Dec-SSL algorithms (configs/study/<algo>_r18w16_*)
#                     [simclr]; add mocov2, simsiam or byol
#   Q1_PARTITIONS     [iid,skew0,dir0.02]
#   Q2_ALGOS          [simclr]
#   Q2_PARTITION      [dir0.02]
#   Q2_TOTAL          total local epochs per client [50]
#   Q2_LOCAL          local epochs per round [all,10,5,1]: 1, 5, 10 and 50
#                     rounds
#   Q3_ALGOS          [simclr]
#   Q3_CLIENTS        [20]
#   Q3_PARTITION      [dir0.3: the paper's draw (size_range (0.5, 1.5))
#                     over 20 clients finds no split at alpha 0.1 with
#                     2,000 or 5,000 images; 0.3 finds one for partition
#                     seeds 0-2 (docs/results.md)]
#   Q3_PARTICIPATION  fractions of the clients per round [1,0.5,0.1]
#   Q3_ROUNDS         rounds at full participation [10]
#   Q4_ALGOS          [simclr]
#   Q4_PARTITIONS     [dir0.02]
#   Q4_EXTRA_PARTITION  FedProx / FedEMA rows [dir0.02]
#   SEC_PER_EPOCH     seconds of one training pass over 2,000 images, SimCLR
#                     at width 16 (other algorithms and sizes scale from it,
#                     decssl_mm.study.plan.RELATIVE_COST), for the estimate
#                     [48]
#   SEC_PER_RUN       fixed seconds per run (start-up, evaluation with its
#                     two untrained references) [80]
#   SWEEP_ARGS        extra arguments for every sweep, e.g.
#                     "--launcher pytorch --gpus 2" or "--device cuda"
#
# SEC_PER_EPOCH / SEC_PER_RUN come from the calibration runs of
# docs/results.md ("Calibration"), ResNet_CIFAR width 16, 5,000 images, each
# run on one core of this project's 2-core CPU machine beside a second run
# (OMP_NUM_THREADS=1), seconds per pass over 2,000 images of training:
#   centralized SimCLR, 10 passes: 62.7, 49.8, 48.7 (evaluation 66-104 s);
#   Dec-SSL SimCLR IID, 10 rounds x 1 local epoch: 61.5, 47.8, 50.4
#   (68-120 s);  10 rounds x 5 local epochs: 42.9, 42.7 (67-68 s).
# With 48 and 80 the estimate of each of these runs is within 23 % of its
# measured wall time (-23 % to +12 %). An earlier one-round measurement
# (2,000 images, 1 round, load ~4.5) gave 64 s a pass and 55 s per run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY=${PY:-.venv/bin/python}
[[ -x "$PY" ]] || PY=python
OUT=${OUT:-work_dirs/study}
SEEDS=${SEEDS:-0,1,2}
PARTITION_SEEDS=${PARTITION_SEEDS:-0}
SIZE_OPTIONS=${SIZE_OPTIONS-study_train_subset=5000 study_local_epochs=5}
Q1_ALGOS=${Q1_ALGOS:-simclr}
Q1_PARTITIONS=${Q1_PARTITIONS:-iid,skew0,dir0.02}
Q2_ALGOS=${Q2_ALGOS:-simclr}
Q2_PARTITION=${Q2_PARTITION:-dir0.02}
Q2_TOTAL=${Q2_TOTAL:-50}
Q2_LOCAL=${Q2_LOCAL:-all,10,5,1}
Q3_ALGOS=${Q3_ALGOS:-simclr}
Q3_CLIENTS=${Q3_CLIENTS:-20}
Q3_PARTITION=${Q3_PARTITION:-dir0.3}
Q3_PARTICIPATION=${Q3_PARTICIPATION:-1,0.5,0.1}
Q3_ROUNDS=${Q3_ROUNDS:-10}
Q4_ALGOS=${Q4_ALGOS:-simclr}
Q4_PARTITIONS=${Q4_PARTITIONS:-dir0.02}
Q4_EXTRA_PARTITION=${Q4_EXTRA_PARTITION:-dir0.02}
SEC_PER_EPOCH=${SEC_PER_EPOCH:-48}
SEC_PER_RUN=${SEC_PER_RUN:-80}
SWEEP_ARGS=${SWEEP_ARGS:-}
S=configs/study
# shellcheck disable=SC2206
EXTRA=($SWEEP_ARGS)
# shellcheck disable=SC2206
KNOBS=($SIZE_OPTIONS)
SWEEP=("$PY" tools/analysis/sweep.py --seeds "$SEEDS")
[[ ${#KNOBS[@]} -gt 0 ]] && SWEEP+=(--cfg-options "${KNOBS[@]}")

ESTIMATE=0
WANT=()
for a in "$@"; do
    case "$a" in
        --estimate) ESTIMATE=1 ;;
        q1|q2|q3|q4|plots) WANT+=("$a") ;;
        -h|--help) sed -n '2,83p' "$0"; exit 0 ;;
        *) echo "run_study.sh: unknown argument '$a' (q1 q2 q3 q4 plots" \
                "--estimate)" >&2; exit 2 ;;
    esac
done
[[ ${#WANT[@]} -gt 0 ]] || WANT=(q1 q2 q3 q4 plots)

# Display names of the algorithms' study configs
name() {
    case "$1" in
        simclr) echo SimCLR ;; mocov2) echo MoCoV2 ;;
        simsiam) echo SimSiam ;; byol) echo BYOL ;; *) echo "$1" ;;
    esac
}
# --variants arguments "<prefix><Name>=configs/study/<algo>_r18w16_fmnist_
# <kind>.py" for a comma-separated list of algorithms
variants() {
    local prefix=$1 kind=$2 algos=$3 a
    for a in ${algos//,/ }; do
        printf '%s\n' "$prefix$(name "$a")=$S/${a}_r18w16_fmnist_$kind.py"
    done
}
sweep() {  # sweep WORK_SUBDIR ARGS...
    local sub=$1
    shift
    "${SWEEP[@]}" --work-dir "$OUT/$sub" "$@" "${EXTRA[@]}"
}
psplit() { echo "partition_seed=$PARTITION_SEEDS"; }

# Q1: Dec-SSL and Dec-SL over the splits and draws; the centralized rows
# (no client split, so no draws); the untrained floor.
q1a() {
    mapfile -t V < <(variants Dec-SSL/ dec "$Q1_ALGOS")
    sweep q1 --variants "${V[@]}" "Dec-SL=$S/supervised_r18w16_fmnist_dec.py" \
        --grid "partition=$Q1_PARTITIONS" "$(psplit)" "$@"
}
q1b() {
    mapfile -t V < <(variants Central/ central "$Q1_ALGOS")
    sweep q1 --variants "${V[@]}" \
        "Central/SL=$S/supervised_r18w16_fmnist_central.py" "$@"
}
q1c() {
    sweep q1 --no-train \
        --variants "Init/SimCLR=$S/simclr_r18w16_fmnist_dec.py" \
                   "Init/Dec-SL=$S/supervised_r18w16_fmnist_dec.py" "$@"
}
# Q2: fixed total local epochs; rounds = Q2_TOTAL / local epochs.
q2() {
    mapfile -t V < <(variants Dec-SSL/ dec "$Q2_ALGOS")
    sweep q2 --variants "${V[@]}" "Dec-SL=$S/supervised_r18w16_fmnist_dec.py" \
        --cfg-options "partition=$Q2_PARTITION" \
        --grid "local_epochs=$Q2_LOCAL" "$(psplit)" \
        --total-epochs "$Q2_TOTAL" "$@"
}
# Q3: participation at equal rounds and at equal client-epochs.
q3_equal_rounds() {
    mapfile -t V < <(variants Dec-SSL/ dec "$Q3_ALGOS" |
                     sed 's/=/ (equal rounds)=/')
    sweep q3 --variants "${V[@]}" \
        --cfg-options "num_clients=$Q3_CLIENTS" "partition=$Q3_PARTITION" \
        "rounds=$Q3_ROUNDS" \
        --grid "participation=$Q3_PARTICIPATION" "$(psplit)" "$@"
}
q3_equal_work() {
    local zipped="" p r
    for p in ${Q3_PARTICIPATION//,/ }; do
        r=$("$PY" -c "print(round($Q3_ROUNDS / $p))")
        zipped+="${zipped:+,}$p:$r"
    done
    mapfile -t V < <(variants Dec-SSL/ dec "$Q3_ALGOS" |
                     sed 's/=/ (equal client-epochs)=/')
    sweep q3 --variants "${V[@]}" \
        --cfg-options "num_clients=$Q3_CLIENTS" "partition=$Q3_PARTITION" \
        --grid "participation+rounds=$zipped" "$(psplit)" "$@"
}
# Q4: FedAvg vs FeatARC (both modes) per algorithm (sibling configs via
# model=), then the FedProx and FedEMA rows.
q4a() {
    sweep q4 --variants "FedAvg=$S/simclr_r18w16_fmnist_dec.py" \
        "FeatARC-paper=$S/simclr_r18w16_fmnist_featarc.py" \
        "FeatARC-ours=$S/simclr_r18w16_fmnist_featarc_ours.py" \
        --grid "partition=$Q4_PARTITIONS" "model=$Q4_ALGOS" "$(psplit)" "$@"
}
q4b() {
    sweep q4 --variants "FedProx/SimCLR=$S/simclr_r18w16_fmnist_fedprox.py" \
        "FedAvg/BYOL=$S/byol_r18w16_fmnist_dec.py" \
        "FedEMA/BYOL=$S/byol_r18w16_fmnist_fedema.py" \
        --grid "partition=$Q4_EXTRA_PARTITION" "$(psplit)" "$@"
}
plots() {
    local P=(tools/analysis/plot.py --out-dir "$OUT/plots")
    mkdir -p "$OUT/plots"
    local q plot m p
    for q in "1 heterogeneity" "2 communication" "3 participation"; do
        set -- $q
        plot=$2
        [[ -f "$OUT/q$1/results.jsonl" ]] || continue
        for m in linear_top1 knn_top1; do
            "$PY" "${P[@]}" "$OUT/q$1/results.jsonl" --plot "$plot" \
                --metric "$m" --name "q$1_${plot}_$m.png" --table \
                --table-out "$OUT/plots/q$1_$m.md"
        done
    done
    # Q4: one bar chart per split (x: algorithm, bars: aggregation)
    [[ -f "$OUT/q4/results.jsonl" ]] || return 0
    for p in ${Q4_PARTITIONS//,/ }; do
        for m in linear_top1 knn_top1; do
            "$PY" "${P[@]}" "$OUT/q4/results.jsonl" --plot featarc \
                --filter "partition=$p" --metric "$m" \
                --name "q4_featarc_${p}_$m.png" --table \
                --table-out "$OUT/plots/q4_${p}_$m.md"
        done
    done
    return 0
}

steps=()
for q in "${WANT[@]}"; do
    case "$q" in
        q1) steps+=(q1a q1b q1c) ;;
        q2) steps+=(q2) ;;
        q3) steps+=(q3_equal_rounds q3_equal_work) ;;
        q4) steps+=(q4a q4b) ;;
    esac
done

# Estimate: each sweep's dry run gives its runs to do and their work in
# SimCLR-equivalent image-epochs (rounds x local epochs x participation x
# images x relative cost of the algorithm).
total_runs=0
total_img=0
for s in "${steps[@]}"; do
    out=$("$s" --dry-run)
    if [[ $ESTIMATE == 1 ]]; then
        echo "--- $s"
        grep -E '^\[ *[0-9]+/[0-9]+\] (todo|done) ' <<<"$out" || true
    fi
    line=$(grep '^Planned:' <<<"$out")
    echo "$s: $line"
    runs=$(sed -E 's/.* ([0-9]+) to run.*/\1/' <<<"$line")
    img=$(sed -E 's/.*\(([0-9.e+]+) image-epochs.*/\1/' <<<"$line")
    total_runs=$((total_runs + runs))
    total_img=$("$PY" -c "print($total_img + $img)")
done
secs=$("$PY" -c "print(int($total_img / 2000 * $SEC_PER_EPOCH + \
$total_runs * $SEC_PER_RUN))")
printf 'Estimated: %d runs, %.0f SimCLR-equivalent image-epochs, about ' \
    "$total_runs" "$total_img"
printf '%dh%02dm on one core (SEC_PER_EPOCH=%s, SEC_PER_RUN=%s)\n' \
    $((secs / 3600)) $((secs % 3600 / 60)) "$SEC_PER_EPOCH" "$SEC_PER_RUN"
[[ $ESTIMATE == 1 ]] && exit 0

for s in "${steps[@]}"; do
    echo "=== $s"
    "$s"
done
for q in "${WANT[@]}"; do
    [[ $q == plots ]] && plots
done
echo "Done. Results: $OUT/q*/results.jsonl; plots and tables: $OUT/plots"
