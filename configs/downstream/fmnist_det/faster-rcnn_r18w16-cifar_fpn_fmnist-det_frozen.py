# Faster R-CNN with FPN on FMNIST-Det from the study's backbone, frozen
# backbone (representation quality): the backbone's weights and BatchNorm
# layers stay fixed for every backbone alike; only the BatchNorm running
# statistics are re-estimated once on 20 training batches before training
# (BackboneBNRecalibrationHook), so that no backbone is judged by
# statistics of another domain or of its initialisation
# (docs/downstream.md, "FMNIST-Det").
_base_ = './faster-rcnn_r18w16-cifar_fpn_fmnist-det_ft.py'

model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='BackboneBNRecalibrationHook', num_batches=20)
]
