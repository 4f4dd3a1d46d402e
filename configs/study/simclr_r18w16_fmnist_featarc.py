# FeatARC at study size: the FeatARC simclr run (configs/featarc/simclr_r18_
# fmnist_dir0.1.py: 2 cluster models, feature-based assignment, alignment
# to the round-start cluster model) shrunk exactly like its FedAvg twin
# simclr_r18w16_fmnist_dec.py (same model, data, clients and rounds).
_base_ = [
    '../featarc/simclr_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    algorithm=dict(
        backbone={{_base_.study_backbone}},
        neck=dict(in_channels={{_base_.study_feat_dim}}, hid_channels=256)))
train_dataloader = {{_base_.study_train_dataloader}}
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
