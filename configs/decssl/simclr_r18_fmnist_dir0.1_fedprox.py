# FedProx on the Dec-SSL simclr twin (simclr_r18_fmnist_dir0.1.py): the same
# model, data, partition and schedule; each client's local objective adds
# (mu / 2) * ||w - w_global||^2 over the exchanged parameters. mu=0 is FedAvg.
_base_ = ['./simclr_r18_fmnist_dir0.1.py']

train_cfg = dict(trainer=dict(type='FedProxTrainer', mu=0.01))
