# Linear probe on a frozen ResNet-18 pretrained on 32 px images (CIFAR,
# Fashion-MNIST): mmpretrain ResNet_CIFAR (3x3 stride-1 stem, no max-pool),
# the backbone of the 32 px pretraining configs (configs/_base_/models/
# *_r18-cifar.py).
_base_ = ['./resnet18_linear.py']
model = dict(backbone=dict(type='ResNet_CIFAR'))
