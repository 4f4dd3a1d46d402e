# DenseCL with a ResNet-18 backbone. The global and dense queues stay on each
# client. Dense contrast needs spatial features: use inputs >= 64 px.
model = dict(
    type='DenseCL',
    queue_len=4096,
    feat_dim=128,
    momentum=0.01,
    loss_lambda=0.5,
    backbone=dict(
        type='ResNet',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='DenseCLNeck',
        in_channels=512,
        hid_channels=512,
        out_channels=128,
        num_grid=None),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))
