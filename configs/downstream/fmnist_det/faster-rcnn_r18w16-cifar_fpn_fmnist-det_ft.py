# Faster R-CNN with FPN on FMNIST-Det from the study's backbone
# (ResNet_CIFAR-18 at width 16), full fine-tune: every backbone, pretrained
# or not, trains all its layers and its BatchNorm (docs/downstream.md,
# "FMNIST-Det").
#   python tools/train.py configs/downstream/fmnist_det/faster-rcnn_r18w16-cifar_fpn_fmnist-det_ft.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    './_base_/fmnist_det_r18w16.py',
]
custom_imports = dict(imports=['decssl_mm'], allow_failed_imports=False)

model = dict(
    data_preprocessor={{_base_.fdet_data_preprocessor}},
    backbone={{_base_.fdet_backbone}},
    neck={{_base_.fdet_neck}},
    rpn_head={{_base_.fdet_rpn_head}},
    roi_head=dict(
        bbox_roi_extractor={{_base_.fdet_roi_extractor}},
        bbox_head={{_base_.fdet_bbox_head}}),
    train_cfg={{_base_.fdet_train_cfg}},
    test_cfg={{_base_.fdet_test_cfg}})

train_dataloader = {{_base_.fdet_det_train_dataloader}}
val_dataloader = {{_base_.fdet_det_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.fdet_det_evaluator}}
test_evaluator = val_evaluator
train_cfg = {{_base_.fdet_train_loop}}
param_scheduler = {{_base_.fdet_param_scheduler}}
optim_wrapper = {{_base_.fdet_optim_wrapper}}
default_hooks = {{_base_.fdet_default_hooks}}
log_processor = {{_base_.fdet_log_processor}}
custom_hooks = [dict(type='NumClassCheckHook')]
