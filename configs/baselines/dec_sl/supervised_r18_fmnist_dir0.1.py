# Dec-SL: supervised FedAvg. The Dec-SSL twin
# (configs/decssl/simclr_r18_fmnist_dir0.1.py; every configs/decssl/*_fmnist_
# dir0.1.py shares its data, partition, optimizer and rounds) with labels
# used: the same ResNet-18 backbone under a linear classifier (mmpretrain
# ImageClassifier + LinearClsHead), one augmented view per sample (the SSL
# crop and flip, without the colour jitter) packed with its gt_label.
# Validation: top-1 of the global model on the test split.
_base_ = ['../../decssl/simclr_r18_fmnist_dir0.1.py']

data_preprocessor = dict(
    _delete_=True,
    type='ClsDataPreprocessor',
    num_classes=10,
    mean=[72.94, 72.94, 72.94],
    std=[90.02, 90.02, 90.02],
    to_rgb=False)
model = dict(
    _delete_=True,
    type='ImageClassifier',
    backbone={{_base_.model.backbone}},
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

sup_train_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
sup_test_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=sup_train_pipeline)))
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='FashionMNISTGz',
        data_root={{_base_.data_root}},
        split='test',
        pipeline=sup_test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
val_cfg = dict()
