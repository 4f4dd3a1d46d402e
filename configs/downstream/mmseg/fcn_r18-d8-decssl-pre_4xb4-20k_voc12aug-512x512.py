# FCN R-18-D8 on PASCAL VOC 2012 aug from a Dec-SSL ResNet-18 backbone
# (head widths as mmseg's fcn_r18-d8 configs).
_base_ = './fcn_r50-d8-decssl-pre_4xb4-20k_voc12aug-512x512.py'

# Output of tools/model_converters/extract_backbone.py (prefixed layout).
pretrained_backbone = 'work_dirs/backbone_r18.pth'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint=pretrained_backbone)),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
