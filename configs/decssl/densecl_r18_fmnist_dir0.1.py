# Dec-SSL: densecl (ResNet-18) on Fashion-MNIST split over 10 clients by a
# Dirichlet(0.1) draw over labels; FedAvg, 1 local epoch per round. The 32 px
# views of the dataset base keep a 4x4 stage-4 map (ResNet_CIFAR backbone),
# the grid of the dense contrast.
_base_ = [
    '../_base_/models/densecl_r18-cifar.py',
    '../_base_/datasets/fmnist_ssl.py',
    '../_base_/schedules/sgd.py',
    '../_base_/federated/fedavg.py',
    '../_base_/default_runtime.py',
]

# The negative-key queues need full batches (queue_len % batch_size == 0).
train_dataloader = dict(drop_last=True)
