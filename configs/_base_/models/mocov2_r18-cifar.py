# MoCo v2 with a ResNet-18 backbone for 32 px images. The negative-key queue
# stays on each client (see docs/federated.md).
# mmpretrain ResNet_CIFAR: 3x3 stride-1 stem, no max-pool, so a 32 px
# input keeps a 4x4 map at stage 4 (the ImageNet stem would leave 1x1).
model = dict(
    type='MoCo',
    queue_len=4096,
    feat_dim=128,
    momentum=0.01,
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=512,
        hid_channels=512,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))
