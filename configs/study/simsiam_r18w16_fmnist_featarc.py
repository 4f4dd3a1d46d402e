# FeatARC at study size, as the paper ran it (ClusteredServer mode='paper',
# the default of configs/_base_/federated/featarc_fmnist.py): the FeatARC
# simsiam run (configs/featarc/simsiam_r18_fmnist_dir0.1.py: 2 cluster models,
# feature-based assignment, alignment to the cluster model) shrunk exactly
# like its FedAvg twin simsiam_r18w16_fmnist_dec.py (same model, data,
# clients and rounds). Our variant: simsiam_r18w16_fmnist_featarc_ours.py.
_base_ = [
    '../featarc/simsiam_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    algorithm=dict(
        backbone={{_base_.study_backbone}},
        neck={{_base_.study_simsiam_neck}},
        head={{_base_.study_simsiam_head}}))
train_dataloader = {{_base_.study_train_dataloader}}
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
optim_wrapper = {{_base_.study_optim_wrapper}}
custom_hooks = {{_base_.study_custom_hooks}}
