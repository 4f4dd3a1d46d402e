# FeatARC on the Dec-SSL mocov3 twin (configs/decssl/mocov3_r18_fmnist_dir0.1.py):
# the same model, data, partition and schedule; the model is wrapped in
# FeatARC (SSL loss + alignment to the round-start cluster model) and the
# rounds use the ClusteredServer (settings in
# configs/_base_/federated/featarc_fmnist.py). See docs/algorithms.md.
_base_ = [
    '../decssl/mocov3_r18_fmnist_dir0.1.py',
    '../_base_/federated/featarc_fmnist.py',
]

model = dict(
    _delete_=True,
    type='FeatARC',
    algorithm={{_base_.model}},
    align_weight={{_base_.featarc_align_weight}})
train_cfg = {{_base_.featarc_train_cfg}}
