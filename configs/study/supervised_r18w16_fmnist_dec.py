# Dec-SL at study size (configs/baselines/dec_sl/supervised_r18_fmnist_
# dir0.1.py): supervised FedAvg of a ResNet-18 x16 + linear classifier on the
# same pretraining images, clients and rounds as the Dec-SSL study runs. The
# sweep reports the accuracy of its own classifier (cls_top1, "Dec-SL") and
# the linear probe on its frozen backbone (linear_top1, "Dec-SLRep").
_base_ = [
    '../baselines/dec_sl/supervised_r18_fmnist_dir0.1.py',
    './_base_/study_fmnist.py',
]
model = dict(
    backbone={{_base_.study_backbone}},
    head=dict(in_channels={{_base_.study_feat_dim}}))
train_dataloader = {{_base_.study_train_dataloader}}
# Validation (own head on the study's test images) after the last round
# only; the sweep evaluates the final checkpoint itself.
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(subset={{_base_.study_test_subset}}))
rounds = {{_base_.study_rounds}}
train_cfg = {{_base_.study_sl_train_cfg}}
param_scheduler = {{_base_.study_param_scheduler}}
default_hooks = {{_base_.study_default_hooks}}
optim_wrapper = {{_base_.study_optim_wrapper}}
custom_hooks = {{_base_.study_custom_hooks}}
