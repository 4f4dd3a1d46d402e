# Sizes shared by the study configs (configs/study/*.py). The defaults
# (2,000 images, 10 rounds x 1 local epoch, width 16) made one run take 1-2
# minutes on 2 free CPU cores with the ImageNet-stem ResNet
# (docs/results.md); the ResNet_CIFAR backbone costs about 6x per training
# image at width 16 (docs/algorithms.md):
#   - ResNet-18 (ResNet_CIFAR: 3x3 stride-1 stem, no max-pool) with
#     `study_width` base channels (8 x width features) at 32 px;
#   - the first `study_train_subset` Fashion-MNIST training images, split
#     among `study_num_clients` clients, batch `study_batch_size`;
#   - `study_rounds` rounds of `study_local_epochs` local epoch(s), every
#     client every round;
#   - one cosine learning-rate schedule over the run's total LOCAL epochs
#     (rounds x local epochs, `train_cfg.schedule_unit='local_epoch'`): the
#     same rate at the same fraction of local progress whatever the split
#     into rounds and local epochs (Q2);
#   - evaluation (tools/analysis/sweep.py): frozen, un-augmented features of
#     the first `study_eval_train_subset` training images (kNN bank and
#     linear-probe training set: the pretraining images, whose labels
#     pretraining never sees) and of the first `study_test_subset` test
#     images (kNN queries, probe test set).
#
# Size knobs. Every size below that reads `{{'$STUDY_...:default'}}` is set
# HERE ONLY; the rest of the study configs derive from it. Change one
#   - in a sweep: `--cfg-options study_width=32` or a grid axis
#     `--grid study_train_subset=2000,5000` (tools/analysis/sweep.py loads
#     the configs with the value in place, and records it as an override);
#   - for a single run: `STUDY_WIDTH=32 python tools/train.py CONFIG`.
# (The sweep refuses STUDY_* variables set in its own environment: a run's
# size must be in its record.)
# Only new top-level keys (study_*, knn_*), so this file can sit next to any
# pretraining config in `_base_`.
study_data_root = '/usr/share/datasets/fashion-mnist'
# ResNet base (and stem) channels; features = 8 x width
study_width = {{'$STUDY_WIDTH:16'}}
study_feat_dim = 8 * study_width
study_train_subset = {{'$STUDY_TRAIN_SUBSET:2000'}}
study_eval_train_subset = {{'$STUDY_EVAL_TRAIN_SUBSET:5000'}}
study_test_subset = {{'$STUDY_TEST_SUBSET:2000'}}
study_num_clients = {{'$STUDY_NUM_CLIENTS:10'}}
# Dirichlet splits use the paper's draw: classes dealt in label order, a
# client closed once it holds N/K images, the whole split redrawn (up to
# 1000 times, then an error) until every client holds between 0.5 N/K and
# 1.5 N/K images (docs/partitions.md). With 10 classes of about 200 images,
# one draw is within bounds with probability 88 % (alpha 1), 4 % (0.1) and
# 0.45 % (0.02) over 10 clients, so 1000 tries suffice; over 20 clients (at
# most 150 images a client) 68 % at alpha 1, 16 % at 0.5 and none at 0.1,
# which raises an error (benchmarks/bench_paper_draw.py). So Q3 (20 clients)
# uses Dirichlet(0.3): on the real labels of the first 2,000 and of the
# first 5,000 images, partition seeds 0, 1 and 2 all give a split within
# the bounds (0.2 too; 0.1 and 0.02 none) (docs/results.md, "The rerun,
# prepared"; tests/study/test_study_configs.py).
study_size_range = (0.5, 1.5)
# and never fewer than this many images (a client of 1 image cannot train
# BatchNorm layers); below 0.5 N/K for the study's sizes.
study_min_client_size = 16
study_rounds = {{'$STUDY_ROUNDS:10'}}
study_local_epochs = {{'$STUDY_LOCAL_EPOCHS:1'}}
study_total_local_epochs = study_rounds * study_local_epochs
study_batch_size = {{'$STUDY_BATCH_SIZE:64'}}
study_num_workers = 1
# Precision of the local steps: 'bf16' (autocast in bfloat16 and
# channels-last tensors, AutocastOptimWrapper + ChannelsLastHook; weights,
# exchanged states and aggregation stay float32), 'fp32', or 'auto' (the
# default: bf16 where the device computes it natively, else fp32). On a CPU
# with avx512_bf16 bf16 halves a study run's time with margins over the
# untrained references within seed noise; on an AVX2-only CPU bf16 is
# emulated and a round ran at 0.15x the fp32 rate (docs/results.md, "Speed
# of a study run"). Records carry the precision the run resolved to.
study_precision = '{{$STUDY_PRECISION:auto}}'
if study_precision not in ('auto', 'bf16', 'fp32'):
    raise ValueError("`study_precision` must be 'auto', 'bf16' or 'fp32', "
                     f'got {study_precision!r}')
