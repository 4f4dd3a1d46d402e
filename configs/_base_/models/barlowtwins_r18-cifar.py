# Barlow Twins with a ResNet-18 backbone for 32 px images.
# mmpretrain ResNet_CIFAR: 3x3 stride-1 stem, no max-pool, so a 32 px
# input keeps a 4x4 map at stage 4 (the ImageNet stem would leave 1x1).
model = dict(
    type='BarlowTwins',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=True),
    neck=dict(
        type='NonLinearNeck',
        in_channels=512,
        hid_channels=1024,
        out_channels=1024,
        num_layers=3,
        with_last_bn=False,
        with_last_bn_affine=False,
        with_avg_pool=True,
        init_cfg=dict(
            type='Kaiming', distribution='uniform', layer=['Linear'])),
    head=dict(
        type='LatentCrossCorrelationHead',
        in_channels=1024,
        loss=dict(type='CrossCorrelationLoss')))
