# Centralized supervised learning at study size: the Dec-SL study run
# (supervised_r18w16_fmnist_dec.py) with ONE client holding all pretraining
# images and keeping its optimizer state between rounds, i.e. plain
# supervised training for the same number of epochs. The reference that
# separates "the head is undertrained by this schedule" from "FedAvg hurts
# the head" in docs/results.md (Q1).
_base_ = ['./supervised_r18w16_fmnist_dec.py']
train_dataloader = dict(
    dataset=dict(
        partition=dict(_delete_=True, type='IID', num_clients=1, seed=0)))
train_cfg = dict(optimizer_policy='keep')
