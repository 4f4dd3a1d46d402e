# Study size of the Dec-SSL MoCo v2 run (configs/decssl/mocov2_r18_fmnist_
# dir0.1.py): ResNet-18 at the study width and 32 px (projector 8w-256-128,
# 128-d keys, the negative-key queue kept on each client), the study's
# pretraining images over its Dirichlet clients, its rounds x local epochs
# (sizes in configs/study/_base_/study_fmnist.py; docs/results.md). Full
# batches only (drop_last, from the twin): the queue needs them.
_base_ = [
    '../decssl/mocov2_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone={{_base_.study_backbone}},
    neck={{_base_.study_mocov2_neck}})
train_dataloader = {{_base_.study_train_dataloader}}
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
optim_wrapper = {{_base_.study_optim_wrapper}}
custom_hooks = {{_base_.study_custom_hooks}}
