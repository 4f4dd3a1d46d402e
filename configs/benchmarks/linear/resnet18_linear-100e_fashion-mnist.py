# Linear evaluation of a Dec-SSL ResNet-18 backbone on Fashion-MNIST.
#   python tools/train.py configs/benchmarks/linear/resnet18_linear-100e_fashion-mnist.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=BACKBONE.pth
# Reported figure: top-1 of the last epoch on the test split (no best-epoch
# selection).
_base_ = [
    '../_base_/models/resnet18_cifar_linear.py',
    '../_base_/datasets/fashion_mnist_linear.py',
    '../_base_/schedules/linear_sgd_100e.py',
    '../_base_/default_runtime.py',
]
# Output of tools/model_converters/extract_backbone.py (prefixed layout).
pretrained_backbone = 'work_dirs/backbone.pth'
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=pretrained_backbone)),
    head=dict(num_classes=10))
