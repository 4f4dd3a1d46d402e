# CIFAR-100 (`cifar-100-python` under data_root; never downloaded) for
# linear evaluation; normalisation as configs/_base_/datasets/cifar100_ssl.py.
_base_ = ['./cifar10_linear.py']
dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
data_preprocessor = dict(
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418])
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
