# BYOL with a ResNet-18 backbone for 32 px images.
# mmpretrain ResNet_CIFAR: 3x3 stride-1 stem, no max-pool, so a 32 px
# input keeps a 4x4 map at stage 4 (the ImageNet stem would leave 1x1).
model = dict(
    type='BYOL',
    base_momentum=0.01,
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='NonLinearNeck',
        in_channels=512,
        hid_channels=1024,
        out_channels=128,
        num_layers=2,
        with_bias=True,
        with_last_bn=False,
        with_avg_pool=True),
    head=dict(
        type='LatentPredictHead',
        predictor=dict(
            type='NonLinearNeck',
            in_channels=128,
            hid_channels=1024,
            out_channels=128,
            num_layers=2,
            with_bias=True,
            with_last_bn=False,
            with_avg_pool=False),
        loss=dict(type='CosineSimilarityLoss')))
