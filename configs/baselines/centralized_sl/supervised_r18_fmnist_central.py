# Centralized SL: Dec-SL (../dec_sl/supervised_r18_fmnist_dir0.1.py) with ONE
# client holding the whole training set and keeping its optimizer state
# between rounds, i.e. plain supervised training for the same number of
# epochs (rounds x local epochs), run by the same engine.
_base_ = ['../dec_sl/supervised_r18_fmnist_dir0.1.py']
train_dataloader = dict(
    dataset=dict(
        partition=dict(_delete_=True, type='IID', num_clients=1, seed=0)))
train_cfg = dict(optimizer_policy='keep')
