# Linear evaluation of a Dec-SSL ResNet-50 backbone on CIFAR-10.
#   python tools/train.py configs/benchmarks/linear/resnet50_linear-100e_cifar10.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
# Reported figure: top-1 of the last epoch on the test split (no best-epoch
# selection).
# The backbone keeps the ImageNet stem of the ResNet-50 pretraining
# (configs/decssl/mocov2_r50_coco_noniid.py); 32 px ResNet-18 backbones
# use the resnet18 configs (ResNet_CIFAR).
_base_ = [
    '../_base_/models/resnet50_linear.py',
    '../_base_/datasets/cifar10_linear.py',
    '../_base_/schedules/linear_sgd_100e.py',
    '../_base_/default_runtime.py',
]
# Output of tools/model_converters/extract_backbone.py (prefixed layout).
pretrained_backbone = 'work_dirs/backbone.pth'
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=pretrained_backbone)),
    head=dict(num_classes=10))
