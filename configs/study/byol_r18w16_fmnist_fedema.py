# FedEMA at study size: the Dec-SSL BYOL study run (byol_r18w16_fmnist_dec.py)
# with the FedEMA client trainer and aggregation of
# configs/decssl/byol_r18_fmnist_dir0.1_fedema.py (each client keeps its
# online encoder and predictor between its rounds and starts from an EMA of
# its own and the global model; the target encoder stays on the client).
_base_ = ['./byol_r18w16_fmnist_dec.py']
train_cfg = dict(
    aggregator=dict(exclude=[r'^target_net\.']),
    trainer=dict(type='FedEMATrainer', tau=0.7))
