# Dec-SSL: MAE (tiny ViT, patch 4) on Fashion-MNIST split over 10 clients by
# a Dirichlet(0.1) draw over labels; FedAvg, 1 local epoch per round. One
# augmented 32 px view per image (MAE reconstructs masked patches; no
# second view). Every tensor is exchanged, including the fixed sin-cos
# position embeddings (identical on all clients).
_base_ = [
    '../_base_/models/mae_vit-tiny-p4.py',
    '../_base_/datasets/fmnist_ssl.py',
    '../_base_/federated/fedavg.py',
    '../_base_/default_runtime.py',
]

mae_train_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(dataset=dict(pipeline=mae_train_pipeline)))

# AdamW as in MAE (betas 0.9/0.95, weight decay 0.05 except on norms,
# biases, the tokens and the position embeddings); lr 1.5e-4 (MAE's base
# rate). The optimizer state is reset every round (train_cfg).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys=dict(
            ln=dict(decay_mult=0.0),
            bias=dict(decay_mult=0.0),
            pos_embed=dict(decay_mult=0.),
            mask_token=dict(decay_mult=0.),
            cls_token=dict(decay_mult=0.))))
