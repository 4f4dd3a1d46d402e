# Dec-SL at study size (configs/baselines/dec_sl/supervised_r18_fmnist_
# dir0.1.py): supervised FedAvg of a ResNet-18 x16 + linear classifier on the
# same 5,000 images, clients and rounds as the Dec-SSL study runs. The sweep
# reports the accuracy of its own classifier (cls_top1, "Dec-SL") and the
# linear probe on its frozen backbone (linear_top1, "Dec-SLRep").
_base_ = [
    '../baselines/dec_sl/supervised_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone=dict(
        base_channels={{_base_.study_width}},
        stem_channels={{_base_.study_width}}),
    head=dict(in_channels={{_base_.study_feat_dim}}))
train_dataloader = dict(
    batch_size={{_base_.study_batch_size}},
    num_workers={{_base_.study_num_workers}},
    dataset=dict(
        dataset=dict(subset={{_base_.study_train_subset}}),
        partition=dict(
            num_clients={{_base_.study_num_clients}},
            min_size={{_base_.study_min_client_size}})))
# Validation (own head on the study's test images) after the last round
# only; the sweep evaluates the final checkpoint itself.
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(subset={{_base_.study_test_subset}}))
rounds = {{_base_.study_rounds}}
train_cfg = dict(
    rounds=rounds,
    local_epochs={{_base_.study_local_epochs}},
    val_interval=10000)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=rounds, by_epoch=True, begin=0,
         end=rounds)
]
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=5, max_keep_ckpts=1))
