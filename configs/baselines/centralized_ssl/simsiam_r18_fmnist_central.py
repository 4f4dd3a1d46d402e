# Centralized SSL baseline of configs/decssl/simsiam_r18_fmnist_dir0.1.py: the
# same model, data and schedule (same rounds x local epochs, so every sample
# is seen as often), but ONE client holding the whole training set. The
# client keeps its optimizer state between rounds, so this is plain
# training run by the federated engine (tests/baselines check it equals
# mmengine's EpochBasedTrainLoop up to float rounding).
_base_ = ['../../decssl/simsiam_r18_fmnist_dir0.1.py']
train_dataloader = dict(
    dataset=dict(
        partition=dict(_delete_=True, type='IID', num_clients=1, seed=0)))
train_cfg = dict(optimizer_policy='keep')
