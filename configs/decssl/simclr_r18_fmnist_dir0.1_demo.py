# Demo (the README's main job): SimCLR with a CIFAR-form ResNet-18 at 16
# base channels, pretrained by 10 clients holding a Dirichlet(0.1) split of
# 5,000 Fashion-MNIST training images; 3 rounds of FedAvg with 1 local
# epoch, then a weighted-kNN evaluation of the global backbone (bank: 5,000
# training images, queries: 2,000 test images) printed beside the same
# network untrained (its own init and PyTorch's default init). Figures and
# time on 2 CPU cores: README.md.
#   .venv/bin/python tools/train.py configs/decssl/simclr_r18_fmnist_dir0.1_demo.py
_base_ = ['./simclr_r18_fmnist_dir0.1.py']
width = 16
rounds = 3
model = dict(
    backbone=dict(base_channels=width, stem_channels=width),
    neck=dict(in_channels=width * 8, hid_channels=512, out_channels=128))
train_dataloader = dict(dataset=dict(dataset=dict(subset=5000)))
train_cfg = dict(rounds=rounds, local_epochs=1)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=rounds, by_epoch=True, begin=0,
         end=rounds)
]
default_hooks = dict(checkpoint=dict(interval=rounds, max_keep_ckpts=1))
knn_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
custom_hooks = [
    dict(
        type='KNNEvalHook',
        train_dataloader=dict(
            batch_size=256,
            num_workers=2,
            dataset=dict(
                type='FashionMNISTGz',
                data_root={{_base_.data_root}},
                split='train',
                subset=5000,
                pipeline=knn_pipeline)),
        val_dataloader=dict(
            batch_size=256,
            num_workers=2,
            dataset=dict(
                type='FashionMNISTGz',
                data_root={{_base_.data_root}},
                split='test',
                subset=2000,
                pipeline=knn_pipeline)),
        interval=rounds,
        k=200,
        temperature=0.1)
]
