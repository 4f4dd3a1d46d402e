# Mask R-CNN with FPN on FMNIST-Det from the study's backbone
# (ResNet_CIFAR-18 at width 16), full fine-tune: every backbone, pretrained
# or not, trains all its layers and its BatchNorm (docs/downstream.md,
# "FMNIST-Det").
#   python tools/train.py configs/downstream/fmnist_det/mask-rcnn_r18w16-cifar_fpn_fmnist-det_ft.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    './_base_/fmnist_det_r18w16.py',
]
custom_imports = dict(imports=['decssl_mm'], allow_failed_imports=False)

# Output of tools/model_converters/extract_backbone.py (prefixed layout).
pretrained_backbone = 'work_dirs/backbone_r18w16.pth'

model = dict(
    data_preprocessor={{_base_.fdet_data_preprocessor}},
    # Full fine-tune: every backbone trains all its layers and its BatchNorm
    # (batch statistics, running statistics and affine parameters).
    backbone=dict(
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
            checkpoint=pretrained_backbone,
            prefix='backbone.')),
    neck={{_base_.fdet_neck}},
    rpn_head={{_base_.fdet_rpn_head}},
    roi_head=dict(
        bbox_roi_extractor={{_base_.fdet_roi_extractor}},
        bbox_head={{_base_.fdet_bbox_head}},
        mask_roi_extractor={{_base_.fdet_roi_extractor}},
        mask_head={{_base_.fdet_mask_head}}),
    train_cfg={{_base_.fdet_train_cfg}},
    test_cfg={{_base_.fdet_test_cfg}})

train_dataloader = {{_base_.fdet_ins_train_dataloader}}
val_dataloader = {{_base_.fdet_ins_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.fdet_ins_evaluator}}
test_evaluator = val_evaluator
train_cfg = {{_base_.fdet_train_loop}}
param_scheduler = {{_base_.fdet_param_scheduler}}
optim_wrapper = {{_base_.fdet_optim_wrapper}}
default_hooks = {{_base_.fdet_default_hooks}}
log_processor = {{_base_.fdet_log_processor}}
custom_hooks = [dict(type='NumClassCheckHook')]
