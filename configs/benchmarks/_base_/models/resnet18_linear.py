# Linear probe on a frozen ResNet-18 (512-d features), ImageNet stem (images
# of 224 px); 32 px pretraining uses resnet18_cifar_linear.py.
_base_ = ['./resnet50_linear.py']
model = dict(backbone=dict(depth=18), head=dict(in_channels=512))
