# Dec-SLRep: the Dec-SL backbone, frozen, under a linear probe -- exactly the
# linear evaluation of the Dec-SSL backbones
# (configs/benchmarks/linear/resnet18_linear-100e_fashion-mnist.py), with
# the Dec-SL backbone instead of a self-supervised one:
#   python tools/train.py configs/baselines/dec_sl/supervised_r18_fmnist_dir0.1.py
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/supervised_r18_fmnist_dir0.1/epoch_20.pth \
#       work_dirs/supervised_r18_fmnist_dir0.1/backbone.pth
#   python tools/train.py configs/baselines/dec_slrep/resnet18_linear-100e_fmnist_dec-sl.py
_base_ = ['../../benchmarks/linear/resnet18_linear-100e_fashion-mnist.py']
pretrained_backbone = 'work_dirs/supervised_r18_fmnist_dir0.1/backbone.pth'
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained_backbone)))
