# CIFAR-100 (`cifar-100-python`) for self-supervised pretraining at 32 px.
_base_ = ['./cifar10_ssl.py']
dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
data_preprocessor = dict(
    mean=[129.304, 124.070, 112.434], std=[68.170, 65.392, 70.418])
train_dataloader = dict(
    dataset=dict(
        dataset=dict(type=dataset_type, data_root=data_root),
        partition=dict(type='Dirichlet', num_clients=10, alpha=0.1, seed=0)))
