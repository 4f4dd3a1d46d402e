# The ImageNet-stem twin of barlowtwins_r18-cifar.py: mmpretrain ResNet-18 with the
# 7x7 stride-2 stem and max-pool, for images of about 96 px and more
# (COCO crops, aerial tiles). On 32 px images prefer barlowtwins_r18-cifar.py: this
# stem would leave a 1x1 map at stage 4.
_base_ = ['./barlowtwins_r18-cifar.py']
model = dict(backbone=dict(type='ResNet'))
