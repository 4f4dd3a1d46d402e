# FedProx at study size: the Dec-SSL SimCLR study run
# (simclr_r18w16_fmnist_dec.py) with the proximal local objective of
# configs/decssl/simclr_r18_fmnist_dir0.1_fedprox.py ((mu / 2) ||w -
# w_global||^2 over the exchanged parameters, mu = 0.01).
_base_ = ['./simclr_r18w16_fmnist_dec.py']
train_cfg = dict(trainer=dict(type='FedProxTrainer', mu=0.01))
