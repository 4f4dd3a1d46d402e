# Centralized SSL at study size: the Dec-SSL SimSiam study run
# (simsiam_r18w16_fmnist_dec.py) with ONE client holding all 5,000 training
# images (configs/baselines/centralized_ssl/simsiam_r18_fmnist_central.py).
_base_ = [
    '../baselines/centralized_ssl/simsiam_r18_fmnist_central.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone=dict(
        base_channels={{_base_.study_width}},
        stem_channels={{_base_.study_width}}),
    neck=dict(
        in_channels={{_base_.study_feat_dim}},
        hid_channels=256,
        out_channels=256),
    head=dict(
        predictor=dict(in_channels=256, hid_channels=64, out_channels=256)))
train_dataloader = dict(
    batch_size={{_base_.study_batch_size}},
    num_workers={{_base_.study_num_workers}},
    dataset=dict(dataset=dict(subset={{_base_.study_train_subset}})))
rounds = {{_base_.study_rounds}}
train_cfg = dict(rounds=rounds, local_epochs={{_base_.study_local_epochs}})
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=rounds, by_epoch=True, begin=0,
         end=rounds)
]
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=5, max_keep_ckpts=1))
