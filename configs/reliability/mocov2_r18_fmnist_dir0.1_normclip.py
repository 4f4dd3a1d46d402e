# MoCo v2 over 10 Dirichlet(0.1) clients with FedAvg on norm-clipped updates
# (no update longer than twice the round's median norm); MoCo's queues stay
# on the clients. See docs/reliability.md.
_base_ = ['../decssl/mocov2_r18_fmnist_dir0.1.py']

train_cfg = dict(
    aggregator=dict(
        type='NormClippedFedAvg', clip_factor=2.0, weighting='samples'),
    client_retries=1)
