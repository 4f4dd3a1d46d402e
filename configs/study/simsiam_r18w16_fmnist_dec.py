# Study size of the Dec-SSL SimSiam run (configs/decssl/simsiam_r18_fmnist_
# dir0.1.py): ResNet-18 x16 at 32 px (projector 128-256-256, predictor
# 256-64-256), the study's pretraining images over 10 Dirichlet(0.1)
# clients, its rounds x local epochs (configs/study/_base_/study_fmnist.py).
_base_ = [
    '../decssl/simsiam_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone={{_base_.study_backbone}},
    neck={{_base_.study_simsiam_neck}},
    head={{_base_.study_simsiam_head}})
train_dataloader = {{_base_.study_train_dataloader}}
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
optim_wrapper = {{_base_.study_optim_wrapper}}
custom_hooks = {{_base_.study_custom_hooks}}
