# FCN R-50-D8 on PASCAL VOC 2012 + SBD (aug), 20k iterations, 512x512, from
# a Dec-SSL (federated) backbone.
#   python tools/train.py configs/downstream/mmseg/fcn_r50-d8-decssl-pre_4xb4-20k_voc12aug-512x512.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
#
# Backbone mapping: mmseg's recipe uses ResNetV1c (deep 3-conv stem, keys
# `stem.*`), while the pretrained backbone is the plain ResNet of
# mmpretrain (7x7 `conv1`/`bn1` stem). mmseg's `ResNet` with the default
# `deep_stem=False` has exactly the extracted keys; dilations, strides and
# contract_dilation (dilated stages 3-4, output stride 8) are kept.
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'
custom_imports = dict(imports=['decssl_mm'], allow_failed_imports=False)

# Output of tools/model_converters/extract_backbone.py (prefixed layout).
pretrained_backbone = 'work_dirs/backbone.pth'
# BN on one device. On several GPUs use SyncBN, as mmseg's recipe does: set
# type='SyncBN' here, or --cfg-options model.backbone.norm_cfg.type=SyncBN
# model.decode_head.norm_cfg.type=SyncBN
# model.auxiliary_head.norm_cfg.type=SyncBN
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    pretrained=None,  # was open-mmlab://resnet50_v1c (a download)
    backbone=dict(
        type='ResNet',
        deep_stem=False,
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint=pretrained_backbone,
            prefix='backbone.')),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
