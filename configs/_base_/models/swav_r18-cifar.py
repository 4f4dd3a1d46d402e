# SwAV with a ResNet-18 backbone: 2 global 32 px crops + 2 small crops. The
# feature queue of SwAV's hook is not used in federated runs (each client's
# batches are few); the prototypes are exchanged like any other layer.
# mmpretrain ResNet_CIFAR: 3x3 stride-1 stem, no max-pool, so a 32 px
# input keeps a 4x4 map at stage 4 (the ImageNet stem would leave 1x1).
num_crops = [2, 2]
model = dict(
    type='SwAV',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=True),
    neck=dict(
        type='SwAVNeck',
        in_channels=512,
        hid_channels=512,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='SwAVHead',
        loss=dict(
            type='SwAVLoss',
            feat_dim=128,
            num_prototypes=100,
            epsilon=0.05,
            temperature=0.1,
            num_crops=num_crops)))
