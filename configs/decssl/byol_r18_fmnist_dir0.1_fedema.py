# FedEMA on the Dec-SSL byol twin (byol_r18_fmnist_dir0.1.py): each client
# keeps its own online encoder and predictor between its rounds and starts a
# round from mu * own + (1 - mu) * global, mu = min(lambda * divergence, 1),
# lambda autoscaled to tau at its first measured divergence. The momentum
# (target) encoder stays on the client, as in FedEMA.
_base_ = ['./byol_r18_fmnist_dir0.1.py']

train_cfg = dict(
    aggregator=dict(exclude=[r'^target_net\.']),
    trainer=dict(type='FedEMATrainer', tau=0.7))
