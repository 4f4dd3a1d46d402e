# Linear-probe schedule of MoCo: SGD, lr 30 for a total batch of 256, no
# weight decay, 100 epochs, lr x0.1 at epochs 60 and 80. The test split is
# evaluated every 10 epochs and after the last one; the reported accuracy is
# that of the LAST epoch (no best-epoch selection on test accuracy).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
