# Linear probe: a frozen ResNet-50 (all four stages frozen, BN statistics
# kept) under a linear classifier on the global-average-pooled features.
# The backbone comes from `tools/model_converters/extract_backbone.py`
# (prefixed layout); leaf configs set `init_cfg.checkpoint`.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        frozen_stages=4,
        norm_cfg=dict(type='BN'),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=None,
                      prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
