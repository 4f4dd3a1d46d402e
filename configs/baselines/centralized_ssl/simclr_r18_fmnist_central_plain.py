# The centralized SimCLR baseline as plain mmengine training
# (EpochBasedTrainLoop, no federated loop): one epoch per round of
# simclr_r18_fmnist_central.py, in the same sample order with the same
# augmentation seeds (ClientSeededBatchSampler), so both configs train the
# same model up to float rounding (tests/baselines/test_centralized.py).
_base_ = ['./simclr_r18_fmnist_central.py']
custom_imports = dict(
    imports=['decssl_mm', 'decssl_mm.federated.seeded_sampler'],
    allow_failed_imports=False)

train_dataloader = dict(
    sampler=dict(type='DefaultSampler', shuffle=False),
    batch_sampler=dict(
        type='ClientSeededBatchSampler',
        client_id=0,
        # the federated loop's rule for the twin's drop_last
        drop_last={{_base_.train_dataloader.drop_last}}),
    drop_last=False)  # torch: must be False next to a batch sampler
# rounds x local_epochs of the federated twin (local_epochs=1)
train_cfg = dict(
    _delete_=True, type='EpochBasedTrainLoop', max_epochs={{_base_.rounds}})
# plain data parallelism when launched on several processes
model_wrapper_cfg = None
