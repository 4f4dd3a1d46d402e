# FeatARC settings of the Fashion-MNIST FeatARC configs (configs/featarc/):
# 2 cluster models, clients assigned by features of the un-augmented "eval
# view" of their samples (grey -> 3 channels, 28 -> 32 px, no random
# transform), the cluster with most samples exported. Only `featarc_` keys,
# so it can sit next to a pretraining config in `_base_`; a leaf assigns
# them:
#   model = dict(_delete_=True, type='FeatARC', algorithm={{_base_.model}},
#                align_weight={{_base_.featarc_align_weight}})
#   train_cfg = {{_base_.featarc_train_cfg}}  (merged into train_cfg)
featarc_eval_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
featarc_align_weight = 1.0  # lambda of the alignment term
featarc_server = dict(
    type='ClusteredServer',
    num_clusters=2,
    eval_pipeline=featarc_eval_pipeline,
    feat_batch_size=256,
    assign_max_samples=None,  # score clusters on every client sample
    export_rule='most_samples',
    # 'paper': independent cluster inits, projector outputs aligned to the
    # cluster model's eval features of un-augmented images (the paper's
    # code); 'ours': shared init, backbone features of augmented views
    # aligned to a frozen cluster backbone (docs/algorithms.md)
    mode='paper')
featarc_train_cfg = dict(server=featarc_server)
