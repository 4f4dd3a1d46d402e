# FeatARC on the Dec-SSL byol twin (configs/decssl/byol_r18_fmnist_dir0.1.py):
# the same model, data, partition and schedule; the model is wrapped in
# FeatARC (SSL loss + alignment to the round-start cluster model) and the
# rounds run FeatARCTrainLoop (2 cluster models, feature-based assignment,
# cluster-wise FedAvg). See docs/algorithms.md.
_base_ = [
    '../decssl/byol_r18_fmnist_dir0.1.py',
    '../_base_/datasets/fmnist_eval_view.py',
]

model = dict(
    _delete_=True,
    type='FeatARC',
    algorithm={{_base_.model}},
    align_weight=1.0)  # lambda of the alignment term

train_cfg = dict(
    type='FeatARCTrainLoop',
    num_clusters=2,
    eval_pipeline={{_base_.featarc_eval_pipeline}},
    feat_batch_size=256,
    assign_max_samples=None,  # score clusters on every client sample
    export_rule='most_samples')
