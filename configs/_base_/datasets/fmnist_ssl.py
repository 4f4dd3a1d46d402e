# Fashion-MNIST (Debian package dataset-fashion-mnist) for self-supervised
# pretraining: 28x28 grey images made 3-channel and cropped/resized to 32 px.
dataset_type = 'FashionMNISTGz'
data_root = '/usr/share/datasets/fashion-mnist'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[72.94, 72.94, 72.94],
    std=[90.02, 90.02, 90.02],
    to_rgb=False)

view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.)),
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
train_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]

num_clients = 10
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ClientPartitionedDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            split='train',
            pipeline=train_pipeline),
        split_key='gt_label',  # labels decide the split only
        partition=dict(
            type='Dirichlet', num_clients=num_clients, alpha=0.1, seed=0)))
