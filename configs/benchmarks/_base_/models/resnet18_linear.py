# Linear probe on a frozen ResNet-18 (512-d features).
_base_ = ['./resnet50_linear.py']
model = dict(backbone=dict(depth=18), head=dict(in_channels=512))