study_optim_wrapper = dict(type='OptimWrapper')
study_custom_hooks = []
if study_precision == 'bf16':
    study_optim_wrapper = dict(
        type='AutocastOptimWrapper', dtype='bfloat16')
    study_custom_hooks = [dict(type='ChannelsLastHook')]
elif study_precision == 'auto':
    study_optim_wrapper = dict(type='AutocastOptimWrapper', dtype='auto')
    study_custom_hooks = [dict(type='ChannelsLastHook',
                               only_native_bf16=True)]

# The blocks every study config merges into its twin's keys
# (`train_dataloader = {{_base_.study_train_dataloader}}`, ...): mmengine
# refuses one key in two `_base_` files, so the sizes travel under study_*
# names and each leaf config assigns them.
study_backbone = dict(base_channels=study_width, stem_channels=study_width)
study_train_dataloader = dict(
    batch_size=study_batch_size,
    num_workers=study_num_workers,
    dataset=dict(
        dataset=dict(subset=study_train_subset),
        partition=dict(
            num_clients=study_num_clients,
            min_size=study_min_client_size,
            size_range=study_size_range)))
# one client holding every image (centralized baselines): no client split
study_central_train_dataloader = dict(
    batch_size=study_batch_size,
    num_workers=study_num_workers,
    dataset=dict(dataset=dict(subset=study_train_subset)))
# Clients are averaged uniformly, as the paper's FedAvg does (client sizes
# differ up to 3x under `study_size_range`; 'samples' weights by size).
study_train_cfg = dict(
    rounds=study_rounds,
    local_epochs=study_local_epochs,
    schedule_unit='local_epoch',
    aggregator=dict(weighting='uniform'))
# classifiers validate their own head once, after the last round
study_sl_train_cfg = dict(study_train_cfg, val_interval=10000)
# one scheduler epoch = one local epoch (schedule_unit above)
study_param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=study_total_local_epochs,
         by_epoch=True, begin=0, end=study_total_local_epochs)
]
study_default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=5, max_keep_ckpts=1))
# SimSiam heads at width 16: projector 128-256-256, predictor 256-64-256
study_simsiam_neck = dict(
    in_channels=study_feat_dim, hid_channels=256, out_channels=256)
study_simsiam_head = dict(
    predictor=dict(in_channels=256, hid_channels=64, out_channels=256))
# SimCLR projector 8w-256-128; MoCo v2 the same
study_simclr_neck = dict(in_channels=study_feat_dim, hid_channels=256)
study_mocov2_neck = dict(in_channels=study_feat_dim, hid_channels=256)
# BYOL at study size: projector 8w-256-128, predictor 128-256-128
study_byol_neck = dict(in_channels=study_feat_dim, hid_channels=256)
study_byol_head = dict(predictor=dict(hid_channels=256))

# Labelled, un-augmented loaders of the evaluation (kNN bank / probe train
# set = the pretraining images; queries / probe test set = test images).
knn_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
knn_train_dataloader = dict(
    batch_size=500,
    num_workers=0,
    dataset=dict(
        type='FashionMNISTGz',
        data_root=study_data_root,
        split='train',
        subset=study_eval_train_subset,
        pipeline=knn_pipeline))
knn_val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    dataset=dict(
        type='FashionMNISTGz',
        data_root=study_data_root,
        split='test',
        subset=study_test_subset,
        pipeline=knn_pipeline))
