# Study size of the Dec-SSL BYOL run (configs/decssl/byol_r18_fmnist_dir0.1.py):
# ResNet-18 at the study width and 32 px (projector 8w-256-128, predictor
# 128-256-128), the study's pretraining images over its Dirichlet clients,
# its rounds x local epochs (configs/study/_base_/study_fmnist.py). The
# FedAvg row beside FedEMA (byol_r18w16_fmnist_fedema.py).
_base_ = [
    '../decssl/byol_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone={{_base_.study_backbone}},
    neck={{_base_.study_byol_neck}},
    head={{_base_.study_byol_head}})
train_dataloader = {{_base_.study_train_dataloader}}
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
optim_wrapper = {{_base_.study_optim_wrapper}}
custom_hooks = {{_base_.study_custom_hooks}}
