# Dec-SSL: byol (ResNet-18) on Fashion-MNIST split over 10 clients by a
# Dirichlet(0.1) draw over labels; FedAvg, 1 local epoch per round.
_base_ = [
    '../_base_/models/byol_r18-cifar.py',
    '../_base_/datasets/fmnist_ssl.py',
    '../_base_/schedules/sgd.py',
    '../_base_/federated/fedavg.py',
    '../_base_/default_runtime.py',
]
