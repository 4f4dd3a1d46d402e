# FeatARC at study size, our variant (ClusteredServer mode='ours': every
# cluster starts from the same initial model; pooled backbone features of the
# augmented views aligned to a frozen copy of the cluster backbone;
# docs/algorithms.md): simclr_r18w16_fmnist_featarc.py (the paper's mode)
# with only the mode changed.
_base_ = ['./simclr_r18w16_fmnist_featarc.py']
train_cfg = dict(server=dict(mode='ours'))
