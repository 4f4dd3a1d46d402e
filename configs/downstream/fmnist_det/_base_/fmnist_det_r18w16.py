# FMNIST-Det with the study's backbone: what the four detector configs of
# configs/downstream/fmnist_det/ share (docs/downstream.md, "FMNIST-Det").
# Only new top-level keys (fdet_*), so this file can sit next to mmdet's
# packaged configs in `_base_`; each detector config assigns them.
#
# - the study's backbone: mmpretrain ResNet_CIFAR-18 at width 16 (3x3
#   stride-1 stem, no max-pool; stages of 16/32/64/128 channels at strides
#   1/2/4/8), the stem of configs/study/;
# - FPN on stages 2-4 (strides 2, 4, 8) plus one max-pooled level
#   (stride 16), 64 channels; anchors of 12-96 px (scale 6): the items are
#   10-48 px boxes on 96 px canvases;
# - heads narrowed for 2 CPU cores (RPN/RoI 64 channels, 256-d box FCs,
#   128 RoIs per image; the mask head's convolutions 64 channels);
# - the pretraining normalisation (Fashion-MNIST mean/std of
#   configs/_base_/datasets/fmnist_ssl.py) on every channel;
# - native canvases (no rescaling), horizontal flips, batch 8, SGD with
#   linear warm-up and a step at 3/4 of a fixed iteration budget
#   (`fdet_max_iters`: 400 iterations of 8 canvases, 1.6 passes over the
#   2,000 training canvases), one evaluation at the end;
# - 300 proposals per image and at most 20 detections per image (a
#   canvas holds at most 4 items).

# written by tools/dataset_converters/make_fmnist_det.py
fdet_data_root = 'data/fmnist_det/'
fdet_num_classes = 10
fdet_size = 96
# Fixed iteration budget of one fine-tune (docs/downstream.md, "Cost").
fdet_max_iters = 400
fdet_warmup_iters = 50
fdet_batch_size = 8
fdet_lr = 0.02

fdet_data_preprocessor = dict(
    mean=[72.94, 72.94, 72.94],
    std=[90.02, 90.02, 90.02],
    bgr_to_rgb=True,
    pad_size_divisor=32)
# The study's backbone, full fine-tune: every backbone trains all its layers
# and its BatchNorm (batch statistics, running statistics and affine
# parameters); the file is an output of
# tools/model_converters/extract_backbone.py (prefixed layout), set with
# `--cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth`.
fdet_pretrained_backbone = 'work_dirs/backbone_r18w16.pth'
fdet_backbone = dict(
    type='mmpretrain.ResNet_CIFAR',
    depth=18,
    stem_channels=16,
    base_channels=16,
    num_stages=4,
    out_indices=(1, 2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=dict(
        type='Pretrained',
        checkpoint=fdet_pretrained_backbone,
        prefix='backbone.'))
fdet_neck = dict(in_channels=[32, 64, 128], out_channels=64, num_outs=4)
fdet_rpn_head = dict(
    in_channels=64,
    feat_channels=64,
    anchor_generator=dict(scales=[6], strides=[2, 4, 8, 16]))
fdet_roi_extractor = dict(out_channels=64, featmap_strides=[2, 4, 8])
fdet_bbox_head = dict(
    in_channels=64, fc_out_channels=256, num_classes=fdet_num_classes)
fdet_mask_head = dict(
    in_channels=64, conv_out_channels=64, num_classes=fdet_num_classes)
fdet_train_cfg = dict(
    rpn_proposal=dict(nms_pre=500, max_per_img=300),
    rcnn=dict(sampler=dict(num=128)))
# at most 4 items a canvas: 20 detections per image are plenty
fdet_test_cfg = dict(
    rpn=dict(nms_pre=300, max_per_img=300), rcnn=dict(max_per_img=20))


def _pipelines(with_mask):
    train = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
        dict(type='Resize', scale=(fdet_size, fdet_size), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')
    ]
    test = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(fdet_size, fdet_size), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor'))
    ]
    return train, test


def _loaders(with_mask):
    train_pipeline, test_pipeline = _pipelines(with_mask)
    common = dict(
        type='WarehouseDataset',  # registered in mmdet by decssl_mm
        data_root=fdet_data_root,
        data_prefix=dict(img='images/'))
    train = dict(
        batch_size=fdet_batch_size,
        num_workers=1,
        persistent_workers=True,
        dataset=dict(
            common,
            ann_file='annotations/train.json',
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline))
    val = dict(
        batch_size=8,
        num_workers=1,
        persistent_workers=True,
        dataset=dict(
            common,
            ann_file='annotations/val.json',
            test_mode=True,
            pipeline=test_pipeline))
    return train, val


fdet_det_train_dataloader, fdet_det_val_dataloader = _loaders(False)
fdet_ins_train_dataloader, fdet_ins_val_dataloader = _loaders(True)
del _pipelines, _loaders
fdet_det_evaluator = dict(
    type='CocoMetric',
    ann_file=fdet_data_root + 'annotations/val.json',
    metric='bbox')
fdet_ins_evaluator = dict(fdet_det_evaluator, metric=['bbox', 'segm'])

fdet_train_loop = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=fdet_max_iters,
    val_interval=fdet_max_iters)
fdet_param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=False,
        begin=0,
        end=fdet_warmup_iters),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=fdet_max_iters,
        milestones=[fdet_max_iters * 3 // 4],
        gamma=0.1)
]
fdet_optim_wrapper = dict(
    optimizer=dict(lr=fdet_lr), clip_grad=dict(max_norm=35, norm_type=2))
fdet_default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=fdet_max_iters,
                    max_keep_ckpts=1))
fdet_log_processor = dict(by_epoch=False)
