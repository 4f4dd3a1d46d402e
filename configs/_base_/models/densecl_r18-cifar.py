# DenseCL with a ResNet-18 backbone for 32 px images. The global and dense
# queues stay on each client. Dense contrast runs on the 4x4 stage-4 map.
# mmpretrain ResNet_CIFAR: 3x3 stride-1 stem, no max-pool, so a 32 px
# input keeps a 4x4 map at stage 4 (the ImageNet stem would leave 1x1).
model = dict(
    type='DenseCL',
    queue_len=4096,
    feat_dim=128,
    momentum=0.01,
    loss_lambda=0.5,
    backbone=dict(
        type='ResNet_CIFAR',
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
