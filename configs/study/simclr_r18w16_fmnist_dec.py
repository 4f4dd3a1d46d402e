# Study size of the Dec-SSL SimCLR run (configs/decssl/simclr_r18_fmnist_
# dir0.1.py): ResNet-18 x16 at 32 px, the study's pretraining images over 10
# Dirichlet(0.1) clients, its rounds x local epochs (sizes in
# configs/study/_base_/study_fmnist.py; docs/results.md).
_base_ = [
    '../decssl/simclr_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone={{_base_.study_backbone}},
    neck={{_base_.study_simclr_neck}})
train_dataloader = {{_base_.study_train_dataloader}}
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
optim_wrapper = {{_base_.study_optim_wrapper}}
custom_hooks = {{_base_.study_custom_hooks}}
