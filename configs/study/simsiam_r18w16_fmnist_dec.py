# Study size of the Dec-SSL SimSiam run (configs/decssl/simsiam_r18_fmnist_
# dir0.1.py): ResNet-18 x16 at 32 px (projector 128-256-256, predictor
# 256-64-256), 5,000 training images over 10 Dirichlet(0.1) clients,
# 20 rounds x 1 local epoch. See configs/study/_base_/study_fmnist.py.
_base_ = [
    '../decssl/simsiam_r18_fmnist_dir0.1.py',
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
    dataset=dict(
        dataset=dict(subset={{_base_.study_train_subset}}),
        partition=dict(
            num_clients={{_base_.study_num_clients}},
            min_size={{_base_.study_min_client_size}})))
rounds = {{_base_.study_rounds}}
train_cfg = dict(rounds=rounds, local_epochs={{_base_.study_local_epochs}})
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=rounds, by_epoch=True, begin=0,
         end=rounds)
]
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=5, max_keep_ckpts=1))
