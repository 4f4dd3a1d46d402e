# Centralized SSL at study size: the Dec-SSL SimCLR study run
# (simclr_r18w16_fmnist_dec.py) with ONE client holding all pretraining
# images (configs/baselines/centralized_ssl/simclr_r18_fmnist_central.py):
# same model, data and number of epochs (rounds x local epochs).
_base_ = [
    '../baselines/centralized_ssl/simclr_r18_fmnist_central.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone={{_base_.study_backbone}},
    neck={{_base_.study_simclr_neck}})
train_dataloader = {{_base_.study_central_train_dataloader}}
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
optim_wrapper = {{_base_.study_optim_wrapper}}
custom_hooks = {{_base_.study_custom_hooks}}
