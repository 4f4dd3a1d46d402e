# Faster R-CNN R-50-FPN 1x on COCO 2017 from a Dec-SSL (federated) backbone.
# Only the backbone initialisation and its normalisation differ from mmdet's
# config; everything else (data, schedule, heads) is mmdet's own.
#   python tools/train.py configs/downstream/mmdet/faster-rcnn_r50-decssl-pre_fpn_1x_coco.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['decssl_mm'], allow_failed_imports=False)

# Output of tools/model_converters/extract_backbone.py (prefixed layout).
pretrained_backbone = 'work_dirs/backbone.pth'
# BN on one device (statistics frozen, as in mmdet's 1x recipe). On several
# GPUs fine-tune with SyncBN as mmdet's selfsup_pretrain configs do:
#   --cfg-options model.backbone.norm_cfg.type=SyncBN \
#       model.backbone.norm_eval=False model.backbone.frozen_stages=0
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    backbone=dict(
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint=pretrained_backbone,
            prefix='backbone.')))
