# Dec-SSL headline: MoCo v2 (ResNet-50) on COCO train2017 images split over
# 20 clients non-IID by each image's dominant category (Dirichlet 0.1);
# 5 clients per round, 1 local epoch, FedAvg, 200 rounds.
#   python tools/train.py configs/decssl/mocov2_r50_coco_noniid.py
#   bash tools/dist_train.sh configs/decssl/mocov2_r50_coco_noniid.py 8
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/coco2017_ssl.py',
    '../_base_/federated/fedavg.py',
    '../_base_/default_runtime.py',
]
rounds = 200
train_cfg = dict(rounds=rounds, local_epochs=1, participation=0.25)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=rounds, by_epoch=True, begin=0,
         end=rounds)
]
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=3))
