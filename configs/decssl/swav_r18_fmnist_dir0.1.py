# Dec-SSL: swav (ResNet-18) on Fashion-MNIST split over 10 clients by a
# Dirichlet(0.1) draw over labels; FedAvg, 1 local epoch per round.
_base_ = [
    '../_base_/models/swav_r18-cifar.py',
    '../_base_/datasets/fmnist_ssl.py',
    '../_base_/schedules/sgd.py',
    '../_base_/federated/fedavg.py',
    '../_base_/default_runtime.py',
]

# Multi-crop: two 32 px global views and two 16 px local views.
_color = dict(
    type='RandomApply',
    transforms=[
        dict(
            type='ColorJitter',
            brightness=0.4,
            contrast=0.4,
            saturation=0.4,
            hue=0.1)
    ],
    prob=0.8)
_global_view = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.3, 1.)),
    _color,
    dict(type='RandomFlip', prob=0.5),
]
_local_view = [
    dict(type='RandomResizedCrop', scale=16, crop_ratio_range=(0.1, 0.3)),
    _color,
    dict(type='RandomFlip', prob=0.5),
]
train_dataloader = dict(
    dataset=dict(
        dataset=dict(pipeline=[
            dict(type='GrayToRGB'),
            dict(
                type='MultiView',
                num_views=[2, 2],
                transforms=[_global_view, _local_view]),
            dict(type='PackInputs')
        ])))
