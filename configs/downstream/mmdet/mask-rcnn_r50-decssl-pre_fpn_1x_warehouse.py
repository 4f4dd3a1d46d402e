# Mask R-CNN R-50-FPN 1x on a warehouse dataset (COCO format with per-image
# source ids, see docs/downstream.md) from a Dec-SSL backbone.
#   python tools/train.py configs/downstream/mmdet/mask-rcnn_r50-decssl-pre_fpn_1x_warehouse.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
_base_ = './mask-rcnn_r50-decssl-pre_fpn_1x_coco.py'

dataset_type = 'WarehouseDataset'  # registered in mmdet by decssl_mm
data_root = 'data/warehouse/'
# The classes are the json's categories; num_classes must equal their number
# (NumClassCheckHook stops the run with a clear message otherwise).
num_classes = 3
model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=num_classes),
        mask_head=dict(num_classes=num_classes)))

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
custom_hooks = [dict(type='NumClassCheckHook')]
