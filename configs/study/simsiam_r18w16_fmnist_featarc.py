# FeatARC at study size: the FeatARC simsiam run (configs/featarc/simsiam_r18_
# fmnist_dir0.1.py: 2 cluster models, feature-based assignment, alignment
# to the round-start cluster model) shrunk exactly like its FedAvg twin
# simsiam_r18w16_fmnist_dec.py (same model, data, clients and rounds).
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
