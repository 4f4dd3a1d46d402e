# Faster R-CNN R-18-FPN 1x on COCO 2017 from a Dec-SSL ResNet-18 backbone.
_base_ = './faster-rcnn_r50-decssl-pre_fpn_1x_coco.py'

# Output of tools/model_converters/extract_backbone.py (prefixed layout).
pretrained_backbone = 'work_dirs/backbone_r18.pth'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint=pretrained_backbone)),
    neck=dict(in_channels=[64, 128, 256, 512]))
