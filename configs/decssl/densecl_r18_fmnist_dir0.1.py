# Dec-SSL: densecl (ResNet-18) on Fashion-MNIST split over 10 clients by a
# Dirichlet(0.1) draw over labels; FedAvg, 1 local epoch per round.
_base_ = [
    '../_base_/models/densecl_r18.py',
    '../_base_/datasets/fmnist_ssl.py',
    '../_base_/schedules/sgd.py',
    '../_base_/federated/fedavg.py',
    '../_base_/default_runtime.py',
]

# Dense contrast needs a spatial feature map: 64 px views (2x2 grid).
_view = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.2, 1.)),
    dict(
        type='RandomApply',
        transforms=[
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.4,
                hue=0.1)
        ],
        prob=0.8),
    dict(type='RandomFlip', prob=0.5),
]
# The negative-key queues need full batches (queue_len % batch_size == 0).
train_dataloader = dict(
    drop_last=True,
    dataset=dict(
        dataset=dict(pipeline=[
            dict(type='GrayToRGB'),
            dict(type='MultiView', num_views=2, transforms=[_view]),
            dict(type='PackInputs')
        ])))